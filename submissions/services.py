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
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone, formats

from submissions import activity, chamelaion, limits, ratelimit
from submissions.models import Batch, Problem, Submission, inputs_fingerprint, settle_time, stuck_sending_time

logger = logging.getLogger(__name__)
State = Submission.State
PROBLEM_RECHECK = timedelta(seconds=30)

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


def new_reference_id() -> str:
    return f"dubdash-{uuid.uuid4().hex}"


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
    lost) is sent again as a new job, linked to the old one, which stays in the history."""
    retried = 0
    for submission in batch.submissions.filter(state=State.SEND_FAILED):
        send_again(submission=submission, user=user, record_activity=False)  # the batch's one entry below
        retried += 1
    finished_badly = batch.submissions.filter(state__in=[State.FAILED, State.MISSING], retried_as__isnull=True)
    for failed in finished_badly.exclude(video_url="").order_by("pk"):
        copy = create_submission(
            user=user,
            video_url=failed.video_url,
            audio_url=failed.audio_url,
            disable_active_speaker_detection=failed.disable_active_speaker_detection,
            target_language=failed.target_language,
            title=failed.title,
            batch=batch,
            retry_of=failed,
        )
        send_if_room(submission=copy)
        retried += 1
    if retried:
        activity.record(actor=user, verb=activity.Verb.RETRIED, batch=batch, details=f"{retried} failed jobs sent again")  # activity trail
    return retried


def send_if_room(*, submission: Submission) -> Submission:
    if sending_paused() or ratelimit.try_acquire() > 0:
        return submission  # waiting to send: the worker's outbox takes it from here
    return send_submission(submission=submission)


def send_again(
    *, submission: Submission, changes: dict[str, Any] | None = None, user: Any = None, record_activity: bool = True
) -> Submission:
    """A person asks to send a submission that could not be sent: a fresh set of retries, in its turn.
    `user` is who asked, for the activity trail (None: not known to the caller)."""
    if submission.is_stuck_sending:
        if record_activity:  # activity trail
            activity.record(actor=user, verb=activity.Verb.SENT_AGAIN, submission=submission, details="Interrupted send resumed")
        return send_if_room(submission=submission)  # settles the interrupted send first, within the budget
    fields = {"next_attempt_at": timezone.now(), "send_attempts": 0}
    if changes and not submission.send_outcome_unknown:  # no job can exist upstream: edits are safe
        fields.update(_editable(submission, changes))
    edited = _edited_inputs(submission, fields)  # for the activity trail
    try:
        with transaction.atomic():
            moved = transition(submission, expected=State.SEND_FAILED, state=State.PENDING, **fields)
    except IntegrityError as exc:
        raise ReferenceIdTaken(fields.get("reference_id", "")) from exc
    if moved and record_activity:  # activity trail
        activity.record(actor=user, verb=activity.Verb.SENT_AGAIN, submission=submission, details=edited)
    return send_if_room(submission=submission)


def _edited_inputs(submission: Submission, fields: dict[str, Any]) -> str:
    """For the trail: which inputs are edited when sending again (names only, never values)."""
    edited = [name.replace("_", " ") for name in EDITABLE_FIELDS if name in fields and fields[name] != getattr(submission, name)]
    return f"Edited {', '.join(edited)}" if edited else ""


def _editable(submission: Submission, changes: dict[str, Any]) -> dict[str, Any]:
    updates = {field: changes[field] for field in EDITABLE_FIELDS if field in changes}
    if not updates.get("reference_id"):
        updates.pop("reference_id", None)  # left blank: keep the id this submission already has
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
    if submission.send_outcome_unknown:
        try:
            existing = client.find_by_reference_id(submission.reference_id)
        except chamelaion.ChamelaionError as exc:
            return _failed_attempt(submission, exc)
        if existing is not None:
            return _mark_sent(submission, request_id=existing.id, found=existing)
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
    clear_problems(after_send=True)
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
    record_problem(error, while_polling=False)
    now = timezone.now()
    if isinstance(error, chamelaion.RateLimited):
        ratelimit.hold_off(error.retry_after or settings.SEND_RETRY_BASE_SECONDS)
    if type(error) in PROBLEM_CODES:
        return _wait(
            submission,
            until=now + PROBLEM_RECHECK,
            message=f"Sending is paused: {error.user_message} The job is saved and goes out by itself once that is fixed.",
        )
    if not error.retryable:
        return _give_up(submission, message=error.user_message)
    if submission.send_attempts >= settings.SEND_MAX_ATTEMPTS or now - submission.created_at > timedelta(
        seconds=settings.SEND_MAX_AGE_SECONDS
    ):
        return _give_up(
            submission,
            message=f"{error.user_message} DubDash stopped retrying after {submission.send_attempts} attempts; "
            "use Send again to try once more.",
        )
    until = now + _backoff(submission.send_attempts, asked=getattr(error, "retry_after", None))
    if submission.send_outcome_unknown:
        until = max(until, submission.outcome_unknown_since + settle_time())
    return _wait(submission, until=until, message=f"{error.user_message} DubDash tries again by itself at {_clock(until)}.")


def _backoff(attempts: int, *, asked: float | None) -> timedelta:
    """Jittered exponential backoff (half to full of base × 2^(n-1), capped), never sooner than asked."""
    ceiling = min(settings.SEND_RETRY_MAX_SECONDS, settings.SEND_RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1))
    return timedelta(seconds=max(random.uniform(ceiling / 2, ceiling), asked or 0))


def _clock(moment: datetime) -> str:
    return formats.time_format(timezone.localtime(moment), "H:i:s")


def _mark_sent(
    submission: Submission, *, request_id: str, found: chamelaion.LipsyncRequest | None = None
) -> Submission:
    """Record the request_id. A job found by reference_id may already be further along than queued."""
    now = timezone.now()
    fields = {"request_id": request_id, "sent_at": now, "last_error": "", "outcome_unknown_since": None}
    fields.update(upstream_fields(found) if found else {"state": State.QUEUED, "upstream_status": "queued"})
    in_flight = fields["state"] in Submission.UPSTREAM_IN_FLIGHT
    fields["next_poll_at"] = now + poll_interval(timedelta(0)) if in_flight else None
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
    )
    return submission


# --- The outbox's queue --------------------------------------------------------------------------------


def due_for_sending(*, limit: int) -> list[Submission]:
    """The next submissions to send, oldest turn first, and any send interrupted by a crash."""
    now = timezone.now()
    waiting = Submission.objects.filter(state=State.PENDING, next_attempt_at__lte=now)
    interrupted = Submission.objects.filter(state=State.SENDING, last_attempt_at__lt=now - stuck_sending_time())
    return list(interrupted[:limit]) + list(waiting.order_by("next_attempt_at", "created_at", "pk")[:limit])


def queue_positions(submissions: Iterable[Submission]) -> dict[int, tuple[int, datetime]]:
    """For waiting submissions: their place in line and roughly when they will go."""
    waiting_ids = [s.pk for s in submissions if s.state == State.PENDING]
    if not waiting_ids:
        return {}
    line = list(
        Submission.objects.filter(state=State.PENDING).order_by("next_attempt_at", "created_at", "pk").values_list(
            "pk", "next_attempt_at"
        )
    )
    budget = ratelimit.Budget.from_settings()
    start = timezone.now() + timedelta(seconds=ratelimit.seconds_until_free())
    wanted = set(waiting_ids)
    positions = {}
    for place, (pk, not_before) in enumerate(line):
        if pk in wanted:
            eta = max(start + budget.interval * place, not_before or start)
            positions[pk] = (place + 1, eta)
    return positions


def sending_paused() -> bool:
    """A rejected key or a used-up quota stops every send until it is fixed."""
    return Problem.objects.exists()


def probe_due() -> bool:
    """While sending is paused, one submission is tried every PROBLEM_RECHECK to see whether it is fixed."""
    latest = Problem.objects.order_by("-last_seen").values_list("last_seen", flat=True).first()
    return latest is None or timezone.now() - latest >= PROBLEM_RECHECK


# --- Upstream snapshots ----------------------------------------------------------------------------------


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


# --- Problems only an administrator can fix --------------------------------------------------------------

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
    if created:
        logger.error("Problem raised: %s (%s)", problem.get_code_display(), error.detail)
    else:
        problem.pauses_polling = problem.pauses_polling or while_polling
        problem.save(update_fields=["pauses_polling", "last_seen"])


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


def create_upload_submission(*, user: Any, video: Any, audio: Any, **fields: Any) -> Submission:
    """A submission whose inputs are local files, sent with generate-with-media: the files are stored in
    MEDIA_ROOT (a temporary upload is moved there, not copied) together with the row. If the row cannot
    be saved the stored files are deleted again, so a failure leaves nothing behind. `fields` are the
    create_submission fields other than the URLs."""
    reference_id = fields.pop("reference_id", "")
    submission = Submission(created_by=user, reference_id=reference_id or new_reference_id(), **fields)
    with transaction.atomic():  # refuse before storing hundreds of megabytes
        limits.check_monthly_limit(user=user, adding=1)
    try:
        submission.video_upload.save(video.name, video, save=False)
        submission.audio_upload.save(audio.name, audio, save=False)
        with transaction.atomic():
            limits.check_monthly_limit(user=user, adding=1)
            submission.save(force_insert=True)
    except BaseException as exc:
        for stored in (submission.video_upload, submission.audio_upload):
            if stored:
                stored.delete(save=False)
        if isinstance(exc, IntegrityError):  # the same race create_submission guards against
            raise ReferenceIdTaken(reference_id) from exc
        raise
    activity.record(actor=user, verb=activity.Verb.SUBMITTED, submission=submission, details="Uploaded files")  # activity trail
    return submission


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
