"""New takes: a job made again for the same language, with another audio track or other options. The new
job replaces the latest take of that language (`retry_of`), is numbered after it (`take`) and points to
the first take (`first_take`); the earlier takes stay in the history.

Two takes made at the same moment must not both become take N+1: the number and the take replaced are read
under a lock on the first take's row (lock_chain), and the (first_take, take) unique constraint backs it
up. "Retry the failed ones" numbers its new jobs through the same lock (batches.services)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.core.files import File
from django.db import IntegrityError, transaction
from django.db.models.fields.files import FieldFile

from submissions.core import activity
from submissions.core.reference_ids import new_reference_id
from submissions.jobs.services import ReferenceIdTaken, create_submission
from submissions.models import Submission
from submissions.outbox.sending import deliver_new, send_if_room
from submissions.takes.selectors import takes_of_chain, why_no_new_take
from submissions.team import limits, permissions
from submissions.uploads.services import SEND_IN_REQUEST_MAX_BYTES

State = Submission.State


class NoNewTakeNow(Exception):
    """The latest take of the language has not settled (selectors.SETTLED), or this user may not replace it
    (team.permissions.can_make_new_take); the message says so to people."""


class KeptFileGone(Exception):
    """A file the take was to reuse from an earlier take was deleted meanwhile (it was sent, or cleaned up)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Chain:
    """The takes of one language as read under the lock: the first take's id and the latest take."""

    root_id: int
    latest: Submission

    @property
    def next_take(self) -> int:
        return self.latest.take + 1


def lock_chain(*, of: Submission) -> Chain:
    """Lock the takes of `of`'s language and read the latest: call inside the transaction that saves the
    next take. Whoever comes second waits here, then reads the take the first one saved."""
    root_id = of.takes_root_id
    if root_id is None:
        raise ValueError("A take of an unsaved job")
    # NO KEY UPDATE (PostgreSQL; SQLite's writes are serialised anyway): it excludes the next take's maker
    # without holding up rows that merely refer to the first take (its trail, its kept output).
    Submission.objects.select_for_update(no_key=True).filter(pk=root_id).values_list("pk").get()
    latest = takes_of_chain(root_id=root_id)[0]  # never empty: it holds the first take, just locked
    return Chain(root_id=root_id, latest=latest)


def number_as_next_take(*, submission: Submission, chain: Chain) -> None:
    """Make a job just saved (by create_submission, which knows nothing of takes) the chain's next take.
    In the transaction that locked the chain."""
    Submission.objects.filter(pk=submission.pk).update(take=chain.next_take, first_take_id=chain.root_id)
    submission.take, submission.first_take_id = chain.next_take, chain.root_id


# --- A new take -------------------------------------------------------------------------------------


def make_new_take(
    *,
    user: Any,
    of: Submission,
    title: str,
    disable_active_speaker_detection: bool,
    video_url: str = "",
    audio_url: str = "",
    video: File | None = None,
    audio: File | None = None,
    reference_id: str = "",
) -> Submission:
    """Save the next take of `of`'s language and send it as a submit would: at once if the rate budget has
    room (files only if small enough), otherwise the worker sends it in its turn. Its inputs are two links
    or two files (Chamelaion takes one or the other); a file may be one `of` still keeps (its FieldFile),
    which is copied. Raises MonthlyLimitReached, NoNewTakeNow, KeptFileGone or ReferenceIdTaken, having
    saved nothing."""
    fields: dict[str, Any] = {
        "user": user,
        "of": of,
        "title": title,
        "disable_active_speaker_detection": disable_active_speaker_detection,
        "reference_id": reference_id,
    }
    if video is None and audio is None:
        submission = save_take_with_links(video_url=video_url, audio_url=audio_url, **fields)
        return deliver_new(submission) if submission.state == State.SENDING else submission
    if video is None or audio is None:
        raise ValueError("A take's video and audio are both links or both files.")
    # Measured before saving: once the take is saved, the earlier take's kept files may be cleaned up (and
    # the take's own copies deleted by the worker that sends it) at any moment.
    size = _size(video, name="video", of=of) + _size(audio, name="audio", of=of)
    submission = save_take_with_files(video=video, audio=audio, **fields)
    if size <= SEND_IN_REQUEST_MAX_BYTES:
        submission = send_if_room(submission=submission)
    return submission


