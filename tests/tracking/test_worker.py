"""The status worker: progression, every failure the API or the network can produce, efficiency, the
admin problem banner, and the command itself. The rounds' rules and call counts run against the fake
Chamelaion (tests/fakes.py); what only the wire shows (timeouts, dropped connections, garbage replies,
a key read from settings) runs against the sandbox over real HTTP."""

import os
import select
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from submissions.models import Problem, Submission
from submissions.tracking import imports
from submissions.tracking import services as tracking
from tests.factories import make_submission

pytestmark = pytest.mark.django_db
State = Submission.State
ROOT = Path(__file__).resolve().parents[2]


def sender(account, user):
    """Make jobs on `account` (the fake or the sandbox) and the matching sent submissions, due for polling now."""

    def make(count=1, *, video_url="https://cdn.example.com/ep.mp4", sent_ago=timedelta(seconds=30)):
        rows = []
        for _ in range(count):
            job = account.create_job(video_url=video_url, audio_url="https://cdn.example.com/ep-fr.wav")
            rows.append(
                make_submission(
                    user, request_id=job["id"], state=State.QUEUED, upstream_status="queued",
                    sent_at=timezone.now() - sent_ago, next_poll_at=timezone.now() - timedelta(seconds=1),
                )
            )
        return rows

    return make


@pytest.fixture
def sent(fake_chamelaion, user):
    """On the fake Chamelaion: the rounds' rules and their call counts, not HTTP, are tested with it."""
    return sender(fake_chamelaion, user)


@pytest.fixture
def sent_to_sandbox(sandbox, user):
    """On the sandbox, over real HTTP: for what only the wire shows (timeouts, dropped connections, garbage)."""
    return sender(sandbox, user)


def make_history(account, count):
    """The account's older jobs, which DubDash does not follow, a minute apart like a real history."""
    for _ in range(count):
        account.create_job(video_url="https://x.example/v.mp4", audio_url="https://x.example/a.wav")
        account.advance(60)


def make_due(*submissions):
    Submission.objects.filter(pk__in=[s.pk for s in submissions]).update(next_poll_at=timezone.now())


def test_a_job_is_followed_to_completed(fake_chamelaion, sent):
    (job,) = sent()
    fake_chamelaion.advance(15)
    report = tracking.refresh_round()
    job.refresh_from_db()
    assert (report.jobs, report.updated, report.failed) == (1, 1, False)
    assert job.state == State.PROCESSING and job.started_at is not None and job.last_synced_at is not None

    fake_chamelaion.advance(30)
    make_due(job)
    tracking.refresh_round()
    job.refresh_from_db()
    assert job.state == State.COMPLETED
    assert job.finished_at > job.started_at
    assert job.output_url.endswith(f"/files/output/{job.request_id}.mp4")
    assert job.next_poll_at is None and job.poll_lease == ""


def test_a_failed_job_keeps_the_upstream_error(fake_chamelaion, sent):
    (job,) = sent(video_url="https://cdn.example.com/fail.mp4")
    fake_chamelaion.advance(60)
    tracking.refresh_round()
    job.refresh_from_db()
    assert job.state == State.FAILED
    assert job.upstream_error_message == "video URL is not accessible"


def test_finished_jobs_are_never_asked_about_again(fake_chamelaion, sent):
    sent(3)
    fake_chamelaion.advance(60)
    tracking.refresh_round()
    assert set(Submission.objects.values_list("state", flat=True)) == {State.COMPLETED}
    Submission.objects.update(next_poll_at=timezone.now() - timedelta(hours=1))  # even if wrongly due
    calls_before = fake_chamelaion.stats()["requests"]
    report = tracking.refresh_round()
    assert (report.jobs, report.api_calls) == (0, 0)
    assert fake_chamelaion.stats()["requests"] == calls_before


def test_jobs_not_due_yet_are_left_alone(fake_chamelaion, sent):
    sent()
    Submission.objects.update(next_poll_at=timezone.now() + timedelta(minutes=5))
    assert tracking.refresh_round().jobs == 0
    assert fake_chamelaion.stats()["requests"] == 0


def test_young_jobs_are_polled_often_and_old_ones_rarely(fake_chamelaion, sent, settings):
    settings.POLL_MIN_SECONDS, settings.POLL_MAX_SECONDS = 3, 120
    (young,) = sent(sent_ago=timedelta(seconds=5))
    (middle,) = sent(sent_ago=timedelta(minutes=5))
    (old,) = sent(sent_ago=timedelta(hours=3))
    tracking.refresh_round()
    for job, expected in ((young, 3), (middle, 30), (old, 120)):
        job.refresh_from_db()
        wait = (job.next_poll_at - job.last_synced_at).total_seconds()
        assert wait == pytest.approx(expected, abs=1), job


def test_many_jobs_cost_a_few_list_pages_not_a_call_each(fake_chamelaion, sent):
    sent(250)
    fake_chamelaion.advance(60)
    report = tracking.refresh_round()
    assert report.jobs == 250 and report.updated == 250
    assert report.api_calls == 3  # three pages of 100
    assert fake_chamelaion.stats()["list"] == 3 and fake_chamelaion.stats()["get"] == 0
    assert Submission.objects.filter(state=State.COMPLETED).count() == 250


