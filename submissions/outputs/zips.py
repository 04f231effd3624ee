"""Kept outputs as one ZIP: a batch as a deliverable (the latest take of every language) or the jobs ticked
in the history, each video under its download name, with a manifest.csv of every job, kept or not.

The ZIP is made as it is sent: nothing is built in memory or on disk first, and each video is read from
storage in chunks only when the ZIP reaches it, so at most one file is open at a time. Videos are stored,
not compressed (MP4 does not shrink), which lets the ZIP's length be known before its first byte: the
browser shows real progress, and a download cut short is seen as broken rather than saved as a short ZIP.
With every copy's CRC-32 recorded when it was kept, zipwriter writes the ZIP at the speed of reading the
files; zipstream-ng, which checksums as it goes, makes the ZIP of a copy kept without one."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import zipstream
from django.conf import settings
from django.http import StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme

from submissions.batches import selectors as batch_selectors
from submissions.core import paging
from submissions.jobs import selectors as job_selectors
from submissions.jobs.csv_export import neutralise
from submissions.models import Batch, OutputCopy, Submission
from submissions.outputs import names, serving, storage, zipwriter

logger = logging.getLogger(__name__)

CHUNK_BYTES = serving.CHUNK_BYTES
MANIFEST_NAME = "manifest.csv"
MANIFEST_COLUMNS = (
    "language", "title", "take", "request id", "reference id", "state", "SHA-256", "size", "duration", "finished at", "file",
)
# What the manifest's state says after the job's own state, for a completed job whose video is not in the ZIP.
NO_COPY = "No copy kept"
COPY_MISSING = "Kept copy not found in storage"

NOT_A_NUMBER = (
    "Nothing was downloaded: every ticked job is sent as job=<its number>, and one of them is not a number. "
    "Go back to the history and tick the jobs again."
)
TOO_MANY = (
    "Nothing was downloaded: {count} jobs were ticked, and one ZIP holds at most {maximum}. "
    "Go back to the history (your ticks are still there), untick some, and download the rest in a second ZIP."
)
ZIPS_OFF = "Nothing was downloaded: downloading ticked jobs as a ZIP is turned off here (HISTORY_ZIP_MAX_JOBS is 0)."
NOTHING_TICKED = "Tick the jobs to download first, then press “Download ticked (ZIP)”."
NONE_FOUND = "None of the ticked jobs can be found any more, so there was nothing to download."


class CannotZip(Exception):
    """The ticked jobs cannot be made into a ZIP as asked; the message says why in plain words."""


@dataclass(frozen=True)
class Member:
    """One job of the ZIP: its row of the manifest, and its video when the ZIP holds it."""

    job: Submission
    copy: OutputCopy | None
    name: str  # the video's name in the ZIP; "" when the ZIP does not hold it
    size: int | None  # the stored file's bytes; None when unknown (the ZIP then has no length)
    note: str  # what the manifest adds to the job's state ("Kept", "Keeping a copy", ...), or ""

    @property
    def in_zip(self) -> bool:
        return bool(self.name)


# --- Which jobs -------------------------------------------------------------------------------------------


def batch_jobs(*, batch: Batch, user: Any) -> list[Submission]:
    """The batch's deliverable as this user may have it: the latest take of each language, in the order the
    languages were entered, less the jobs they may not see. Seeing a batch is not seeing every job in it: a
    member without the team's history sees their own batch, but not a take of it someone else made. Such a
    job is left out, manifest row and all, as the history's ZIP leaves out a ticked job they may not see."""
    visible = set(job_selectors.visible_submissions(user=user).filter(batch=batch).values_list("pk", flat=True))
    return [job for job in batch_selectors.batch_overview(batch=batch).jobs if job.pk in visible]


def ticked_ids(*, values: Iterable[str], maximum: int) -> list[int]:
    """The job ids ticked in the history, each once, in the order given. Blank values are ignored. Raises
    CannotZip for a value that is not a whole number, or for more jobs than one ZIP holds."""
    ids: dict[int, None] = {}
    for value in values:
        if not value:
            continue
        if not (value.isascii() and value.isdigit()):
            raise CannotZip(NOT_A_NUMBER)
        # A number no id can be (0, or more digits than an id has) names no job: 0 stands for it, found never.
        number = paging.as_id(value)
        ids[number or 0] = None
    if ids and maximum <= 0:
        raise CannotZip(ZIPS_OFF)
    if len(ids) > maximum:
        raise CannotZip(TOO_MANY.format(count=len(ids), maximum=maximum))
    return list(ids)


