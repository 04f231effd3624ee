"""Everything that changes a submission. Views, admin actions and commands call these, nothing else.

The outbox: a submission is saved (waiting to send) before anything is sent. Whoever sends it, a web
request with room in the rate budget or a worker, first *claims* it with a conditional UPDATE, so only
one process sends it. Every later state change is conditional on the state it expects, so two processes
never both win and a stale writer never overwrites fresh data.

Exactly once: every job carries a unique reference_id. After a failure that may have created the job
(timeout, dropped connection, 5xx), the next attempt first looks the job up by that id and adopts it;
it sends again only once the job is proven absent after the settle time.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import formats, timezone

from submissions import activity, chamelaion, limits, problems, ratelimit, snapshots
from submissions.models import (
    GENERATED_REFERENCE_ID,
    Batch,
    Submission,
    inputs_fingerprint,
    settle_time,
    stuck_sending_time,
)

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


INPUT_FIELDS = ("video_url", "audio_url", "disable_active_speaker_detection")


class ReferenceIdTaken(Exception):
    pass


REFERENCE_ID_CLASH = (
    "A job made outside DubDash on the same Chamelaion account already uses the reference id “{reference_id}”. "
    "Nothing was sent: looking the job up by that id would find the other one. Choose another reference id "
    "(or leave it blank) and send it again."
)


def new_reference_id() -> str:
    return f"dubdash-{uuid.uuid4().hex}"


def chose_reference_id(reference_id: str) -> bool:
    """Whether a person chose this id (one DubDash made is random: no other job can hold it)."""
    return GENERATED_REFERENCE_ID.fullmatch(reference_id or "") is None


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
) -> Submission:
    try:
        with transaction.atomic():
            if user is not None:
                limits.check_monthly_limit(user=user, adding=1)
            return Submission.objects.create(
                created_by=user,
                video_url=video_url,
                audio_url=audio_url,
                disable_active_speaker_detection=disable_active_speaker_detection,
                reference_id=reference_id or new_reference_id(),
                target_language=target_language,
                title=title,
                batch=batch,
                retry_of=retry_of,
            )
    except IntegrityError as exc:
        # The form checks uniqueness, but two people can pick the same id at the same moment.
        raise ReferenceIdTaken(reference_id) from exc


def submit(*, user: Any, **fields: Any) -> Submission:
    """Save a new submission, then send it at once if the rate budget has room; otherwise the worker
    sends it when its turn comes. The row survives whatever the API does."""
    with transaction.atomic():  # the job and its trail entry, together
        submission = create_submission(user=user, **fields)
        activity.record(actor=user, verb=activity.Verb.SUBMITTED, submission=submission)  # activity trail
    return send_if_room(submission=submission)


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
                    inputs_fingerprint=inputs_fingerprint(**{name: row.get(name, False) for name in INPUT_FIELDS}),
                    **{**row, "reference_id": row.get("reference_id") or new_reference_id()},
                )
                for row in rows
            )
            activity.record(actor=user, verb=activity.Verb.SUBMITTED, batch=batch, details=f"Batch of {len(submissions)} jobs")  # activity trail: one entry per batch
    except IntegrityError as exc:
        raise ReferenceIdTaken("") from exc
    return batch, submissions


def send_while_room(submissions: list[Submission]) -> None:
    """Send from this request as many as the budget has room for now; the worker sends the rest in turn."""
    for submission in submissions:
        if send_if_room(submission=submission).state == State.PENDING and not submission.last_error:
            break


def retry_failed(*, batch: Batch, user: Any) -> int:
    """"Retry the failed ones": what could not be sent goes back in the outbox; a job Chamelaion failed (or
    lost) is sent again as a new job, linked to the old one, which stays in the history.

    All or nothing: every monthly limit involved is checked for the whole retry before anything changes,
    so a limit reached half way never leaves half the batch retried (MonthlyLimitReached, nothing done)."""
    with transaction.atomic():
        # One retry of a batch at a time: a double click's second retry then finds nothing left to retry.
        Batch.objects.select_for_update().filter(pk=batch.pk).values_list("pk").get()
        unsent = list(batch.submissions.filter(state=State.SEND_FAILED).select_related("created_by").order_by("pk"))
        finished_badly = list(
            batch.submissions.filter(state__in=[State.FAILED, State.MISSING], retried_as__isnull=True)
            .exclude(video_url="")
            .order_by("pk")
        )
        # Each job counts for its owner: a job sent again stays its submitter's, a new take is the retrier's.
        adding = Counter(job.created_by for job in unsent if job.created_by_id is not None)
        if finished_badly:
            adding[user] += len(finished_badly)
        for owner, count in sorted(adding.items(), key=lambda item: item[0].pk):  # locks in one order: no deadlock
            limits.check_monthly_limit(user=owner, adding=count, actor=user)
        retried = [job for job in unsent if _reopen(submission=job, changes=None) is not None]
        for failed in finished_badly:
            retried.append(
                create_submission(
                    user=user,
                    video_url=failed.video_url,
                    audio_url=failed.audio_url,
                    disable_active_speaker_detection=failed.disable_active_speaker_detection,
                    target_language=failed.target_language,
                    title=failed.title,
                    batch=batch,
                    retry_of=failed,
                )
            )
        if retried:
            activity.record(actor=user, verb=activity.Verb.RETRIED, batch=batch, details=f"{len(retried)} failed jobs sent again")  # activity trail
    send_while_room(retried)
    return len(retried)


def send_if_room(*, submission: Submission) -> Submission:
    if problems.sending_paused() or ratelimit.try_acquire() > 0:
        return submission  # waiting to send: the worker's outbox takes it from here
    return send_submission(submission=submission)


def send_again(*, submission: Submission, changes: dict[str, Any] | None = None, user: Any = None) -> Submission:
    """A person asks to send a submission that could not be sent: a fresh set of retries, in its turn.
    `user` is who asked, for the activity trail (None: not known to the caller). The job counts against
    its submitter's monthly limit again (a job that could not be sent did not): MonthlyLimitReached if
    that is used up, and nothing changes."""
    if submission.is_stuck_sending:
        activity.record(actor=user, verb=activity.Verb.SENT_AGAIN, submission=submission, details="Interrupted send resumed")  # activity trail
        return send_if_room(submission=submission)  # settles the interrupted send first, within the budget
    with transaction.atomic():
        if submission.created_by_id is not None:
            limits.check_monthly_limit(user=submission.created_by, adding=1, actor=user)
        edited = _reopen(submission=submission, changes=changes)
        if edited is not None:
            activity.record(actor=user, verb=activity.Verb.SENT_AGAIN, submission=submission, details=edited)  # activity trail
    return send_if_room(submission=submission)


def _reopen(*, submission: Submission, changes: dict[str, Any] | None) -> str | None:
    """Could not be sent → waiting to send, with a fresh set of retries (and the person's edits, if any).
    Returns what the activity trail says of it (which inputs were edited), or None if it was no longer
    waiting to be sent again. The caller checks the monthly limit in the same transaction."""
    fields: dict[str, Any] = {
        "next_attempt_at": timezone.now(),
        "send_attempts": 0,
        "failed_deliveries": 0,
        "first_failed_delivery_at": None,
    }
    if changes and not submission.send_outcome_unknown:  # no job can exist upstream: edits are safe
        fields.update(_editable(submission, changes))
    edited = _edited_inputs(submission, fields)  # before the transition updates the instance
    try:
        with transaction.atomic():
            moved = transition(submission, expected=State.SEND_FAILED, state=State.PENDING, **fields)
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
    inputs = {name: updates.get(name, getattr(submission, name)) for name in INPUT_FIELDS}
    updates["inputs_fingerprint"] = inputs_fingerprint(**inputs)
    return updates


# --- Sending -----------------------------------------------------------------------------------------


def send_submission(*, submission: Submission) -> Submission:
    """Send one saved submission now (the caller holds a slot of the rate budget). Returns it as stored
    afterwards: sent (queued upstream), waiting to send (a retry is scheduled, or sending is paused), or
    could not be sent, with `last_error` saying why in plain words."""
    if not claim(submission):
        submission.refresh_from_db()
        return submission
    return deliver(submission)


def claim(submission: Submission) -> bool:
    """Move the row to SENDING if it is due and nobody else is sending it. A row left in SENDING by a
    process that died mid-send can be claimed again once it is stale; its outcome is then unknown, so
    it is looked up before anything is sent."""
    now = timezone.now()
    unsent = Submission.objects.filter(pk=submission.pk, request_id__isnull=True)
    claimed = unsent.filter(state=State.PENDING, next_attempt_at__lte=now).update(state=State.SENDING, send_attempts=F("send_attempts") + 1, last_attempt_at=now) or unsent.filter(
        state=State.SENDING, last_attempt_at__lt=now - stuck_sending_time()
    ).update(
        # The dead process may have posted at its last attempt: settle from then.
        outcome_unknown_since=Coalesce(F("outcome_unknown_since"), F("last_attempt_at")),
        send_attempts=F("send_attempts") + 1,
        last_attempt_at=now,
    )
    if claimed:
        submission.refresh_from_db()
    return bool(claimed)


def deliver(submission: Submission) -> Submission:
    """The claimed submission's one attempt: settle an uncertain earlier attempt, or POST it."""
    client = chamelaion.get_client()
    uncertain = submission.send_outcome_unknown
    if uncertain or chose_reference_id(submission.reference_id):
        # After an uncertain attempt, a job found by its reference id is ours: adopt it. Before any attempt
        # that may have arrived, no job of DubDash's can carry the id, so one found (only possible for an id
        # a person chose) was made outside DubDash, and adopting it later would take a stranger for ours.
        try:
            found = client.find_by_reference_id(submission.reference_id)
        except chamelaion.ChamelaionError as exc:
            return _failed_attempt(submission, exc)
        problems.clear_problems()  # the lookup answered: Chamelaion is reachable and the key works
        if found is not None and uncertain:
            return _mark_sent(submission, request_id=found.id, found=found)
        if found is not None:
            return _give_up(submission, message=REFERENCE_ID_CLASH.format(reference_id=submission.reference_id))
    if uncertain:
        settled_at = submission.outcome_unknown_since + settle_time()
        if timezone.now() < settled_at:
            return _wait(
                submission,
                until=settled_at,
                message=(
                    "Chamelaion has not confirmed whether the earlier attempt arrived. To be sure the job is not "
                    f"sent twice, DubDash checks again at {_clock(settled_at)} before sending it."
                ),
            )
        submission.outcome_unknown_since = None  # looked up after settling, not there: safe to send
    posted_at = timezone.now()  # not the claim time: a slow lookup may have come first
    # Written down before posting: if this process dies during the POST, whoever takes the row over
    # settles from this moment. It replaces any older time (that attempt was just looked up and proven
    # absent); a definite answer below overwrites it either way.
    Submission.objects.filter(pk=submission.pk, state=State.SENDING).update(outcome_unknown_since=posted_at)
    try:
        request_id = _post(client, submission)
    except chamelaion.ChamelaionError as exc:
        if exc.may_have_reached_server:
            submission.outcome_unknown_since = posted_at
        return _failed_attempt(submission, exc)
    problems.clear_problems(after_send=True)
    return _mark_sent(submission, request_id=request_id)


def _post(client: chamelaion.ChamelaionClient, submission: Submission) -> str:
    if not submission.has_uploads:
        return client.generate(
            video_url=submission.video_url,
            audio_url=submission.audio_url,
            reference_id=submission.reference_id,
            disable_active_speaker_detection=submission.disable_active_speaker_detection,
        )
    with submission.video_upload.open("rb") as video, submission.audio_upload.open("rb") as audio:
        return client.generate_with_media(
            video=video,
            audio=audio,
            video_name=_base_name(submission.video_upload.name),
            audio_name=_base_name(submission.audio_upload.name),
            reference_id=submission.reference_id,
            disable_active_speaker_detection=submission.disable_active_speaker_detection,
        )


def _base_name(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def discard_uploads(submission: Submission) -> None:
    """Uploaded files are only kept while they may still have to be sent."""
    if not submission.has_uploads:
        return
    for field in (submission.video_upload, submission.audio_upload):
        if field:
            field.delete(save=False)
    Submission.objects.filter(pk=submission.pk).update(video_upload="", audio_upload="")


def _failed_attempt(submission: Submission, error: chamelaion.ChamelaionError) -> Submission:
    logger.warning("Sending submission %s failed: %s (%s)", submission.pk, type(error).__name__, error.detail)
    problems.record_problem(error, while_polling=False)
    now = timezone.now()
    if isinstance(error, chamelaion.RateLimited):
        ratelimit.hold_off(error.retry_after or settings.SEND_RETRY_BASE_SECONDS)
    code = problems.problem_code(error)
    if code is not None:
        # Nothing about this job is wrong, and nothing was delivered: it waits, however long the fix takes.
        return _wait(submission, until=now + problems.PROBLEM_RECHECK, message=f"Sending is paused: {error.user_message} {problems.PAUSED_UNTIL[code]}")
    # Chamelaion refused it, or may have received it: this counts towards giving up, from the first such
    # attempt (not from when the job was saved: it may have waited in line for an hour).
    submission.failed_deliveries += 1
    submission.first_failed_delivery_at = submission.first_failed_delivery_at or now
    if not error.retryable:
        return _give_up(submission, message=error.user_message)
    if submission.failed_deliveries >= settings.SEND_MAX_ATTEMPTS or now - submission.first_failed_delivery_at > timedelta(
        seconds=settings.SEND_MAX_AGE_SECONDS
    ):
        return _give_up(
            submission,
            message=f"{error.user_message} DubDash stopped retrying after {submission.failed_deliveries} attempts; "
            "use Send again to try once more.",
        )
    until = now + _backoff(submission.failed_deliveries, asked=getattr(error, "retry_after", None))
    if submission.send_outcome_unknown:
        until = max(until, submission.outcome_unknown_since + settle_time())
    return _wait(submission, until=until, message=f"{error.user_message} DubDash tries again by itself at {_clock(until)}.")


def _backoff(attempts: int, *, asked: float | None) -> timedelta:
    """Jittered exponential backoff (half to full of base × 2^(n-1), capped), never sooner than asked.
    `attempts` counts failed deliveries: probes during an outage must not grow the wait (nor overflow it)."""
    exponent = min(max(0, attempts - 1), 62)  # 2.0 ** 1024 overflows; the cap is reached long before 62
    ceiling = min(settings.SEND_RETRY_MAX_SECONDS, settings.SEND_RETRY_BASE_SECONDS * 2**exponent)
    return timedelta(seconds=max(random.uniform(ceiling / 2, ceiling), asked or 0))


def _clock(moment: datetime) -> str:
    return formats.time_format(timezone.localtime(moment), "H:i:s")


def _mark_sent(
    submission: Submission, *, request_id: str, found: chamelaion.LipsyncRequest | None = None
) -> Submission:
    """Record the request_id. A job found by reference_id may already be further along than queued."""
    now = timezone.now()
    fields = {"request_id": request_id, "sent_at": now, "last_error": "", "outcome_unknown_since": None}
    fields.update(snapshots.upstream_fields(found) if found else {"state": State.QUEUED, "upstream_status": "queued"})
    in_flight = fields["state"] in Submission.UPSTREAM_IN_FLIGHT
    fields["next_poll_at"] = now + snapshots.poll_interval(timedelta(0)) if in_flight else None
    transition(submission, expected=State.SENDING, **fields)
    logger.info("Submission %s %s as request %s", submission.pk, "found upstream" if found else "sent", request_id)
    discard_uploads(submission)
    return submission


def _wait(submission: Submission, *, until: datetime, message: str) -> Submission:
    transition(
        submission,
        expected=State.SENDING,
        state=State.PENDING,
        next_attempt_at=until,
        last_error=message,
        outcome_unknown_since=submission.outcome_unknown_since,
        failed_deliveries=submission.failed_deliveries,
        first_failed_delivery_at=submission.first_failed_delivery_at,
    )
    return submission


def _give_up(submission: Submission, *, message: str) -> Submission:
    """Could not be sent. Uploaded files are kept: "Send again" needs them; they go once it is sent."""
    transition(
        submission,
        expected=State.SENDING,
        state=State.SEND_FAILED,
        last_error=message,
        outcome_unknown_since=submission.outcome_unknown_since,
        failed_deliveries=submission.failed_deliveries,
        first_failed_delivery_at=submission.first_failed_delivery_at,
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


# --- Cancelling ------------------------------------------------------------------------------------------


def cancel(*, submission: Submission, user: Any) -> bool:
    """Withdraw a job that is still waiting to send. Never one that is being sent or was sent, nor one
    whose earlier attempt may have reached Chamelaion (it could exist upstream; only settling tells).
    The same conditional UPDATE as every state change: if the outbox claims the job first, the claim
    wins and nothing is cancelled. Returns whether it was cancelled; the instance is current either way."""
    cancelled = transition(
        submission,
        expected=State.PENDING,
        guard=Q(request_id__isnull=True, outcome_unknown_since__isnull=True),
        state=State.CANCELLED,
        next_attempt_at=None,
    )
    if cancelled:
        discard_uploads(submission)  # never sent now: the files have no more use
        activity.record(actor=user, verb=activity.Verb.CANCELLED, submission=submission)
    return cancelled
