"""The outbox and the deployment-wide rate budget: waiting, retrying, pausing, and never exceeding the
limit in any minute. Sending runs against the fake Chamelaion (tests/fakes.py); the rejected key, read
from settings by the real client factory, against the sandbox."""

import threading
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from submissions.core import problems
from submissions.models import Problem, Submission
from submissions.outbox import ratelimit, sending
from submissions.outbox import worker as outbox
from tests.factories import make_submission

pytestmark = pytest.mark.django_db
State = Submission.State


@pytest.fixture
def waiting(user):
    """Rows only: each test asks for its own Chamelaion, the fake or (where HTTP matters) the sandbox."""

    def make(count=1, **fields):
        return [make_submission(user, next_attempt_at=timezone.now() - timedelta(seconds=1), **fields) for _ in range(count)]

    return make


def test_the_budget_allows_a_burst_then_spaces_requests(settings):
    settings.SEND_RATE_LIMIT_PER_MINUTE = 60
    now = timezone.now()
    assert [ratelimit.try_acquire(now=now) for _ in range(6)] == [0.0] * 6
    wait = ratelimit.try_acquire(now=now)
    assert wait == pytest.approx(60 / 54 * ratelimit.SAFETY, rel=0.01)
    assert ratelimit.try_acquire(now=now + timedelta(seconds=wait)) == 0.0


def test_no_minute_ever_holds_more_than_the_limit(settings):
    settings.SEND_RATE_LIMIT_PER_MINUTE = 60
    start = timezone.now()
    granted = []
    for step in range(0, 180 * 20):  # three minutes of someone asking every 50 ms
        moment = start + timedelta(milliseconds=50 * step)
        if ratelimit.try_acquire(now=moment) == 0.0:
            granted.append(moment)
    busiest = max(sum(1 for t in granted if first <= t < first + timedelta(seconds=60)) for first in granted)
    assert busiest <= 60
    assert len(granted) >= 150  # and the budget is actually used, not starved


@pytest.mark.django_db(transaction=True)
def test_concurrent_processes_share_one_budget(settings):
    settings.SEND_RATE_LIMIT_PER_MINUTE = 600  # burst 60, then one every ~0.114 s
    granted, barrier = [], threading.Barrier(4)

    def hammer():
        barrier.wait()
        deadline = timezone.now() + timedelta(seconds=1)
        while timezone.now() < deadline:
            if ratelimit.try_acquire() == 0.0:
                granted.append(1)
        connection.close()

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    budget = ratelimit.Budget.from_settings()
    assert 60 <= len(granted) <= 60 + 1 / budget.interval.total_seconds() + 2


def test_a_429_holds_everyone_off(settings):
    ratelimit.hold_off(5)
    assert ratelimit.try_acquire() == pytest.approx(5, abs=0.5)


def test_without_room_the_web_saves_and_the_worker_sends(logged_in, fake_chamelaion, settings):
    settings.SEND_RATE_LIMIT_PER_MINUTE = 10  # a burst of 1
    for title in ("first", "second", "third"):
        logged_in.post(reverse("submissions:new"), {
            "video_url": f"https://cdn.example.com/{title}.mp4", "audio_url": "https://cdn.example.com/a.wav", "title": title,
        })
    assert len(fake_chamelaion.jobs()) == 1
    history = logged_in.get(reverse("submissions:history")).content.decode()
    assert "#1 in line" in history and "#2 in line" in history and "Waiting to send" in history
    second = Submission.objects.get(title="second")
    detail = logged_in.get(second.get_absolute_url()).content.decode()
    assert "Number 1 in line; it should go at about" in detail

    settings.SEND_RATE_LIMIT_PER_MINUTE = 600
    reset_rate_budget()
    assert outbox.send_due(seconds=2, wait_for_budget=False) == 2
    assert len(fake_chamelaion.jobs()) == 3
    assert set(Submission.objects.values_list("state", flat=True)) == {State.QUEUED}


