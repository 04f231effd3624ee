"""Doing an outbox task (submissions.outbox.models.OutboxTask) exactly once: the same claim, retry and
give-up rules as sending a job, for any kind of background work."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from django.db.models import F, Q
from django.utils import timezone

from submissions.core.states import transition
from submissions.outbox.backoff import backoff
from submissions.outbox.models import OutboxTask

Task = TypeVar("Task", bound=OutboxTask)
State = OutboxTask.State


def _claimable(model: type[OutboxTask], now: datetime) -> Q:
    waiting = Q(state=State.WAITING, next_attempt_at__lte=now)
    stuck = Q(state=State.RUNNING, last_attempt_at__lt=now - model.STUCK_AFTER)
    return waiting | stuck


def due(model: type[Task], *, limit: int) -> list[Task]:
    """The next tasks to do, oldest turn first (a task left running by a dead process is due again)."""
    now = timezone.now()
    return list(model.objects.filter(_claimable(model, now)).order_by("next_attempt_at", "pk")[:limit])  # type: ignore[attr-defined]


def claim(task: OutboxTask) -> bool:
    """Move the task to RUNNING if it is due and nobody else is doing it (a conditional UPDATE)."""
    now = timezone.now()
    model = type(task)
    claimed = model.objects.filter(_claimable(model, now), pk=task.pk).update(  # type: ignore[attr-defined]
        state=State.RUNNING, attempts=F("attempts") + 1, last_attempt_at=now
    )
    if claimed:
        task.refresh_from_db()
    return bool(claimed)


def succeed(task: OutboxTask, **fields: Any) -> bool:
    """The claimed task is done; `fields` are what it produced."""
    return _finish(task, state=State.DONE, last_error="", next_attempt_at=None, **fields)


def fail(task: OutboxTask, *, message: str, retryable: bool, max_attempts: int, base: float, cap: float) -> bool:
    """The claimed task's attempt failed: it waits and tries again (backing off), or, when retrying cannot
    help or the attempts are used up, it is given up with `message` for a person to read."""
    if retryable and task.attempts < max_attempts:
        until = timezone.now() + backoff(task.attempts, base=base, cap=cap)
        return _finish(task, state=State.WAITING, last_error=message, next_attempt_at=until)
    return _finish(task, state=State.FAILED, last_error=message, next_attempt_at=None)


def release(task: OutboxTask) -> bool:
    """The claimed task was interrupted because the worker is stopping, not because it failed: it is due
    again at once, and the attempt is not counted against it."""
    return _finish(task, state=State.WAITING, attempts=max(task.attempts - 1, 0), next_attempt_at=timezone.now())


def requeue(task: OutboxTask, **fields: Any) -> bool:
    """A person asks to try a given-up task again: a fresh set of attempts, from now."""
    return transition(task, expected=State.FAILED, state=State.WAITING, attempts=0, next_attempt_at=timezone.now(), **fields)


def _finish(task: OutboxTask, **fields: Any) -> bool:
    # Guarded on the attempt this process claimed: if it was declared stuck and claimed again meanwhile,
    # the later attempt's outcome is the one that stands.
    return transition(task, expected=State.RUNNING, guard=Q(last_attempt_at=task.last_attempt_at), **fields)
