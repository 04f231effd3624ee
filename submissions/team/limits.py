"""Per-member monthly job limits: checked before anything is saved or sent."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from submissions.models import MonthlyLimit, Submission

# Jobs that never reached Chamelaion cost nothing and do not count.
NOT_COUNTED = ("send_failed", "cancelled")


class MonthlyLimitReached(Exception):
    pass


def month_start(now: datetime | None = None) -> datetime:
    local = timezone.localtime(now)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def jobs_this_month(user: Any) -> int:
    return (
        Submission.objects.filter(created_by=user, created_at__gte=month_start())
        .exclude(state__in=NOT_COUNTED)
        .count()
    )


def check_monthly_limit(*, user: Any, adding: int, actor: Any = None) -> None:
    """Call inside the transaction that saves the jobs: the member's limit row is locked, so two
    submissions at the same moment cannot both slip under the limit. `user` is whose jobs they are (the
    limit is theirs); `actor`, if someone else asks for them (a team admin sending a member's job again),
    is who is told."""
    limit = MonthlyLimit.objects.select_for_update().filter(user=user).values_list("jobs_per_month", flat=True).first()
    if limit is None:
        return
    used = jobs_this_month(user)
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
