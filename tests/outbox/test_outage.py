"""Issue 9: an outage of the API (connections refused: nothing reaches Chamelaion) is nobody's job failing.
Jobs wait for as long as it lasts, administrators are told on every page, and everything goes out by
itself when Chamelaion is back. Giving up counts only attempts that reached Chamelaion (or may have), and
from the first of those, never from when the job was saved. The sandbox really stops listening."""

import json
import socket
import time
import urllib.error
import urllib.request
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from submissions import chamelaion
from submissions.core import problems
from submissions.models import Problem, Submission
from submissions.outbox import worker as outbox
from submissions.tracking import services as tracking
from tests.factories import make_submission

pytestmark = pytest.mark.django_db
State = Submission.State
NEW = reverse("submissions:new")
FORM = {"video_url": "https://cdn.example.com/episode-1.mp4", "audio_url": "https://cdn.example.com/episode-1-de.wav"}


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def worker_pass() -> int:
    """One outbox pass, as if the next probe were due (one every 30 s while sending is paused)."""
    Submission.objects.filter(state=State.PENDING).update(next_attempt_at=timezone.now())
    Problem.objects.update(last_seen=timezone.now() - timedelta(seconds=31))
    return outbox.send_due(seconds=1, wait_for_budget=False)


def test_an_outage_of_minutes_never_gives_a_waiting_job_up(client, logged_in, sandbox, settings, cast):
    settings.SEND_MAX_ATTEMPTS = 2
    settings.SEND_MAX_AGE_SECONDS = 1
    settings.SEND_RATE_LIMIT_PER_MINUTE = 6000  # minutes of probes squeezed into a second
    sandbox.go_down()
    assert refused(sandbox.port)

    page = logged_in.post(NEW, FORM, follow=True).content.decode()
    submission = Submission.objects.get()
    assert "Saved, not sent yet. Sending is paused: DubDash could not reach Chamelaion" in page
    assert "as soon as Chamelaion can be reached again" in page

    Submission.objects.update(created_at=timezone.now() - timedelta(hours=2))  # long past the give-up age
    for _ in range(6):  # well past SEND_MAX_ATTEMPTS, and minutes of (simulated) probing
        assert worker_pass() == 1
        submission.refresh_from_db()
        assert submission.state == State.PENDING, submission.last_error
        assert submission.failed_deliveries == 0 and submission.first_failed_delivery_at is None
    assert submission.send_attempts == 7 and not submission.send_outcome_unknown

    client.force_login(cast.team_admin)
    assert "<strong>Chamelaion cannot be reached</strong>" in client.get(reverse("submissions:history")).content.decode()

    sandbox.come_up()
    assert worker_pass() == 1
    submission.refresh_from_db()
    (job,) = sandbox.jobs()
    assert submission.state == State.QUEUED and submission.request_id == job["id"]
    assert not Problem.objects.exists() and submission.last_error == ""


def test_the_give_up_age_counts_from_the_first_failed_delivery_not_from_saving(user, sandbox, settings):
    settings.SEND_MAX_AGE_SECONDS = 3600
    job = make_submission(user, created_at=timezone.now() - timedelta(hours=2))  # it waited two hours in line
    sandbox.faults.script = ["500"]
    outbox.send_due(seconds=1, wait_for_budget=False)
    job.refresh_from_db()
    assert job.state == State.PENDING and job.failed_deliveries == 1 and job.send_outcome_unknown
    assert timezone.now() - job.first_failed_delivery_at < timedelta(seconds=5)

    # An hour after that first failed delivery, the next one ends the retries.
    Submission.objects.update(first_failed_delivery_at=timezone.now() - timedelta(seconds=3601), next_attempt_at=timezone.now())
    time.sleep(0.25)  # past the (test-sized) settle time: the lookup finds nothing, so it posts
    sandbox.faults.script = ["pass", "500"]
    outbox.send_due(seconds=1, wait_for_budget=False)
    job.refresh_from_db()
    assert job.state == State.SEND_FAILED and "stopped retrying after 2 attempts" in job.last_error
    assert sandbox.jobs() == []


