"""Sending one saved submission to Chamelaion, exactly once.

Whoever sends it, a web request with room in the rate budget or a worker, first *claims* it with a
conditional UPDATE, so only one process sends it. Every later state change goes through the guarded
transition (submissions.core.states), so two processes never both win and a stale writer never
overwrites fresh data.

Exactly once: every job carries a unique reference_id. After a failure that may have created the job
(timeout, dropped connection, 5xx), the next attempt first looks the job up by that id and adopts it;
it sends again only once the job is proven absent after the settle time.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import formats, timezone

from submissions import chamelaion
from submissions.apikey import clients
from submissions.core import problems
from submissions.core.reference_ids import REFERENCE_ID_CLASH, chose_reference_id
from submissions.core.states import transition
from submissions.models import (
    Submission,
    settle_time,
    stuck_sending,
)
from submissions.outbox import ratelimit
from submissions.outbox.backoff import backoff
from submissions.outputs import services as outputs
from submissions.tracking import snapshots

logger = logging.getLogger(__name__)
State = Submission.State


def send_while_room(submissions: list[Submission]) -> None:
    """Send from this request as many as the budget has room for now; the worker sends the rest in turn."""
    for submission in submissions:
        if send_if_room(submission=submission).state == State.PENDING and not submission.last_error:
            break


def take_slot_now() -> bool:
    """Whether this request may send now: no problem pauses sending, and the budget has a slot, which is
    taken. Usually one statement (the slot is taken only while no problem is open); the slower look is
    for when that fails (paused, no room, or a deployment's first send)."""
    if ratelimit.take_slot(only_if=problems.none_open()):
        return True
    return not problems.sending_paused() and ratelimit.try_acquire() == 0


def send_if_room(*, submission: Submission) -> Submission:
    """Send a job this request has just saved or put back in the outbox (its instance is the row as stored),
    if no problem pauses sending and the budget has room now."""
    if not take_slot_now():
        return submission  # waiting to send: the worker's outbox takes it from here
    # No problem was open a moment ago. The claim still reads the row back: an admin may have edited a
    # waiting job since this request wrote it (a batch's later jobs wait for the earlier ones' sends).
    return send_submission(submission=submission, problems_may_be_open=False)


# --- Sending -----------------------------------------------------------------------------------------


def send_submission(*, submission: Submission, problems_may_be_open: bool = True) -> Submission:
    """Send one saved submission now (the caller holds a slot of the rate budget). Returns it as stored
    afterwards: sent (queued upstream), waiting to send (a retry is scheduled, or sending is paused), or
    could not be sent, with `last_error` saying why in plain words."""
    if not claim(submission):
        submission.refresh_from_db()
        return submission
    return deliver(submission, problems_may_be_open=problems_may_be_open)


def deliver_new(submission: Submission) -> Submission:
    """Send a job this request saved already claimed (state SENDING: see take_slot_now): the claim was its
    insert, so nothing else can have taken it."""
    return deliver(submission, problems_may_be_open=False)


def claim(submission: Submission) -> bool:
    """Move the row to SENDING if it is due and nobody else is sending it. A row left in SENDING by a
    process that died mid-send can be claimed again once it is stale; its outcome is then unknown, so
    it is looked up before anything is sent.

    The claimed row is read back: another process (an edit in admin) may have changed a waiting job since
    the caller loaded it, and what is sent must be what is stored."""
    now = timezone.now()
    unsent = Submission.objects.filter(pk=submission.pk, request_id__isnull=True)
    waiting = unsent.filter(state=State.PENDING, next_attempt_at__lte=now).update(
        state=State.SENDING, send_attempts=F("send_attempts") + 1, last_attempt_at=now
    )
    claimed = waiting or unsent.filter(stuck_sending(now=now)).update(
        # The dead process may have posted at its last attempt: settle from then.
        outcome_unknown_since=Coalesce(F("outcome_unknown_since"), F("last_attempt_at")),
        send_attempts=F("send_attempts") + 1,
        last_attempt_at=now,
    )
    if claimed:
        submission.refresh_from_db()
    return bool(claimed)


def deliver(submission: Submission, *, problems_may_be_open: bool = True) -> Submission:
    """The claimed submission's one attempt: settle an uncertain earlier attempt, or POST it. A caller that
    has just read that no problem is open says so (`problems_may_be_open=False`): a success then has none
    to clear, and the problems are read once per request, not twice."""
    client = clients.get_client()
    uncertain = submission.send_outcome_unknown
    reference_id = submission.reference_id or ""  # a job saved without one is refused as unusable below
    looked_up = uncertain or chose_reference_id(reference_id)
    if looked_up:
        # After an uncertain attempt, a job found by its reference id is ours: adopt it. Before any attempt
        # that may have arrived, no job of DubDash's can carry the id, so one found (only possible for an id
        # a person chose) was made outside DubDash, and adopting it later would take a stranger for ours.
        try:
            found = client.find_by_reference_id(reference_id)
        except chamelaion.ChamelaionError as exc:
            return _failed_attempt(submission, exc)
        if problems_may_be_open:
            problems.clear_problems()  # the lookup answered: Chamelaion is reachable and the key works
        if found is not None and uncertain:
            return _mark_sent(submission, request_id=found.id, found=found)
        if found is not None:
            return _give_up(submission, message=REFERENCE_ID_CLASH.format(reference_id=submission.reference_id))
    if submission.outcome_unknown_since is not None:  # uncertain (the test that narrows the type)
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
    if looked_up:
        # Written down before posting: if this process dies during the POST, whoever takes the row over
        # settles from this moment, not from the claim before the lookup. It replaces any older time (that
        # attempt was just looked up and proven absent); a definite answer below overwrites it either way.
        # Without a lookup the claim, moments ago, set last_attempt_at, which is what a takeover settles
        # from when nothing else is written (claim's Coalesce): the same moment, one query fewer.
        Submission.objects.filter(pk=submission.pk, state=State.SENDING).update(outcome_unknown_since=posted_at)
    try:
        request_id = _post(client, submission)
    except chamelaion.ChamelaionError as exc:
        if exc.may_have_reached_server:
            submission.outcome_unknown_since = posted_at
        return _failed_attempt(submission, exc)
    if problems_may_be_open:
        problems.clear_problems(after_send=True)
    return _mark_sent(submission, request_id=request_id)


def _post(client: chamelaion.ChamelaionClient, submission: Submission) -> str:
    if not submission.has_uploads:
        return client.generate(
            video_url=submission.video_url,
            audio_url=submission.audio_url,
            reference_id=submission.reference_id or "",
            disable_active_speaker_detection=submission.disable_active_speaker_detection,
        )
    with submission.video_upload.open("rb") as video, submission.audio_upload.open("rb") as audio:
        return client.generate_with_media(
            video=video,
            audio=audio,
            video_name=_base_name(submission.video_upload.name),
            audio_name=_base_name(submission.audio_upload.name),
            reference_id=submission.reference_id or "",
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
    code = problems.record_problem(error, while_polling=False)
    now = timezone.now()
    if isinstance(error, chamelaion.RateLimited):
        ratelimit.hold_off(error.retry_after or settings.SEND_RETRY_BASE_SECONDS)
    if code is not None:
        # Nothing about this job is wrong, and nothing was delivered: it waits, however long the fix takes.
        paused = f"Sending is paused: {error.user_message} {problems.PAUSED_UNTIL[code]}"
        return _wait(submission, until=now + problems.PROBLEM_RECHECK, message=paused)
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
    if submission.outcome_unknown_since is not None:
        until = max(until, submission.outcome_unknown_since + settle_time())
    return _wait(submission, until=until, message=f"{error.user_message} DubDash tries again by itself at {_clock(until)}.")


def _backoff(attempts: int, *, asked: float | None) -> timedelta:
    """`attempts` counts failed deliveries: probes during an outage must not grow the wait (nor overflow it)."""
    return backoff(attempts, base=settings.SEND_RETRY_BASE_SECONDS, cap=settings.SEND_RETRY_MAX_SECONDS, asked=asked)


def _clock(moment: datetime) -> str:
    return formats.time_format(timezone.localtime(moment), "H:i:s")


def _mark_sent(
    submission: Submission, *, request_id: str, found: chamelaion.LipsyncRequest | None = None
) -> Submission:
    """Record the request_id. A job found by reference_id may already be further along than queued."""
    now = timezone.now()
    fields: dict[str, Any] = {"request_id": request_id, "sent_at": now, "last_error": "", "outcome_unknown_since": None}
    fields.update(snapshots.upstream_fields(found) if found else {"state": State.QUEUED, "upstream_status": "queued"})
    in_flight = fields["state"] in Submission.UPSTREAM_IN_FLIGHT
    fields["next_poll_at"] = now + snapshots.poll_interval(timedelta(0)) if in_flight else None
    if transition(submission, expected=State.SENDING, **fields) and fields["state"] == State.COMPLETED:
        outputs.enqueue(submission=submission)  # found upstream already finished: its copy is due
    logger.info("Submission %s %s as request %s", submission.pk, "found upstream" if found else "sent", request_id)
    discard_uploads(submission)
    return submission


def _wait(submission: Submission, *, until: datetime, message: str) -> Submission:
    return _end_attempt(submission, state=State.PENDING, message=message, next_attempt_at=until)


def _give_up(submission: Submission, *, message: str) -> Submission:
    """Could not be sent. Uploaded files are kept: "Send again" needs them; they go once it is sent."""
    return _end_attempt(submission, state=State.SEND_FAILED, message=message)


def _end_attempt(submission: Submission, *, state: str, message: str, **fields: Any) -> Submission:
    """An attempt that did not send it: the row leaves SENDING with what this attempt learned about it."""
    transition(
        submission,
        expected=State.SENDING,
        state=state,
        last_error=message,
        outcome_unknown_since=submission.outcome_unknown_since,
        failed_deliveries=submission.failed_deliveries,
        first_failed_delivery_at=submission.first_failed_delivery_at,
        **fields,
    )
    return submission
