"""Keeping a copy of every output: the worker streams Chamelaion's output into DubDash's storage (a folder,
or an S3-compatible server), records size, SHA-256 and duration, retries what can pass and says in plain
words what cannot. Against the real sandbox on loopback, whose `outputs` knob expires or breaks links."""

from __future__ import annotations

import hashlib
import threading
import time
import zlib
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.management import call_command
from django.utils import timezone

from submissions import chamelaion
from submissions.models import OutputCopy, Submission
from submissions.outbox import tasks
from submissions.outputs import services as outputs
from submissions.sandbox.media import MEDIA_DIR, output_url
from submissions.tracking import services as tracking
from tests.factories import make_submission

pytestmark = pytest.mark.django_db
SAMPLE = (MEDIA_DIR / "sample.mp4").read_bytes()
State = OutputCopy.State


def completed_job(sandbox, user, **fields) -> Submission:
    """A job Chamelaion (the sandbox) has finished, as DubDash stores it once told."""
    made = sandbox.create_job(video_url=sandbox.sample_video_url, audio_url=sandbox.sample_audio_url)
    sandbox.set_status(made["id"], "completed")
    return make_submission(
        user,
        state=Submission.State.COMPLETED,
        request_id=made["id"],
        output_url=output_url(sandbox.root_url, made["id"]),
        **{"finished_at": timezone.now(), **fields},
    )


def copy_now(job: Submission) -> OutputCopy:
    outputs.enqueue(submission=job)
    OutputCopy.objects.filter(submission=job).update(next_attempt_at=timezone.now())
    outputs.copy_due(seconds=5)
    return OutputCopy.objects.get(submission=job)


def test_a_completed_output_is_kept_with_its_size_checksum_and_duration(sandbox, user, outputs_storage_kind):
    copy = copy_now(completed_job(sandbox, user))

    assert copy.state == State.DONE and copy.is_kept and copy.label == "Kept"
    with copy.file.open("rb") as kept:
        assert kept.read() == SAMPLE
    assert copy.size == len(SAMPLE)
    assert copy.sha256 == hashlib.sha256(SAMPLE).hexdigest()
    assert copy.crc32 == zlib.crc32(SAMPLE)
    assert copy.duration_seconds == pytest.approx(2.02, abs=0.01)  # the sample's own mvhd header
    assert copy.attempts == 1 and copy.last_error == "" and copy.kept_at is not None


def test_the_worker_round_that_sees_a_job_complete_writes_its_copy_task(sandbox, user, local_outputs):
    made = sandbox.create_job(video_url=sandbox.sample_video_url, audio_url=sandbox.sample_audio_url)
    job = make_submission(user, state=Submission.State.QUEUED, request_id=made["id"], sent_at=timezone.now())
    sandbox.set_status(made["id"], "completed")

    tracking.refresh_round()

    job.refresh_from_db()
    assert job.state == Submission.State.COMPLETED
    assert OutputCopy.objects.get(submission=job).state == State.WAITING  # written with the state change


def test_a_sandbox_that_forgets_everything_leaves_the_kept_copy_playable(sandbox, user, local_outputs):
    copy = copy_now(completed_job(sandbox, user))
    sandbox.reset()  # Chamelaion's link is gone now

    assert copy.file.storage.size(copy.file.name) == len(SAMPLE)


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        ("expired", "no longer works (HTTP 403)"),
        ("gone", "no longer works (HTTP 404)"),
        ("not-mp4", "not an MP4 video"),
    ],
)
def test_a_link_that_cannot_give_the_video_ends_in_plain_words_without_retrying(sandbox, user, local_outputs, fault, says):
    job = completed_job(sandbox, user)
    sandbox.faults.outputs = {job.request_id: fault}

    copy = copy_now(job)

    assert copy.state == State.FAILED and copy.label == "Could not keep a copy"
    assert says in copy.last_error
    assert copy.attempts == 1 and copy.next_attempt_at is None and not copy.file


def test_a_video_over_the_size_cap_is_not_kept(sandbox, user, local_outputs, settings):
    settings.OUTPUT_MAX_BYTES = 1000
    copy = copy_now(completed_job(sandbox, user))

    assert copy.state == State.FAILED
    assert "larger than DubDash keeps" in copy.last_error and "OUTPUT_MAX_BYTES" in copy.last_error
    assert list(local_outputs.rglob("*.mp4")) == []  # nothing half-written left behind


@pytest.mark.parametrize("fault", ["500", "truncated"])
def test_a_passing_failure_is_retried_with_backoff_until_it_works(sandbox, user, local_outputs, settings, fault):
    settings.OUTPUT_COPY_RETRY_BASE_SECONDS = 60
    job = completed_job(sandbox, user)
    sandbox.faults.outputs = {"*": fault}

    copy = copy_now(job)
    assert copy.state == State.WAITING and copy.attempts == 1
    assert "tries again by itself" in copy.last_error
    wait = (copy.next_attempt_at - timezone.now()).total_seconds()
    assert 25 <= wait <= 61  # half to full of the base on the first failure

    outputs.copy_due(seconds=1)  # not due yet: nothing happens
    assert OutputCopy.objects.get(pk=copy.pk).attempts == 1

    sandbox.faults.outputs = {}
    copy = copy_now(job)
    assert copy.state == State.DONE and copy.attempts == 2 and copy.size == len(SAMPLE)


