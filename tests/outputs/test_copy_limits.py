"""A copy's limits hold against a server that trickles, a worker that stops, and a worker that died: the time
limit is a real deadline, a stop ends the download at once without using up an attempt, and half-done
downloads sit beside the storage (renamed into place, never copied twice) and are swept when abandoned.
Against the real sandbox on loopback, whose `outputs` knob has a "trickle" kind."""

from __future__ import annotations

import os
import threading
import time

import pytest
from django.utils import timezone

from submissions import chamelaion
from submissions.models import OutputCopy
from submissions.outbox import tasks
from submissions.outputs import services as outputs
from submissions.outputs import storage
from submissions.sandbox.media import output_url
from tests.outputs.test_copying import SAMPLE, completed_job, copy_now

pytestmark = pytest.mark.django_db
State = OutputCopy.State


def trickling_link(sandbox) -> str:
    made = sandbox.create_job(video_url=sandbox.sample_video_url, audio_url=sandbox.sample_audio_url)
    sandbox.set_status(made["id"], "completed")
    sandbox.set_faults({"outputs": {made["id"]: "trickle"}})
    return output_url(sandbox.root_url, made["id"])


def download(url: str, *, max_seconds: float, stop: threading.Event | None = None) -> chamelaion.Downloaded:
    client = chamelaion.ChamelaionClient(base_url="http://127.0.0.1:1/api", api_key="k")
    with open(os.devnull, "wb") as sink:
        return client.download_output(url, into=sink, max_bytes=10**7, max_seconds=max_seconds, stop=stop)


def test_a_server_that_trickles_is_cut_off_at_the_time_limit_not_at_the_read_timeout(sandbox):
    # A byte every 0.2 s never trips the 30 s read timeout, and would take an hour to fill one 4 MB read.
    url = trickling_link(sandbox)
    started = time.monotonic()
    with pytest.raises(chamelaion.DownloadInterrupted, match="took longer than 1 s") as caught:
        download(url, max_seconds=1)
    took = time.monotonic() - started

    assert 1 <= took < 3
    assert caught.value.retryable
    assert "tries again by itself" in caught.value.user_message


def test_stopping_the_worker_ends_a_download_under_way(sandbox):
    url = trickling_link(sandbox)
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    started = time.monotonic()
    with pytest.raises(chamelaion.DownloadInterrupted, match="stopping"):
        download(url, max_seconds=600, stop=stop)

    assert time.monotonic() - started < 3


def test_a_paced_download_is_not_paced_past_its_time_limit(sandbox, user, local_outputs, settings):
    settings.OUTPUT_COPY_MAX_MB_PER_SECOND = 0.001  # 1 KB/s: the pause after the first chunk is hours long
    settings.OUTPUT_COPY_MAX_SECONDS = 1
    sandbox.output_bytes = 2 * 1024 * 1024
    started = time.monotonic()
    copy = copy_now(completed_job(sandbox, user))

    assert time.monotonic() - started < 4
    assert copy.state == State.WAITING and "took longer than 1 s" in copy.last_error


def test_a_copy_cut_short_by_stopping_is_due_again_without_using_an_attempt(sandbox, user, local_outputs):
    job = completed_job(sandbox, user)
    sandbox.set_faults({"outputs": {job.request_id: "trickle"}})
    outputs.enqueue(submission=job)
    copy = OutputCopy.objects.get(submission=job)
    assert tasks.claim(copy) and copy.attempts == 1
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()

    assert outputs.copy_one(copy=copy, stop=stop) is False

    copy.refresh_from_db()
    assert copy.state == State.WAITING and copy.attempts == 0 and copy.last_error == ""
    assert copy.next_attempt_at <= timezone.now()
    assert list((local_outputs / storage.PARTIAL_FOLDER).iterdir()) == []  # nothing half-done left behind


def test_the_download_is_spooled_beside_local_storage_and_moved_into_place(sandbox, user, local_outputs, monkeypatch):
    seen: list[str] = []
    real = chamelaion.ChamelaionClient.download_output

    def spying(self, url, *, into, **kwargs):
        seen.append(into.name)
        return real(self, url, into=into, **kwargs)

    monkeypatch.setattr(chamelaion.ChamelaionClient, "download_output", spying)
    copy = copy_now(completed_job(sandbox, user))

    assert copy.state == State.DONE
    assert seen and seen[0].startswith(str(local_outputs / storage.PARTIAL_FOLDER))
    assert (local_outputs / copy.file.name).read_bytes() == SAMPLE
    assert not os.path.exists(seen[0])  # renamed into place, not left as a second copy


def test_on_s3_the_download_is_spooled_in_the_system_temporary_folder(s3_outputs):
    assert storage.spool_dir() is None
    assert storage.sweep_partials(older_than_seconds=0) == 0


def test_half_done_downloads_of_a_dead_worker_are_swept_but_not_one_under_way(local_outputs):
    folder = local_outputs / storage.PARTIAL_FOLDER
    folder.mkdir(parents=True)
    abandoned, under_way = folder / "copy-old.mp4.partial", folder / "copy-new.mp4.partial"
    abandoned.write_bytes(b"half")
    under_way.write_bytes(b"half")
    long_ago = time.time() - OutputCopy.STUCK_AFTER.total_seconds() - 60
    os.utime(abandoned, (long_ago, long_ago))

    assert outputs.forget_half_done_copies() == 1
    assert not abandoned.exists() and under_way.exists()


def test_the_trickle_knob_is_one_of_the_output_faults(sandbox):
    sandbox.set_faults({"outputs": {"*": "trickle"}})
    with pytest.raises(ValueError, match="unknown output fault"):
        sandbox.set_faults({"outputs": {"*": "trickles"}})
