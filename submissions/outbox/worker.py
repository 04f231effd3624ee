"""The worker's side of the outbox: send waiting submissions as fast as the shared rate budget allows."""

from __future__ import annotations

import threading
import time

from django.utils import timezone

from submissions.core import problems
from submissions.models import Submission
from submissions.outbox import ratelimit, sending
from submissions.outbox.selectors import due_for_sending

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
        if sending.claim(submission):
            sending.deliver(submission)
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