def save_take_with_links(
    *,
    user: Any,
    of: Submission,
    title: str,
    video_url: str,
    audio_url: str,
    disable_active_speaker_detection: bool,
    reference_id: str = "",
) -> Submission:
    """The next take, saved with links and the slot to send it now if the budget has one (create_submission's
    claim_if_room): the caller sends it next (deliver_new) if it is SENDING."""
    with transaction.atomic():
        chain = _lock_for_new_take(user=user, of=of)
        submission = create_submission(
            user=user,
            video_url=video_url,
            audio_url=audio_url,
            disable_active_speaker_detection=disable_active_speaker_detection,
            reference_id=reference_id,
            target_language=of.target_language,  # a take is of the same language
            title=title,
            batch=of.batch,
            retry_of=chain.latest,
            claim_if_room=True,
            limit_checked=True,  # by _lock_for_new_take, in this transaction
        )
        number_as_next_take(submission=submission, chain=chain)
        _record(user=user, submission=submission, chain=chain)
    return submission


def save_take_with_files(
    *,
    user: Any,
    of: Submission,
    title: str,
    video: File,
    audio: File,
    disable_active_speaker_detection: bool,
    reference_id: str = "",
) -> Submission:
    """The next take, saved with files (sent with generate-with-media). As for an upload, the files are
    stored before the short transaction that numbers and saves the row (never while holding its locks), and
    deleted again if the row cannot be saved."""
    submission = Submission(
        created_by=user,
        title=title,
        disable_active_speaker_detection=disable_active_speaker_detection,
        reference_id=reference_id or new_reference_id(),
        target_language=of.target_language,
        batch_id=of.batch_id,
        # inputs_fingerprint stays blank: files have no URL to compare
    )
    with transaction.atomic():  # refuse before storing hundreds of megabytes
        _lock_for_new_take(user=user, of=of)
    try:
        _store(submission.video_upload, video, name="video", of=of)
        _store(submission.audio_upload, audio, name="audio", of=of)
        with transaction.atomic():
            chain = _lock_for_new_take(user=user, of=of)
            submission.retry_of = chain.latest
            submission.take, submission.first_take_id = chain.next_take, chain.root_id
            submission.save(force_insert=True)
            _record(user=user, submission=submission, chain=chain, details=" (uploaded files)")
    except BaseException as exc:
        for stored in (submission.video_upload, submission.audio_upload):
            if stored:
                stored.delete(save=False)
        if isinstance(exc, IntegrityError):  # a chosen reference id taken a moment ago
            raise ReferenceIdTaken(reference_id) from exc
        raise
    return submission


def _lock_for_new_take(*, user: Any, of: Submission) -> Chain:
    # The monthly limit first, then the chain: the order "Retry the failed ones" takes them in, so the two
    # never wait for each other in a circle.
    limits.check_monthly_limit(user=user, adding=1)
    chain = lock_chain(of=of)
    refusal = why_no_new_take(latest=chain.latest)
    if not refusal and not permissions.can_make_new_take(user, chain.latest):
        # The page checked the latest take it read; another one may have been made since, by someone else.
        refusal = (
            f"Only the person who made take {chain.latest.take} of this language, or a team admin, may replace it "
            "(it may have been made since this page was loaded)."
        )
    if refusal:
        raise NoNewTakeNow(refusal)
    return chain


def _store(field: FieldFile, content: File, *, name: str, of: Submission) -> None:
    """An uploaded file is moved into place. A file kept by the earlier take is copied, never shared: each
    job deletes its own files once they are sent."""
    filename = os.path.basename(content.name or name)
    if not isinstance(content, FieldFile):
        field.save(filename, content, save=False)
        return
    with _unless_gone(content, name=name, of=of), content.open("rb") as kept:
        field.save(filename, kept, save=False)


def _size(content: File, *, name: str, of: Submission) -> int:
    """The size of a file given for the take; KeptFileGone if it is one the earlier take kept and it was
    deleted since the form found it (uploads.cleanup, or that take's send)."""
    if not isinstance(content, FieldFile):
        return content.size  # an upload of this request: a temporary file only this request knows
    with _unless_gone(content, name=name, of=of):
        return content.size


@contextmanager
def _unless_gone(kept: FieldFile, *, name: str, of: Submission) -> Iterator[None]:
    """Reading a kept file: if it fails because the file is gone, KeptFileGone, which the page turns into a
    request to give the file again. Any other failure (the file still there) is a real error and stays one."""
    try:
        yield
    except OSError as exc:
        if kept.name and kept.storage.exists(kept.name):
            raise
        raise KeptFileGone(name, f"The {name} file of take {of.take} is no longer kept by DubDash: give it again.") from exc


def _record(*, user: Any, submission: Submission, chain: Chain, details: str = "") -> None:
    activity.record(
        actor=user,
        verb=activity.Verb.NEW_TAKE,
        submission=submission,
        details=f"Take {chain.next_take}, replacing take {chain.latest.take}{details}",
    )
