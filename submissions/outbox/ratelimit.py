"""The deployment-wide budget of generation requests (GCRA over one database row).

With a limit of L a minute and a burst of B, slots are spaced 60 / (L - B) seconds apart (plus a small
safety margin for network jitter) after an initial burst of B, so any 60-second window holds fewer than
L requests: in normal operation Chamelaion never answers 429.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import DateTimeField, DurationField, ExpressionWrapper, F, Q, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from submissions.models import RateBudget

SAFETY = 1.03  # slots a little further apart than the arithmetic says: arrival times jitter
BUDGET_ROW = 1


@dataclass(frozen=True)
class Budget:
    interval: timedelta  # between slots in a steady stream
    tolerance: timedelta  # how far ahead of now the schedule may run: the burst

    @classmethod
    def from_settings(cls) -> Budget:
        limit = settings.SEND_RATE_LIMIT_PER_MINUTE
        burst = max(1, limit // 10)
        interval = timedelta(seconds=60 / max(1, limit - burst) * SAFETY)
        return cls(interval=interval, tolerance=interval * (burst - 1))


def take_slot(*, now: datetime | None = None, only_if: Q | None = None) -> bool:
    """Take one slot if one is free now, in one conditional UPDATE (no read first, so two processes can
    never both take the last slot). `only_if` is a further condition checked in the same statement (no
    problem pausing sending, say). False: no room now, the condition does not hold, or no row yet."""
    budget = Budget.from_settings()
    now = now or timezone.now()
    free = RateBudget.objects.filter(pk=BUDGET_ROW, theoretical_arrival__lte=now + budget.tolerance)
    if only_if is not None:
        free = free.filter(only_if)
    later = Greatest(F("theoretical_arrival"), Value(now, output_field=DateTimeField())) + Value(
        budget.interval, output_field=DurationField()
    )
    return bool(free.update(theoretical_arrival=ExpressionWrapper(later, output_field=DateTimeField())))


def try_acquire(*, now: datetime | None = None) -> float:
    """Take one slot if one is free now: returns 0. Otherwise returns the seconds until one frees up."""
    budget = Budget.from_settings()
    while True:
        moment = now or timezone.now()
        if take_slot(now=moment):
            return 0.0
        arrival = _current_arrival(moment)  # made here by a deployment's first send
        if arrival - budget.tolerance > moment:
            return (arrival - budget.tolerance - moment).total_seconds()
        # The row was only just made (or the schedule moved between the two statements): try again.


def hold_off(seconds: float) -> None:
    """Chamelaion said 429 anyway (another client on the account?): nobody sends for `seconds`."""
    budget = Budget.from_settings()
    now = timezone.now()
    while True:
        arrival = _current_arrival(now)
        wanted = now + timedelta(seconds=seconds) + budget.tolerance
        if arrival >= wanted or RateBudget.objects.filter(pk=BUDGET_ROW, theoretical_arrival=arrival).update(
            theoretical_arrival=wanted
        ):
            return


def seconds_until_free(*, now: datetime | None = None) -> float:
    now = now or timezone.now()
    budget = Budget.from_settings()
    return max(0.0, (_current_arrival(now) - budget.tolerance - now).total_seconds())


def _current_arrival(now: datetime) -> datetime:
    row, _ = RateBudget.objects.get_or_create(pk=BUDGET_ROW, defaults={"theoretical_arrival": now})
    return row.theoretical_arrival
