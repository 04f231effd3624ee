"""Per-member monthly job limits: checked before anything is saved or sent."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Count, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from submissions.models import MonthlyLimit, Submission

# Jobs that never reached Chamelaion cost nothing and do not count.
NOT_COUNTED = ("send_failed", "cancelled")


class MonthlyLimitReached(Exception):
    pass


def month_start(now: datetime | None = None) -> datetime:
    local = timezone.localtime(now)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _counted_this_month() -> QuerySet[Submission]:
    """The jobs that count against monthly limits: made since the month began, and not among NOT_COUNTED."""
    return Submission.objects.filter(created_at__gte=month_start()).exclude(state__in=NOT_COUNTED)


def jobs_this_month(user: Any) -> int:
    return _counted_this_month().filter(created_by=user).count()


def jobs_this_month_by_member() -> dict[int, int]:
    """jobs_this_month for everyone at once (one query): user pk → jobs; a member without any is absent."""
    rows = _counted_this_month().filter(created_by__isnull=False).values_list("created_by").annotate(jobs=Count("id"))
    return dict(rows.order_by())


def check_monthly_limit(*, user: Any, adding: int, actor: Any = None) -> None:
    """Call inside the transaction that saves the jobs: the member's limit row is locked, so two
    submissions at the same moment cannot both slip under the limit. `user` is whose jobs they are (the
    limit is theirs); `actor`, if someone else asks for them (a team admin sending a member's job again),
    is who is told."""
    # Read with the user for this request by the auth backend: no limit applies to them. A user object kept
    # longer (a worker's, a test's) may hold an answer cached before a limit was set, so it is asked again.
    if getattr(user, "monthly_limit_preloaded", False) and user.__class__.monthly_limit.related.get_cached_value(user) is None:
        return
    # The limit row locked and the month's jobs counted in one statement.
    used_this_month = Subquery(
        _counted_this_month().filter(created_by=user).order_by().values("created_by").annotate(n=Count("id")).values("n")
    )
    row = (
        MonthlyLimit.objects.select_for_update(of=("self",))
        .filter(user=user)
        .annotate(used=Coalesce(used_this_month, 0))
        .values_list("jobs_per_month", "used")
        .first()
    )
    if row is None:
        return
    limit, used = row
    if used + adding > limit:
        asking = f" and this asks for {adding} more" if adding > 1 else ""
        if actor is None or actor.pk == user.pk:
            whose, raise_whose = f"you have used {used} of your {limit}", "your limit"
        else:
            name = user.get_username()
            whose, raise_whose = f"{name} has used {used} of their {limit}", f"{name}'s limit"
        raise MonthlyLimitReached(
            f"Monthly limit reached: {whose} jobs this month{asking}. Nothing was sent. "
            f"A team admin can raise {raise_whose}."
        )
