"""Everything that changes a submission. Views, admin actions and commands call these, nothing else.

A submission is saved before anything is sent. Sending first *claims* the row with a conditional UPDATE
(only one process can move it to SENDING), and every later state change is conditional on the state it
expects, so two processes never both win and a stale writer never overwrites fresh data.
"""

from __future__ import annotations

import logging
import math
import uuid
from datetime import timedelta
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from submissions import chamelaion
from submissions.models import Problem, Submission, settle_time, stuck_sending_time

logger = logging.getLogger(__name__)
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


def new_reference_id() -> str:
    return f"dubdash-{uuid.uuid4().hex}"


def create_submission(
    *,
    user: Any,
    video_url: str,
    audio_url: str,
    disable_active_speaker_detection: bool = False,
    reference_id: str = "",
    target_language: str = "",
    title: str = "",
) -> Submission:
    try:
        with transaction.atomic():
            return Submission.objects.create(
                created_by=user,
                video_url=video_url,
                audio_url=audio_url,
                disable_active_speaker_detection=disable_active_speaker_detection,
                reference_id=reference_id or new_reference_id(),
                target_language=target_language,
                title=title,
            )
    except IntegrityError as exc:
        # The form checks uniqueness, but two people can pick the same id at the same moment.
        raise ReferenceIdTaken(reference_id) from exc


def submit(*, user: Any, **fields: Any) -> Submission:
    """Save a new submission, then send it. The row survives whatever the API does."""
    submission = create_submission(user=user, **fields)
    return send_submission(submission=submission)


def send_submission(*, submission: Submission, changes: dict[str, Any] | None = None) -> Submission:
    """Send a saved submission to Chamelaion, at most once.

    `changes` (from the form, after a failed send) are applied only once it is certain no earlier attempt
    created the job. Returns the submission as stored afterwards; on failure its state is SEND_FAILED and
    `last_error` says why in plain words.
    """
    if not _claim(submission):
        submission.refresh_from_db()
        return submission
    client = chamelaion.get_client()
    if submission.send_outcome_unknown:
        try:
            existing = client.find_by_reference_id(submission.reference_id)
        except chamelaion.ChamelaionError as exc:
            return _mark_send_failed(submission, message=exc.user_message, error=exc)
        if existing is not None:
            return _mark_sent(submission, request_id=existing.id, found=existing)
        if timezone.now() - submission.outcome_unknown_since < settle_time():
            return _mark_send_failed(
                submission,
                message=(
                    "Chamelaion has not confirmed whether the earlier attempt arrived. To be sure the job is "
                    f"not sent twice, send it again in about {math.ceil(settle_time().total_seconds())} seconds."
                ),
            )
        submission.outcome_unknown_since = None  # looked up after settling, not there: safe to send
    try:
        if changes:
            _apply_changes(submission, changes)
    except ReferenceIdTaken:
        return _mark_send_failed(
            submission, message="That reference id is already used by another submission. Choose another one."
        )
    try:
        request_id = client.generate(
            video_url=submission.video_url,
            audio_url=submission.audio_url,
            reference_id=submission.reference_id,
            disable_active_speaker_detection=submission.disable_active_speaker_detection,
        )
    except chamelaion.ChamelaionError as exc:
        if exc.may_have_reached_server:
            submission.outcome_unknown_since = submission.last_attempt_at
        record_problem(exc, while_polling=False)
        return _mark_send_failed(submission, message=exc.user_message, error=exc)
    clear_problems(after_send=True)
    return _mark_sent(submission, request_id=request_id)


def _claim(submission: Submission) -> bool:
    """Move the row to SENDING if nobody else is sending it. A row left in SENDING by a process that died
    mid-send can be claimed again once it is stale; its outcome is then unknown, so it is looked up first."""
    now = timezone.now()
    stale_before = now - stuck_sending_time()
    base = Submission.objects.filter(pk=submission.pk, request_id__isnull=True)
    claimed = base.filter(state__in=[State.PENDING, State.SEND_FAILED]).update(
        state=State.SENDING, send_attempts=F("send_attempts") + 1, last_attempt_at=now
    ) or base.filter(state=State.SENDING, last_attempt_at__lt=stale_before).update(
        # The dead process may have posted at its last attempt: settle from then.
        outcome_unknown_since=Coalesce(F("outcome_unknown_since"), F("last_attempt_at")),
        send_attempts=F("send_attempts") + 1,
        last_attempt_at=now,
    )
    if claimed:
        submission.refresh_from_db()
    return bool(claimed)


