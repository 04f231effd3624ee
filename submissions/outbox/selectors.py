"""Reads of the outbox: what is due to be sent, and where a waiting job stands in the queue."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone

from submissions.models import Submission, stuck_sending
from submissions.outbox import ratelimit

State = Submission.State



# --- The queue -------------------------------------------------------------------------------------


def due_for_sending(*, limit: int) -> list[Submission]:
    """The next submissions to send, oldest turn first, and any send interrupted by a crash."""
    now = timezone.now()
    waiting = Submission.objects.filter(state=State.PENDING, next_attempt_at__lte=now)
    interrupted = Submission.objects.filter(stuck_sending(now=now))
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


def sendable_again(rows: QuerySet[Submission]) -> QuerySet[Submission]:
    """Of `rows`, those a person may send again (Submission.can_send_again): could not be sent, or left
    mid-send by a process that died, and not replaced by a later take."""
    return rows.filter(Q(state=State.SEND_FAILED) | stuck_sending(), retried_as__isnull=True)