def ticked_jobs(*, user: Any, ids: list[int]) -> list[Submission]:
    """The ticked jobs this user may see, in the order ticked. An id they may not see is treated as one that
    does not exist: left out, and said nowhere."""
    found = {job.pk: job for job in job_selectors.visible_submissions(user=user).filter(pk__in=ids).select_related("output_copy")}
    return [found[pk] for pk in ids if pk in found]


def history_address(*, back: str, host: str, secure: bool) -> str:
    """Where "back to the history" leads: the history page the form was on (its tab and filters), if `back`
    is that page on this site; the history itself otherwise (never another site)."""
    history = reverse("submissions:history")
    if back and url_has_allowed_host_and_scheme(back, allowed_hosts={host}, require_https=secure):
        parts = urlsplit(back)
        if not parts.scheme and not parts.netloc and parts.path == history:
            return back
    return history


# --- What goes in -----------------------------------------------------------------------------------------


def members_of(*, jobs: Iterable[Submission]) -> list[Member]:
    """Each job with its kept copy, if any, under a name no other file of the ZIP has. A copy whose file is
    gone from storage is listed as such rather than breaking the whole ZIP halfway through."""
    taken = {MANIFEST_NAME.casefold()}
    members = []
    for job in jobs:
        copy = _copy_of(job)
        if copy is None or not copy.is_kept:
            note = copy.label if copy is not None else (NO_COPY if job.is_completed else "")
            members.append(Member(job=job, copy=copy, name="", size=None, note=note))
            continue
        try:
            size = _stored_size(copy)
        except Exception:  # any backend's failure (deleted by hand, a bucket emptied, the store unreachable)
            logger.warning("Kept copy of submission %s is missing from storage: left out of a ZIP", job.pk, exc_info=True)
            members.append(Member(job=job, copy=copy, name="", size=None, note=COPY_MISSING))
            continue
        name = unique_name(names.download_name(job), taken=taken)
        members.append(Member(job=job, copy=copy, name=name, size=size, note=copy.label))
    return members


def _copy_of(job: Submission) -> OutputCopy | None:
    if not settings.OUTPUT_KEEP:
        return None  # copies switched off: not served anywhere, the ZIP included (as selectors.kept_copy)
    # Loaded with the job (select_related); a job without one raises RelatedObjectDoesNotExist, an AttributeError.
    return getattr(job, "output_copy", None)


def _stored_size(copy: OutputCopy) -> int | None:
    """The file's bytes as stored (one stat, or one HEAD on S3): the recorded size is what was downloaded,
    and a ZIP that announces its length must announce exactly what it will send."""
    try:
        return int(copy.file.storage.size(copy.file.name))
    except NotImplementedError:
        return None  # a backend that cannot tell: the ZIP is sent without a length


def unique_name(name: str, *, taken: set[str]) -> str:
    """`name`, or "name (2).mp4", "name (3).mp4"... if the ZIP already has it. Compared without case: Windows
    and macOS would write "A.mp4" and "a.mp4" to the same file when unzipping."""
    stem, dot, extension = name.rpartition(".")
    if not dot:
        stem, extension = name, ""
    candidate, number = name, 1
    while candidate.casefold() in taken:
        number += 1
        candidate = f"{stem} ({number}){dot}{extension}"
    taken.add(candidate.casefold())
    return candidate


def manifest(members: Iterable[Member]) -> bytes:
    """manifest.csv: a row per job, in the ZIP's order. UTF-8 with a BOM (Excel reads accents only then), and
    every cell a spreadsheet would run as a formula made plain text, as the CSV export does."""
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(MANIFEST_COLUMNS)
    for member in members:
        writer.writerow([neutralise(value) for value in _manifest_row(member)])
    return ("\ufeff" + text.getvalue()).encode()


def _manifest_row(member: Member) -> list[str]:
    job, copy = member.job, member.copy
    kept = copy if member.in_zip else None
    return [
        job.target_language,
        job.title,
        str(job.take),
        job.request_id or "",
        job.reference_id or "",
        f"{job.status_label} — {member.note}" if member.note else job.status_label,
        kept.sha256 if kept is not None else "",
        str(member.size) if kept is not None and member.size is not None else "",
        f"{kept.duration_seconds:.2f}" if kept is not None and kept.duration_seconds is not None else "",
        timezone.localtime(job.finished_at).strftime("%Y-%m-%d %H:%M:%S") if job.finished_at else "",
        member.name,
    ]