def test_send_again_gives_a_fresh_set_of_retries(logged_in, user, sandbox):
    failed = make_submission(user, state=State.SEND_FAILED, failed_deliveries=8, first_failed_delivery_at=timezone.now())
    logged_in.post(reverse("submissions:send_again", args=[failed.pk]))
    failed.refresh_from_db()
    assert failed.state == State.QUEUED and failed.failed_deliveries == 0 and failed.first_failed_delivery_at is None


def test_polling_during_an_outage_tells_administrators_and_recovers(user, sandbox):
    sent = make_submission(user, state=State.QUEUED, request_id="3f1c0d7e-0000-4000-8000-000000000001",
                           next_poll_at=timezone.now())
    sandbox.go_down()
    report = tracking.refresh_round()
    assert report.failed and "could not reach Chamelaion" in report.error
    problem = Problem.objects.get()
    assert problem.code == Problem.Code.UNREACHABLE and problem.pauses_polling

    sandbox.come_up()
    Submission.objects.update(next_poll_at=timezone.now())
    report = tracking.refresh_round()
    assert not report.failed and not Problem.objects.exists()
    sent.refresh_from_db()
    assert sent.state == State.MISSING  # answered again: this id is unknown to the sandbox


def control(sandbox, path: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(  # noqa: S310 - the loopback sandbox's own http:// URL
        sandbox.root_url + path, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - the loopback sandbox's http:// URL
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_sandbox_outage_knob_refuses_connections_then_comes_back_by_itself(sandbox):
    assert control(sandbox, "/_sandbox/outage", {"seconds": 0.6}) == (200, {"status": "ok", "down_for_seconds": 0.6})
    time.sleep(0.3)
    assert refused(sandbox.port) and sandbox.is_down
    time.sleep(0.6)
    assert not refused(sandbox.port) and not sandbox.is_down


@pytest.mark.parametrize("body", [{}, {"seconds": 0}, {"seconds": -1}, {"seconds": 3601}, {"seconds": "5"}, {"seconds": True}])
def test_the_outage_knob_refuses_bad_durations(sandbox, body):
    status, payload = control(sandbox, "/_sandbox/outage", body)
    assert status == 400 and "seconds must be a number" in payload["error"]
    assert not refused(sandbox.port)


def test_a_reset_ends_an_outage(sandbox):
    sandbox.go_down()
    sandbox.reset()
    assert not refused(sandbox.port)


def test_hours_of_probing_never_overflow_the_backoff_of_the_failure_after(user, sandbox, settings):
    """Found in review: every probe during an outage adds an attempt; the backoff was computed from them,
    and 2 ** 1024 raised OverflowError, leaving the job in "sending" for ever."""
    job = make_submission(user, send_attempts=1025)  # eight and a half hours of probes, one every 30 s
    sandbox.faults.script = ["500"]
    outbox.send_due(seconds=1, wait_for_budget=False)
    job.refresh_from_db()
    assert job.state == State.PENDING and job.failed_deliveries == 1
    assert job.next_attempt_at - timezone.now() <= timedelta(seconds=settings.SEND_RETRY_MAX_SECONDS)


def test_the_out_of_reach_banner_goes_once_chamelaion_answers_even_with_nothing_to_send(user, sandbox):
    """Found in review: raised by a send, with nothing left to send or poll, nothing cleared it."""

    problems.record_problem(chamelaion.Unreachable("connection failed", may_have_reached_server=False), while_polling=False)
    assert Problem.objects.get().pauses_polling  # polling cannot reach it either
    report = tracking.refresh_round()  # no job at all: one cheap call tells it is over
    assert not report.failed and not Problem.objects.exists() and report.api_calls == 1
