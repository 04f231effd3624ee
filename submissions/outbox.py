"""The worker's side of the outbox: send waiting submissions as fast as the shared rate budget allows."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.utils import timezone

from submissions import problems, ratelimit, services
from submissions.models import Submission, stuck_sending_time

State = Submission.State

logger = logging.getLogger(__name__)
CANDIDATES = 10  # claim one of the next few: another process may be claiming the first


def send_due(*, seconds: float, stop: threading.Event | None = None, wait_for_budget: bool = True) -> int:
    """Send due submissions for up to `seconds`; returns how many were attempted. Without
    `wait_for_budget` it stops as soon as the budget is used up (one round for --once and tests)."""
    stop = stop or threading.Event()
    deadline = time.monotonic() + seconds
    attempted = 0
    while not stop.is_set() and time.monotonic() < deadline:
        if problems.sending_paused() and not problems.probe_due():
            break  # a rejected key or used-up quota: one probe per recheck period, no more
        candidates = due_for_sending(limit=CANDIDATES)
        if not candidates:
            break
        wait = ratelimit.try_acquire()
        if wait:
            if not wait_for_budget:
                break
            stop.wait(min(wait, max(0.0, deadline - time.monotonic())))
            continue
        if _send_one(candidates):
            attempted += 1
    return attempted


def _send_one(candidates: list[Submission]) -> bool:
    for submission in candidates:
        if services.claim(submission):
            services.deliver(submission)
            return True
    return False  # all taken by other processes meanwhile; the slot is lost, which only slows us a little


def seconds_until_next_due(*, cap: float) -> float:
    upcoming = (
        Submission.objects.filter(state=Submission.State.PENDING)
        .order_by("next_attempt_at")
        .values_list("next_attempt_at", flat=True)
        .first()
    )
    if upcoming is None:
        return cap
    return min(cap, max(0.0, (upcoming - timezone.now()).total_seconds()))


# --- The queue -------------------------------------------------------------------------------------


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