def _apply_changes(submission: Submission, changes: dict[str, Any]) -> None:
    updates = {field: changes[field] for field in EDITABLE_FIELDS if field in changes}
    if not updates.get("reference_id"):
        updates.pop("reference_id", None)  # left blank: keep the id this submission already has
    try:
        with transaction.atomic():
            Submission.objects.filter(pk=submission.pk, state=State.SENDING).update(**updates)
    except IntegrityError as exc:
        raise ReferenceIdTaken(updates.get("reference_id", "")) from exc
    for field, value in updates.items():
        setattr(submission, field, value)


def _mark_sent(
    submission: Submission, *, request_id: str, found: chamelaion.LipsyncRequest | None = None
) -> Submission:
    """Record the request_id. A job found by reference_id may already be further along than queued."""
    now = timezone.now()
    fields = {"request_id": request_id, "sent_at": now, "last_error": "", "outcome_unknown_since": None}
    fields.update(upstream_fields(found) if found else {"state": State.QUEUED, "upstream_status": "queued"})
    fields["next_poll_at"] = now + poll_interval(timedelta(0)) if fields["state"] in Submission.UPSTREAM_IN_FLIGHT else None
    transition(submission, expected=State.SENDING, **fields)
    logger.info("Submission %s %s as request %s", submission.pk, "found upstream" if found else "sent", request_id)
    return submission


def state_for(upstream_status: str) -> str:
    """Chamelaion's status is a free string; one DubDash does not know is still in flight."""
    known = {"queued": State.QUEUED, "processing": State.PROCESSING, "completed": State.COMPLETED, "failed": State.FAILED}
    return known.get(upstream_status, State.IN_FLIGHT)


def poll_interval(age: timedelta) -> timedelta:
    """Young jobs are asked about often, old ones rarely: a tenth of the job's age, within bounds."""
    seconds = age.total_seconds() / 10
    return timedelta(seconds=min(settings.POLL_MAX_SECONDS, max(settings.POLL_MIN_SECONDS, seconds)))


def upstream_fields(request: chamelaion.LipsyncRequest) -> dict[str, Any]:
    """What a submission stores of a LipsyncRequest."""
    return {
        "state": state_for(request.status),
        "upstream_status": request.status[:64],
        "upstream_created_at": request.created_at,
        "started_at": request.started_at,
        "finished_at": request.finished_at,
        "output_url": request.output_url,
        "upstream_error_message": request.error_message,
        "last_synced_at": timezone.now(),
    }


def _mark_send_failed(
    submission: Submission, *, message: str, error: chamelaion.ChamelaionError | None = None
) -> Submission:
    if error is not None:
        logger.warning("Sending submission %s failed: %s (%s)", submission.pk, type(error).__name__, error.detail)
    transition(
        submission,
        expected=State.SENDING,
        state=State.SEND_FAILED,
        last_error=message,
        outcome_unknown_since=submission.outcome_unknown_since,
    )
    return submission


def transition(
    submission: Submission, *, expected: str | Iterable[str], guard: Q | None = None, **fields: Any
) -> bool:
    """The one place a submission's state changes: a conditional UPDATE on the state it expects (and an
    optional extra guard), so a process holding a stale copy cannot overwrite what another wrote meanwhile.
    On success the instance is updated too; otherwise it is reloaded."""
    expected_states = [expected] if isinstance(expected, str) else list(expected)
    rows = Submission.objects.filter(pk=submission.pk, state__in=expected_states)
    if guard is not None:
        rows = rows.filter(guard)
    changed = rows.update(**fields)
    if changed:
        for name, value in fields.items():
            setattr(submission, name, value)
    else:
        submission.refresh_from_db()
    return bool(changed)


PROBLEM_CODES = {
    chamelaion.Unauthorized: Problem.Code.API_KEY_REJECTED,
    chamelaion.QuotaExhausted: Problem.Code.QUOTA_USED_UP,
}


def record_problem(error: chamelaion.ChamelaionError, *, while_polling: bool) -> None:
    """Raise (or keep) the administrators' banner for failures only they can fix; others are ignored."""
    code = PROBLEM_CODES.get(type(error))
    if code is None:
        return
    problem, created = Problem.objects.get_or_create(
        code=code, defaults={"message": error.user_message, "pauses_polling": while_polling}
    )
    if not created:
        problem.pauses_polling = problem.pauses_polling or while_polling
        problem.save(update_fields=["pauses_polling", "last_seen"])
    if created:
        logger.error("Problem raised: %s (%s)", problem.get_code_display(), error.detail)


def clear_problems(*, after_send: bool = False) -> None:
    """A successful call is the proof a problem is over: any successful authenticated call proves the key
    works; only a successful generation proves the quota is back, unless the quota also blocked reads."""
    if not Problem.objects.exists():
        return
    resolved = Problem.objects.all() if after_send else Problem.objects.filter(
        Q(code=Problem.Code.API_KEY_REJECTED) | Q(pauses_polling=True)
    )
    for problem in resolved:
        logger.warning("Problem resolved: %s", problem.get_code_display())
    resolved.delete()