# --- Sending it -------------------------------------------------------------------------------------------


def batch_filename(*, batch: Batch) -> str:
    return names.safe_name(f"{names.safe_part(batch.name) or f'batch-{batch.pk}'}.zip")


def history_filename() -> str:
    return f"dubdash-jobs-{timezone.localtime():%Y%m%d-%H%M}.zip"


def zip_response(*, members: list[Member], filename: str) -> StreamingHttpResponse:
    """The ZIP as a download, streamed; with Content-Length whenever every video's size is known."""
    files = _OpenFiles()
    listing = manifest(members)
    videos = [(member, member.copy) for member in members if member.in_zip and member.copy is not None]
    recorded = [
        (member.name, member.size, copy.crc32, copy)
        for member, copy in videos
        if member.size is not None and copy.crc32 is not None
    ]
    body: Iterable[bytes]
    length: int | None
    if len(recorded) == len(videos):
        body, length = _recorded_zip(listing, recorded, files)
    else:
        body, length = _checksummed_zip(listing, videos, files)
    response = StreamingHttpResponse(_streamed(body, files), content_type="application/zip")
    response["Content-Disposition"] = serving.content_disposition(filename, inline=False)
    response["Cache-Control"] = "private"
    if length is not None:
        response["Content-Length"] = str(length)
    return response


def _recorded_zip(
    listing: bytes, videos: list[tuple[str, int, int, OutputCopy]], files: _OpenFiles
) -> tuple[Iterable[bytes], int]:
    """Every copy's size and CRC-32 known (recorded when it was kept): the ZIP costs no more than reading the
    files. zipstream-ng checksums every byte again as it streams, at under half the speed of `cat`."""
    now = timezone.localtime().replace(tzinfo=None)  # a ZIP's times are local, without a zone
    parts = [zipwriter.in_memory(MANIFEST_NAME, listing, now)]
    for name, size, crc32, copy in videos:
        kept_at = timezone.localtime(copy.kept_at).replace(tzinfo=None) if copy.kept_at else now
        parts.append(zipwriter.Member(name=name, size=size, crc32=crc32, modified=kept_at, chunks=partial(files.chunks, copy)))
    return zipwriter.stream(parts), zipwriter.archive_size(parts)


def _checksummed_zip(
    listing: bytes, videos: list[tuple[Member, OutputCopy]], files: _OpenFiles
) -> tuple[Iterable[bytes], int | None]:
    """A copy kept without a CRC-32 (put there by hand): zipstream-ng computes it as it streams. Still sized
    when every size is known (stored, not compressed), with data descriptors after each file."""
    sized = all(member.size is not None for member, _copy in videos)
    archive = zipstream.ZipStream(compress_type=zipstream.ZIP_STORED, sized=sized)
    archive.add(listing, MANIFEST_NAME)
    for member, copy in videos:
        archive.add(files.chunks(copy), member.name, size=member.size)
    return archive, (len(archive) if sized else None)


def _streamed(body: Iterable[bytes], files: _OpenFiles) -> Iterator[bytes]:
    # Django closes this generator when the response ends, sent or not (the client went away): the
    # `finally` then closes whatever file the ZIP was in the middle of.
    try:
        yield from body
    finally:
        files.close()


class _OpenFiles:
    """Opens each video when the ZIP reaches it (not before: one open file at a time, however many videos),
    and closes it when read, or in close() if the download stops halfway."""

    def __init__(self) -> None:
        self._open: list[Any] = []

    def chunks(self, copy: OutputCopy) -> Iterator[bytes]:
        source = self._open_file(copy)
        try:
            while chunk := source.read(CHUNK_BYTES):
                yield chunk
        finally:
            self._close(source)

    def _open_file(self, copy: OutputCopy) -> Any:
        handle = copy.file.storage.open(copy.file.name, "rb")
        self._open.append(handle)
        if storage.is_s3():
            # S3File would first download the whole object into a buffer; the object's body is read as it
            # arrives instead. S3File.obj is the boto3 Object, looked up (HEAD) when the file was opened.
            body = handle.obj.get()["Body"]
            self._open.append(body)
            self._close(handle)
            return body
        return handle

    def _close(self, source: Any) -> None:
        if source in self._open:
            self._open.remove(source)
        source.close()

    def close(self) -> None:
        for source in list(self._open):
            self._close(source)