def test_new_jobs_in_a_long_history_cost_the_pages_at_its_end(fake_chamelaion, sent):
    make_history(fake_chamelaion, 5000)
    sent(250)
    fake_chamelaion.advance(60)
    report = tracking.refresh_round()
    assert report.updated == 250
    # Chamelaion (the fake, like the sandbox) lists oldest first: page one shows that, then the three pages
    # at the end hold them all.
    assert report.api_calls == 4 and fake_chamelaion.stats()["get"] == 0


def test_a_single_due_job_is_one_get(fake_chamelaion, sent):
    make_history(fake_chamelaion, 450)
    sent(1)
    report = tracking.refresh_round()
    assert report.updated == 1 and report.api_calls == 1 and fake_chamelaion.stats()["get"] == 1


def test_two_new_jobs_in_a_large_account_cost_two_calls(fake_chamelaion, sent):
    make_history(fake_chamelaion, 450)
    sent(2)
    report = tracking.refresh_round()
    assert report.updated == 2 and report.api_calls == 2 and fake_chamelaion.stats()["get"] == 0


def test_an_old_job_deep_in_the_history_is_still_found(fake_chamelaion, sent, user):
    (old,) = sent(sent_ago=timedelta(days=2))
    make_history(fake_chamelaion, 450)
    sent(3)
    fake_chamelaion.advance(60)
    report = tracking.refresh_round()
    old.refresh_from_db()
    assert report.updated == 4 and old.state == State.COMPLETED
    assert report.api_calls <= 4  # never more than one call per job


def test_an_unknown_status_is_kept_in_flight_and_shown_as_is(fake_chamelaion, sent, logged_in):
    (job,) = sent()
    fake_chamelaion.set_status(job.request_id, "rendering")
    report = tracking.refresh_round()
    job.refresh_from_db()
    assert not report.failed
    assert job.state == State.IN_FLIGHT and job.upstream_status == "rendering"
    assert job.status_label == "Rendering" and job.next_poll_at is not None
    assert "Rendering" in logged_in.get(reverse("submissions:history")).content.decode()


def test_a_job_chamelaion_does_not_know_is_marked_missing_once(fake_chamelaion, user):
    ghost = make_submission(
        user, request_id="00000000-0000-4000-8000-0000000000aa", state=State.QUEUED, next_poll_at=timezone.now()
    )
    report = tracking.refresh_round()
    ghost.refresh_from_db()
    assert report.missing == 1
    assert ghost.state == State.MISSING and "no job with this request id" in ghost.last_error
    assert ghost.next_poll_at is None
    assert tracking.refresh_round().jobs == 0


def test_rate_limited_round_waits_as_long_as_asked(fake_chamelaion, sent):
    (job,) = sent()
    fake_chamelaion.faults.script = ["429"]
    report = tracking.refresh_round()
    job.refresh_from_db()
    assert report.failed and report.wait == 2  # the Retry-After asked (2 s, as the sandbox's)
    assert job.state == State.QUEUED and job.poll_lease == ""
    assert (job.next_poll_at - timezone.now()).total_seconds() > 1.5


@pytest.mark.parametrize("fault", ["500", "502-html", "timeout", "drop", "not-json", "wrong-shape"])
def test_server_errors_timeouts_and_garbage_leave_rows_intact_and_the_next_round_recovers(sandbox, sent_to_sandbox, fault):
    jobs = sent_to_sandbox(2)
    sandbox.advance(15)
    sandbox.faults.hang_seconds = 1.0
    sandbox.faults.script = [fault]
    report = tracking.refresh_round()
    assert report.failed and report.error
    for job in jobs:
        job.refresh_from_db()
        assert job.state == State.QUEUED and job.upstream_status == "queued" and job.poll_lease == ""

    make_due(*jobs)
    recovered = tracking.refresh_round()
    assert not recovered.failed and recovered.updated == 2
    assert set(Submission.objects.values_list("state", flat=True)) == {State.PROCESSING}


def test_a_crashing_round_is_logged_and_does_not_stop_the_worker(fake_chamelaion, sent, monkeypatch, caplog):
    sent()
    rounds = []

    def broken(**kwargs):
        rounds.append(1)
        raise RuntimeError("database went away")

    monkeypatch.setattr(tracking, "refresh_round", broken)
    call_command("run_worker", once=True)
    assert rounds == [1]
    assert "Refresh round crashed; the next round will try again" in caplog.text
    assert "database went away" in caplog.text