def test_retries_stop_after_the_last_attempt(sandbox, user, local_outputs, settings):
    settings.OUTPUT_COPY_MAX_ATTEMPTS = 2
    job = completed_job(sandbox, user)
    sandbox.faults.outputs = {"*": "500"}

    copy_now(job)
    copy = copy_now(job)

    assert copy.state == State.FAILED and copy.attempts == 2


def test_a_person_can_ask_again_after_it_could_not_be_kept(sandbox, user, local_outputs):
    job = completed_job(sandbox, user)
    sandbox.faults.outputs = {"*": "gone"}
    assert copy_now(job).state == State.FAILED
    sandbox.faults.outputs = {}

    assert outputs.retry_copy(submission=job, user=user) is True
    assert outputs.retry_copy(submission=job, user=user) is False  # already waiting: nothing more to do
    outputs.copy_due(seconds=5)

    copy = OutputCopy.objects.get(submission=job)
    assert copy.state == State.DONE and copy.attempts == 1
    assert job.activities.filter(verb="copy_retried", actor=user).count() == 1


def test_copying_off_writes_and_copies_nothing(sandbox, user, local_outputs, settings):
    settings.OUTPUT_KEEP = False
    job = completed_job(sandbox, user)

    outputs.enqueue(submission=job)
    assert outputs.catch_up(limit=10) == 0
    assert outputs.copy_due(seconds=1) == 0
    assert not OutputCopy.objects.exists()


def test_older_completed_jobs_are_caught_up_newest_first_a_few_at_a_time(sandbox, user, local_outputs):
    now = timezone.now()
    jobs = [completed_job(sandbox, user, finished_at=now - timedelta(days=n)) for n in range(3)]
    make_submission(user, state=Submission.State.FAILED)  # nothing to copy
    make_submission(user, state=Submission.State.COMPLETED, output_url="")  # no link: nothing to copy

    assert outputs.catch_up(limit=2) == 2
    assert set(OutputCopy.objects.values_list("submission", flat=True)) == {jobs[0].pk, jobs[1].pk}
    assert outputs.catch_up(limit=2) == 1
    assert outputs.catch_up(limit=2) == 0


def test_the_keep_outputs_command_queues_and_copies(sandbox, user, local_outputs, capsys):
    job = completed_job(sandbox, user)

    call_command("keep_outputs", "--copy", "--pause", "0")

    assert "Queued 1 copies" in capsys.readouterr().out
    assert OutputCopy.objects.get(submission=job).state == State.DONE


def test_one_worker_pass_copies_what_is_due(sandbox, user, local_outputs):
    job = completed_job(sandbox, user)
    outputs.enqueue(submission=job)

    call_command("run_worker", "--once", "--interval", "2")

    assert OutputCopy.objects.get(submission=job).state == State.DONE


def test_a_copy_left_running_by_a_dead_worker_is_taken_over_and_the_late_one_loses(sandbox, user, local_outputs):
    job = completed_job(sandbox, user)
    outputs.enqueue(submission=job)
    dead = OutputCopy.objects.get(submission=job)
    assert tasks.claim(dead)
    OutputCopy.objects.filter(pk=dead.pk).update(last_attempt_at=timezone.now() - OutputCopy.STUCK_AFTER - timedelta(seconds=1))

    assert outputs.copy_due(seconds=5) == 1  # taken over
    kept = OutputCopy.objects.get(pk=dead.pk)
    assert kept.state == State.DONE and kept.attempts == 2

    # The "dead" worker wakes up and finishes its own attempt: its outcome does not overwrite the later one,
    # and its file is deleted rather than left behind.
    assert outputs.copy_one(copy=dead) is False
    assert OutputCopy.objects.get(pk=dead.pk).file.name == kept.file.name
    assert len(list(local_outputs.rglob("*.mp4"))) == 1


def test_the_output_fault_knob_refuses_what_it_does_not_know(sandbox):
    with pytest.raises(ValueError, match="unknown output fault"):
        sandbox.set_faults({"outputs": {"*": "melted"}})
    with pytest.raises(ValueError, match="map job ids"):
        sandbox.set_faults({"outputs": ["expired"]})


def test_the_download_never_sends_the_api_key(settings):
    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(dict(self.headers))
            self.send_response(200)
            self.send_header("Content-Length", str(len(SAMPLE)))
            self.end_headers()
            self.wfile.write(SAMPLE)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = chamelaion.ChamelaionClient(base_url="http://127.0.0.1:1/api", api_key="secret-key-1234")
        with open("/dev/null", "wb") as sink:
            got = client.download_output(
                f"http://127.0.0.1:{server.server_address[1]}/o.mp4", into=sink, max_bytes=10**6, max_seconds=5
            )
    finally:
        server.shutdown()
    assert got.size == len(SAMPLE)
    assert not any("secret-key-1234" in value for value in seen[0].values())
    assert "x-api-key" not in {name.lower() for name in seen[0]}


def test_copying_is_paced_to_its_share_of_the_machine(sandbox, user, local_outputs, settings):
    settings.OUTPUT_COPY_MAX_MB_PER_SECOND = 1
    sandbox.output_bytes = 2 * 1024 * 1024
    started = time.monotonic()
    copy = copy_now(completed_job(sandbox, user))
    took = time.monotonic() - started

    assert copy.state == State.DONE and copy.size == 2 * 1024 * 1024
    assert took >= 1.9  # 2 MB at 1 MB/s, however fast loopback is
