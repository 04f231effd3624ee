"""Keeping a copy of every output: written as an outbox task when a job completes, then copied by the worker's
keeper thread (never the sending or polling threads), streamed through a temporary file with bounded memory,
with its own timeouts and retries. Its size, SHA-256 and duration are recorded."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from typing import Any

from django.conf import settings
from django.core.files import File
from django.core.files.temp import NamedTemporaryFile
from django.utils import timezone
from mutagen import MutagenError
from mutagen.mp4 import MP4

from submissions import chamelaion
from submissions.apikey import clients
from submissions.core import activity
from submissions.models import OutputCopy, Submission
from submissions.outbox import tasks
from submissions.outputs import storage

logger = logging.getLogger(__name__)
CANDIDATES = 10
NO_LINK = "Chamelaion reported this job as completed without a usable link to the video, so there is nothing to copy."
NOT_PLAYABLE = "The file Chamelaion sent is not a playable MP4 video (its header could not be read)."
UNEXPECTED = "Keeping a copy failed unexpectedly ({reason}). DubDash tries again by itself."
STORAGE_FAILED = "DubDash could not write the copy to its storage ({reason}). It tries again by itself."


class CopyFailed(Exception):
    def __init__(self, message: str, *, retryable: bool):
        super().__init__(message)
        self.message = message
        self.retryable = retryable


# --- Writing the task -------------------------------------------------------------------------------


def enqueue(*, submission: Submission) -> None:
    """A job has just completed: its copy is due (nothing if copying is off). Safe to call twice."""
    if settings.OUTPUT_KEEP:
        OutputCopy.objects.bulk_create([OutputCopy(submission=submission)], ignore_conflicts=True)


def catch_up(*, limit: int) -> int:
    """Completed jobs without a copy (they completed before copying was on, or while it was off) get one,
    newest first, `limit` at a time: the worker calls this at a gentle pace, `manage.py keep_outputs` at once."""
    if not settings.OUTPUT_KEEP or limit <= 0:
        return 0
    missing = list(
        Submission.objects.filter(state=Submission.State.COMPLETED, output_copy__isnull=True)
        .exclude(output_url="")
        .order_by("-finished_at", "-pk")
        .values_list("pk", flat=True)[:limit]
    )
    OutputCopy.objects.bulk_create([OutputCopy(submission_id=pk) for pk in missing], ignore_conflicts=True)
    return len(missing)


def retry_copy(*, submission: Submission, user: Any) -> bool:
    """A person asks to try again a copy that could not be made."""
    copy = OutputCopy.objects.filter(submission=submission).first()
    if copy is None or not tasks.requeue(copy, last_error=""):
        return False
    activity.record(actor=user, verb=activity.Verb.COPY_RETRIED, submission=submission)
    return True


# --- Doing it ---------------------------------------------------------------------------------------


def copy_due(*, seconds: float, stop: threading.Event | None = None) -> int:
    """Copy due outputs for up to `seconds` (a copy under way is finished first); returns how many were tried."""
    stop = stop or threading.Event()
    deadline = time.monotonic() + seconds
    tried = 0
    while not stop.is_set() and time.monotonic() < deadline and settings.OUTPUT_KEEP:
        candidates = tasks.due(OutputCopy, limit=CANDIDATES)
        claimed = next((copy for copy in candidates if tasks.claim(copy)), None)
        if claimed is None:
            break
        copy_one(copy=claimed, stop=stop)
        tried += 1
    return tried


def copy_one(*, copy: OutputCopy, stop: threading.Event | None = None) -> bool:
    """The claimed copy's one attempt. Returns whether the output is now kept. Setting `stop` (the worker
    is shutting down) cuts a download short: the copy is then due again, its attempt not counted."""
    stop = stop or threading.Event()
    submission = Submission.objects.get(pk=copy.submission_id)
    try:
        kept = _fetch_and_store(copy, submission, stop)
    except Exception as error:  # anything else (a full disk, a bug): retried, never left "running" for good
        if stop.is_set():
            tasks.release(copy)
            logger.info("Copy of submission %s's output stopped with the worker; due again", submission.pk)
            return False
        unexpected = CopyFailed(UNEXPECTED.format(reason=type(error).__name__), retryable=True)
        failure = error if isinstance(error, CopyFailed) else unexpected
        if not isinstance(error, CopyFailed):
            logger.exception("Copy of submission %s's output failed unexpectedly", submission.pk)
        logger.warning("Copy of submission %s's output failed: %s", submission.pk, failure.message)
        tasks.fail(
            copy,
            message=failure.message,
            retryable=failure.retryable,
            max_attempts=settings.OUTPUT_COPY_MAX_ATTEMPTS,
            base=settings.OUTPUT_COPY_RETRY_BASE_SECONDS,
            cap=settings.OUTPUT_COPY_RETRY_MAX_SECONDS,
        )
        return False
    if not tasks.succeed(copy, **kept):
        # Taken over meanwhile (this attempt was declared stuck): the other attempt's file is the one kept.
        copy.file.storage.delete(kept["file"])
        return False
    logger.info("Kept a copy of submission %s's output (%s bytes)", submission.pk, kept["size"])
    return True


def _fetch_and_store(copy: OutputCopy, submission: Submission, stop: threading.Event) -> dict[str, Any]:
    url = submission.playable_output_url
    if not url:
        raise CopyFailed(NO_LINK, retryable=False)
    # On disk, not in memory: the temporary file is what bounds memory, whatever the size of the video. A
    # named one, so that local storage moves it into place rather than copying it a second time.
    spool = NamedTemporaryFile(prefix="copy-", suffix=".mp4.partial", dir=storage.spool_dir(), delete=False)
    try:
        try:
            got = clients.get_download_client().download_output(
                url,
                into=spool,
                max_bytes=settings.OUTPUT_MAX_BYTES,
                max_seconds=settings.OUTPUT_COPY_MAX_SECONDS,
                max_bytes_per_second=settings.OUTPUT_COPY_MAX_MB_PER_SECOND * 1024 * 1024,
                stop=stop,
            )
        except chamelaion.DownloadFailed as error:
            raise CopyFailed(error.user_message, retryable=error.retryable) from error
        spool.flush()
        duration = _duration(spool)
        spool.seek(0)
        name = f"{submission.reference_id or submission.pk}.mp4"
        try:
            stored = copy.file.storage.save(copy.file.field.generate_filename(copy, name), _Spooled(spool, name=name))
        except Exception as error:  # any backend's failure (disk full, S3 refusing): retried later
            raise CopyFailed(STORAGE_FAILED.format(reason=type(error).__name__), retryable=True) from error
    finally:
        spool.close()
        with contextlib.suppress(FileNotFoundError):  # moved into the storage, or never written
            os.unlink(spool.name)
    return {
        "file": stored,
        "size": got.size,
        "sha256": got.sha256,
        "crc32": got.crc32,
        "duration_seconds": duration,
        "kept_at": timezone.now(),
    }


class _Spooled(File):
    """The downloaded file, as Django's upload handlers hand over theirs: FileSystemStorage moves a file
    that has a temporary_file_path() instead of copying it chunk by chunk."""

    def __init__(self, spool: Any, *, name: str) -> None:
        super().__init__(spool, name=name)
        self.path_on_disk = str(spool.name)

    def temporary_file_path(self) -> str:
        return self.path_on_disk


def _duration(spool: Any) -> float:
    spool.seek(0)
    try:
        info = MP4(fileobj=spool).info
        length = info.length if info is not None else 0
    except (MutagenError, ValueError, OSError) as error:
        raise CopyFailed(NOT_PLAYABLE, retryable=False) from error
    if not length or length <= 0:
        raise CopyFailed(NOT_PLAYABLE, retryable=False)
    return float(length)


def forget_half_done_copies() -> int:
    """Delete downloads a worker that died mid-copy left behind (older than any copy may still be running)."""
    return storage.sweep_partials(older_than_seconds=OutputCopy.STUCK_AFTER.total_seconds())


def copy_all_due(*, pause: float) -> int:
    """Copy every due output, one at a time with `pause` seconds between (manage.py keep_outputs --copy)."""
    tried = 0
    while copy_due(seconds=0.001):
        tried += 1
        time.sleep(pause)
    return tried