def reset_rate_budget():
    from submissions.models import RateBudget

    RateBudget.objects.all().delete()


def test_retries_back_off_then_give_up(waiting, fake_chamelaion, settings):
    settings.SEND_MAX_ATTEMPTS = 3
    (job,) = waiting()
    for attempt in (1, 2):
        fake_chamelaion.faults.script = ["429"]
        Submission.objects.filter(pk=job.pk).update(next_attempt_at=timezone.now())
        outbox.send_due(seconds=1, wait_for_budget=False)
        job.refresh_from_db()
        assert job.state == State.PENDING and job.send_attempts == attempt
        assert job.next_attempt_at >= timezone.now() + timedelta(seconds=1.5)  # Retry-After: 2 (as the sandbox says)
        assert "tries again by itself" in job.last_error
        reset_rate_budget()  # the 429 also paused the shared budget; that is tested on its own
    fake_chamelaion.faults.script = ["429"]
    Submission.objects.filter(pk=job.pk).update(next_attempt_at=timezone.now())
    outbox.send_due(seconds=1, wait_for_budget=False)
    job.refresh_from_db()
    assert job.state == State.SEND_FAILED and "stopped retrying after 3 attempts" in job.last_error
    assert fake_chamelaion.jobs() == []


def test_backoff_is_jittered_exponential_and_capped(settings):
    settings.SEND_RETRY_BASE_SECONDS, settings.SEND_RETRY_MAX_SECONDS = 2, 60
    for attempts, ceiling in ((1, 2), (2, 4), (4, 16), (10, 60)):
        waits = {sending._backoff(attempts, asked=None).total_seconds() for _ in range(50)}
        assert all(ceiling / 2 <= wait <= ceiling for wait in waits) and len(waits) > 1
    assert sending._backoff(1, asked=30).total_seconds() == 30


def test_a_rejected_key_pauses_all_sending_until_fixed(waiting, sandbox, settings, monkeypatch):
    waiting(3)
    settings.CHAMELAION_API_KEY = "rotated-away"
    settings.CHAMELAION_BASE_URL = sandbox.base_url
    outbox.send_due(seconds=1, wait_for_budget=False)
    assert Problem.objects.get().code == Problem.Code.API_KEY_REJECTED
    assert sandbox.stats()["generate"] == 0
    attempted = sum(job.send_attempts for job in Submission.objects.all())
    assert attempted == 1  # one try found the problem; the others were not thrown at it

    Submission.objects.update(next_attempt_at=timezone.now())
    assert outbox.send_due(seconds=1, wait_for_budget=False) == 0  # paused: no probe before the recheck time

    settings.CHAMELAION_API_KEY = ""  # an administrator fixes the key
    monkeypatch.setattr(problems, "PROBLEM_RECHECK", timedelta(0))
    assert outbox.send_due(seconds=2, wait_for_budget=False) == 3
    assert not Problem.objects.exists() and len(sandbox.jobs()) == 3
    assert {job.state for job in Submission.objects.all()} == {State.QUEUED}


def test_an_interrupted_send_is_recovered_by_the_worker(user, fake_chamelaion):
    stuck = make_submission(user, reference_id="crash-1", state=State.SENDING,
                            last_attempt_at=timezone.now() - timedelta(hours=1))
    fake_chamelaion.create_job(video_url=stuck.video_url, audio_url=stuck.audio_url, reference_id="crash-1")
    call_command("run_worker", once=True)
    stuck.refresh_from_db()
    assert stuck.state == State.QUEUED and stuck.request_id == fake_chamelaion.jobs()[0]["id"]
    assert len(fake_chamelaion.jobs()) == 1


def test_run_worker_once_sends_the_outbox(waiting, fake_chamelaion, capsys):
    waiting(2)
    call_command("run_worker", once=True)
    assert "Outbox: 2 sends attempted" in capsys.readouterr().out
    assert len(fake_chamelaion.jobs()) == 2
