"""Batches: one source video in many languages, saved together, then sent within the rate budget;
and "Retry the failed ones"."""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from submissions.batches import selectors as batch_selectors
from submissions.core import activity
from submissions.core.reference_ids import new_reference_id
from submissions.jobs.fingerprints import fingerprint_of
from submissions.jobs.services import (
    ReferenceIdTaken,
    create_submission,
    reopen,
)
from submissions.models import Batch, Submission
from submissions.outbox.sending import send_while_room
from submissions.takes import services as takes
from submissions.team import limits

State = Submission.State


def create_batch(*, user: Any, name: str, rows: list[dict[str, Any]]) -> Batch:
    """One batch, one saved submission per row (each row: the create_submission fields), all waiting to
    send; then as many are sent at once as the rate budget has room for, the rest by the worker."""
    batch, submissions = save_batch(user=user, name=name, rows=rows)
    send_while_room(submissions)
    return batch


def save_batch(*, user: Any, name: str, rows: list[dict[str, Any]]) -> tuple[Batch, list[Submission]]:
    """Save the batch and its submissions in one transaction (the caller's, if it has one); send nothing."""
    now = timezone.now()
    try:
        with transaction.atomic():
            limits.check_monthly_limit(user=user, adding=len(rows))
            batch = Batch.objects.create(name=name, created_by=user, created_at=now)
            submissions = Submission.objects.bulk_create(
                Submission(
                    created_by=user,
                    batch=batch,
                    created_at=now,
                    next_attempt_at=now,
                    inputs_fingerprint=fingerprint_of(row),
                    **{**row, "reference_id": row.get("reference_id") or new_reference_id()},
                )
                for row in rows
            )
            # The activity trail: one entry per batch, not per job.
            activity.record(actor=user, verb=activity.Verb.SUBMITTED, batch=batch, details=f"Batch of {len(submissions)} jobs")
    except IntegrityError as exc:
        raise ReferenceIdTaken("") from exc
    return batch, submissions


def retry_failed(*, batch: Batch, user: Any) -> int:
    """"Retry the failed ones": what could not be sent goes back in the outbox; a job Chamelaion failed (or
    lost) is sent again as its language's next take (the same inputs), replacing the old one, which stays in
    the history.

    All or nothing: every monthly limit involved is checked for the whole retry before anything changes,
    so a limit reached half way never leaves half the batch retried (MonthlyLimitReached, nothing done)."""
    with transaction.atomic():
        # One retry of a batch at a time: a double click's second retry then finds nothing left to retry.
        Batch.objects.select_for_update().filter(pk=batch.pk).values_list("pk").get()
        # What the page's button counted, by the same rule (selectors.failed_to_retry), read again under the lock.
        failed = batch_selectors.failed_to_retry(batch=batch)
        unsent, finished_badly = failed.unsent, failed.finished_badly
        # Each job counts for its owner: a job sent again stays its submitter's, a new take is the retrier's.
        adding = Counter(job.created_by for job in unsent if job.created_by is not None)
        if finished_badly:
            adding[user] += len(finished_badly)
        for owner, count in sorted(adding.items(), key=lambda item: item[0].pk):  # locks in one order: no deadlock
            limits.check_monthly_limit(user=owner, adding=count, actor=user)
        retried = [job for job in unsent if reopen(submission=job, changes=None) is not None]
        retakes = (_retake(failed=failed, batch=batch, user=user) for failed in finished_badly)
        retried.extend(job for job in retakes if job is not None)
        if retried:
            activity.record(actor=user, verb=activity.Verb.RETRIED, batch=batch, details=f"{len(retried)} failed jobs sent again")
    send_while_room(retried)
    return len(retried)


def _retake(*, failed: Submission, batch: Batch, user: Any) -> Submission | None:
    """A failed job sent again as the next take of its language, with the same inputs (None if a new take
    replaced it since the batch was read: that one is what the language has now). In retry_failed's
    transaction, after the monthly limits: the order a new take locks them in too."""
    chain = takes.lock_chain(of=failed)
    if chain.latest.pk != failed.pk:
        return None
    job = create_submission(
        user=user,
        video_url=failed.video_url,
        audio_url=failed.audio_url,
        disable_active_speaker_detection=failed.disable_active_speaker_detection,
        target_language=failed.target_language,
        title=failed.title,
        batch=batch,
        retry_of=failed,
        limit_checked=True,  # for the whole retry, by retry_failed
    )
    takes.number_as_next_take(submission=job, chain=chain)
    return job
