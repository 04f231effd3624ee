"""Intake: saving a job, sending it again, cancelling it. Views, admin actions and commands call these.

A job is saved (waiting to send) before anything is sent; the outbox (submissions.outbox.sending) sends it
at once if the rate budget has room, otherwise the worker sends it in its turn."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from submissions.core import activity
from submissions.core.reference_ids import chose_reference_id, new_reference_id
from submissions.core.states import nothing_sent_yet, transition
from submissions.jobs import selectors as job_selectors
from submissions.jobs.fingerprints import INPUT_FIELDS, fingerprint_of
from submissions.models import Batch, Submission
from submissions.outbox.sending import deliver_new, discard_uploads, send_if_room, take_slot_now
from submissions.team import limits

State = Submission.State


# Fields a user may change when sending a failed submission again from the form.
EDITABLE_FIELDS = (
    "title",
    "video_url",
    "audio_url",
    "disable_active_speaker_detection",
    "reference_id",
    "target_language",
)


class ReferenceIdTaken(Exception):
    pass


# --- Saving ----------------------------------------------------------------------------------------


def create_submission(
    *,
    user: Any,
    video_url: str,
    audio_url: str,
    disable_active_speaker_detection: bool = False,
    reference_id: str = "",
    target_language: str = "",
    title: str = "",
    batch: Batch | None = None,
    retry_of: Submission | None = None,
    claim_if_room: bool = False,
    limit_checked: bool = False,
) -> Submission:
    """Save one job waiting to send. With `claim_if_room`, if sending is not paused and the rate budget has
    a slot now, the slot is taken in the same transaction and the job saved as the outbox's claim leaves
    one (SENDING, its first attempt starting now), for the caller to send next: no second write claims it,
    and if saving fails (the monthly limit, a reference id taken a moment ago) the slot is given back with
    the rest of the transaction."""
    inputs = {
        "video_url": video_url,
        "audio_url": audio_url,
        "disable_active_speaker_detection": disable_active_speaker_detection,
    }
    try:
        # Inside the caller's transaction, if any, without a savepoint of its own (two queries fewer per
        # submit): a clash then undoes the caller's whole transaction, which is what every caller wants
        # (submit's trail entry, a batch's retry). A caller must not catch ReferenceIdTaken and carry on
        # in the same transaction.
        with transaction.atomic(savepoint=False):
            if user is not None and not limit_checked:  # a caller that checked a whole set says so
                limits.check_monthly_limit(user=user, adding=1)
            claimed = claim_if_room and take_slot_now()
            now = timezone.now()
            as_claimed = {"state": Submission.State.SENDING, "send_attempts": 1, "last_attempt_at": now} if claimed else {}
            return Submission.objects.create(
                created_by=user,
                **inputs,
                inputs_fingerprint=fingerprint_of(inputs),
                reference_id=reference_id or new_reference_id(),
                target_language=target_language,
                title=title,
                batch=batch,
                retry_of=retry_of,
                next_attempt_at=now,
                **as_claimed,
            )
    except IntegrityError as exc:
        # The form checks uniqueness, but two people can pick the same id at the same moment.
        raise ReferenceIdTaken(reference_id) from exc


def submit(*, user: Any, **fields: Any) -> Submission:
    """Save a new submission and send it at once if sending is not paused and the rate budget has room;
    otherwise the worker sends it when its turn comes. The row survives whatever the API does."""
    with transaction.atomic():  # the job, its slot of the budget and its trail entry, together
        submission = create_submission(user=user, claim_if_room=True, **fields)
        activity.record(actor=user, verb=activity.Verb.SUBMITTED, submission=submission)
    return deliver_new(submission) if submission.state == Submission.State.SENDING else submission


def send_again(*, submission: Submission, changes: dict[str, Any] | None = None, user: Any = None) -> Submission:
    """A person asks to send a submission that could not be sent: a fresh set of retries, in its turn.
    `user` is who asked, for the activity trail (None: not known to the caller). The job counts against
    its submitter's monthly limit again (a job that could not be sent did not): MonthlyLimitReached if
    that is used up, and nothing changes."""
    if submission.is_stuck_sending:
        activity.record(actor=user, verb=activity.Verb.SENT_AGAIN, submission=submission, details="Interrupted send resumed")
        return send_if_room(submission=submission)  # settles the interrupted send first, within the budget
    with transaction.atomic():
        if submission.created_by_id is not None:
            limits.check_monthly_limit(user=submission.created_by, adding=1, actor=user)
        edited = reopen(submission=submission, changes=changes)
        if edited is not None:
            activity.record(actor=user, verb=activity.Verb.SENT_AGAIN, submission=submission, details=edited)  # activity trail
    return send_if_room(submission=submission)


def reopen(*, submission: Submission, changes: dict[str, Any] | None) -> str | None:
    """Could not be sent → waiting to send, with a fresh set of retries (and the person's edits, if any).
    Returns what the activity trail says of it (which inputs were edited), or None if it was no longer
    waiting to be sent again. The caller checks the monthly limit in the same transaction."""
    now = timezone.now()
    fields: dict[str, Any] = {
        "next_attempt_at": now,
        "counted_at": now,  # it did not count while it could not be sent; from now it does, in this month
        "send_attempts": 0,
        "failed_deliveries": 0,
        "first_failed_delivery_at": None,
    }
    if changes and not submission.send_outcome_unknown:  # no job can exist upstream: edits are safe
        fields.update(_editable(submission, changes))
    edited = _edited_inputs(submission, fields)  # before the transition updates the instance
    try:
        with transaction.atomic():
            # Never back in the outbox without inputs: an upload whose files were deleted (uploads.cleanup),
            # unless this person gives links now.
            # Nor once a later take replaces it: that would make two live jobs for one language.
            guard = Q(retried_as__isnull=True)
            if not fields.get("video_url"):
                guard &= job_selectors.has_inputs_to_send()
            moved = transition(submission, expected=State.SEND_FAILED, guard=guard, state=State.PENDING, **fields)
    except IntegrityError as exc:
        raise ReferenceIdTaken(fields.get("reference_id", "")) from exc
    return edited if moved else None


def _edited_inputs(submission: Submission, fields: dict[str, Any]) -> str:
    """For the trail: which inputs are edited when sending again (names only, never values)."""
    edited = [name.replace("_", " ") for name in EDITABLE_FIELDS if name in fields and fields[name] != getattr(submission, name)]
    return f"Edited {', '.join(edited)}" if edited else ""


def _editable(submission: Submission, changes: dict[str, Any]) -> dict[str, Any]:
    updates = {field: changes[field] for field in EDITABLE_FIELDS if field in changes}
    if not updates.get("reference_id"):
        # Left blank: DubDash's own id stays; a chosen one is replaced by one DubDash makes, as the form
        # promises (the chosen one may be why it was refused: a stranger's job already holds it).
        chosen = chose_reference_id(submission.reference_id or "")
        updates["reference_id"] = new_reference_id() if "reference_id" in changes and chosen else submission.reference_id
    updates["inputs_fingerprint"] = fingerprint_of({name: updates.get(name, getattr(submission, name)) for name in INPUT_FIELDS})
    return updates


# --- Cancelling ------------------------------------------------------------------------------------------


def cancel(*, submission: Submission, user: Any) -> bool:
    """Withdraw a job that is still waiting to send. Never one that is being sent or was sent, nor one
    whose earlier attempt may have reached Chamelaion (it could exist upstream; only settling tells).
    The same conditional UPDATE as every state change: if the outbox claims the job first, the claim
    wins and nothing is cancelled. Returns whether it was cancelled; the instance is current either way."""
    cancelled = transition(
        submission,
        expected=State.PENDING,
        guard=nothing_sent_yet(),
        state=State.CANCELLED,
        next_attempt_at=None,
    )
    if cancelled:
        discard_uploads(submission)  # never sent now: the files have no more use
        activity.record(actor=user, verb=activity.Verb.CANCELLED, submission=submission)
    return cancelled