@pytest.mark.parametrize(
    ("scenario", "code"),
    [("401", Problem.Code.API_KEY_REJECTED), ("412", Problem.Code.QUOTA_USED_UP)],
)
def test_401_and_412_pause_polling_and_tell_administrators_until_fixed(
    fake_chamelaion, sent, scenario, code, admin_client, logged_in
):
    (job,) = sent()
    fake_chamelaion.faults.script = [scenario]
    report = tracking.refresh_round()
    problem = Problem.objects.get()
    assert report.failed and report.wait == tracking.PROBLEM_RECHECK_SECONDS
    assert problem.code == code and problem.pauses_polling

    banner = "banner-problem"
    for url in (reverse("submissions:history"), reverse("submissions:new"), reverse("admin:index")):
        assert banner in admin_client.get(url).content.decode(), url
    assert banner not in logged_in.get(reverse("submissions:history")).content.decode()  # staff only

    # Still broken: one probe call per round, nothing else.
    fake_chamelaion.faults.script = [scenario]
    make_due(job)
    paused = tracking.refresh_round()
    assert paused.api_calls == 1 and paused.jobs == 0 and Problem.objects.exists()

    # Fixed: the probe succeeds, the banner goes, polling resumes in the same round.
    fake_chamelaion.advance(15)
    resumed = tracking.refresh_round()
    job.refresh_from_db()
    assert not Problem.objects.exists()
    assert resumed.updated == 1 and job.state == State.PROCESSING
    assert banner not in admin_client.get(reverse("submissions:history")).content.decode()


def test_a_rejected_key_in_settings_raises_the_problem(sandbox, sent_to_sandbox, settings):
    sent_to_sandbox()
    settings.CHAMELAION_API_KEY = "revoked-or-mistyped"
    settings.CHAMELAION_BASE_URL = sandbox.base_url
    report = tracking.refresh_round()
    assert report.failed and "An administrator must fix the key" in report.error
    assert Problem.objects.get().code == Problem.Code.API_KEY_REJECTED


def test_import_adds_outside_jobs_once(fake_chamelaion, sent, user):
    sent()
    unsent = make_submission(user, reference_id="dubdash-unconfirmed", state=State.SEND_FAILED)
    fake_chamelaion.create_job(video_url="https://x.example/v.mp4", audio_url="https://x.example/a.wav",
                       reference_id="dubdash-unconfirmed")  # DubDash's own, send unconfirmed
    outside = [
        fake_chamelaion.create_job(video_url="https://x.example/v.mp4", audio_url="https://x.example/a.wav",
                           reference_id=f"script-{n}" if n % 2 else None)
        for n in range(120)
    ]
    first = imports.import_external_jobs()
    second = imports.import_external_jobs()

    assert (first.seen, first.imported, first.already_known) == (122, 120, 2)
    assert (second.imported, second.already_known) == (0, 122)
    assert first.api_calls == 2
    imported = Submission.objects.filter(is_external=True)
    assert imported.count() == 120 and imported.filter(created_by__isnull=True).count() == 120
    assert set(imported.values_list("request_id", flat=True)) == {job["id"] for job in outside}
    assert imported.get(reference_id="script-1").request_id == outside[1]["id"]
    assert Submission.objects.count() == 122
    unsent.refresh_from_db()
    assert unsent.request_id is None  # left to its own send, which settles it by reference id


def test_imported_jobs_in_flight_are_then_followed(fake_chamelaion):
    job = fake_chamelaion.create_job(video_url="https://x.example/v.mp4", audio_url="https://x.example/a.wav")
    call_command("import_jobs")
    fake_chamelaion.advance(60)
    tracking.refresh_round()
    assert Submission.objects.get(request_id=job["id"]).state == State.COMPLETED


def test_run_worker_once_prints_a_summary(fake_chamelaion, sent, capsys):
    sent(2)
    fake_chamelaion.advance(60)
    call_command("run_worker", once=True)
    assert "2 jobs, 2 updated, 0 missing, 1 API calls" in capsys.readouterr().out


def test_run_worker_stops_cleanly_on_sigterm(tmp_path):
    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG") if name in os.environ}
    env.update(DEBUG="true", DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
               CHAMELAION_SANDBOX_URL="http://127.0.0.1:9/api")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=120)
    worker = subprocess.Popen([sys.executable, "-u", "manage.py", "run_worker", "--interval", "0.2"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    # Signalled once it says it has started (its handlers are in place by then), not after a fixed sleep:
    # on a loaded machine start-up alone can take longer than any sleep chosen here.
    ready, _, _ = select.select([worker.stdout], [], [], 60)
    started = worker.stdout.readline() if ready else ""
    if "Worker started" not in started:
        worker.kill()
        raise AssertionError(f"the worker did not say it started within 60 s: {started}{worker.communicate()[0]}")
    time.sleep(0.5)  # a few rounds
    worker.send_signal(signal.SIGTERM)
    rest, _ = worker.communicate(timeout=15)
    output = started + rest
    assert worker.returncode == 0, output
    assert "Worker stopped." in output
    assert "Traceback" not in output


@pytest.mark.parametrize(
    ("failures", "asked", "expected"),
    [(0, 0, 2), (1, 0, 4), (3, 0, 16), (10, 0, 120), (0, 30, 30), (2, 5, 8), (0, 2, 2)],
)
def test_the_worker_backs_off_after_failures_and_honours_requested_waits(failures, asked, expected):
    from submissions.management.commands.run_worker import seconds_before_next_round

    assert seconds_before_next_round(interval=2, failures=failures, asked=asked) == expected
