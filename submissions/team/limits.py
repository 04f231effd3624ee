"""Per-member monthly limits, in jobs, in minutes of output, or both: checked before anything is saved or sent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn

from django.conf import settings
from django.db.models import Count, FloatField, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from submissions.models import MonthlyLimit, OutputCopy, Submission

# Jobs that never reached Chamelaion cost nothing and do not count.
NOT_COUNTED = ("send_failed", "cancelled")


class MonthlyLimitReached(Exception):
    pass


# Minutes are read from kept copies (kept_seconds): with copying off none is made, every job counts 0
# minutes, and a minutes limit would never be reached. Said, never silently ignored.
MINUTES_NOT_MEASURED = (
    "Minutes of output are measured from the copies DubDash keeps, and this deployment keeps none "
    "(OUTPUT_KEEP is false), so a minutes limit could not be enforced. Leave it blank, or set a job limit."
)


def minutes_are_measured() -> bool:
    return bool(settings.OUTPUT_KEEP)


def refuse_unmeasurable_minutes(*, minutes: int | None, changed: bool) -> str:
    """Why a minutes limit typed in a form cannot be set (blank if it can). One left as it was stays: it is
    shown as not enforced, and removing it is up to the person who set it."""
    if minutes is not None and changed and not minutes_are_measured():
        return MINUTES_NOT_MEASURED
    return ""


@dataclass(frozen=True)
class MonthUse:
    """What a member's jobs made this month count for: jobs, and seconds of their kept outputs."""

    jobs: int = 0
    seconds: float = 0.0

    @property
    def minutes(self) -> float:
        return self.seconds / 60


def kept_seconds() -> Coalesce:
    """The summed duration of kept copies of the jobs aggregated, 0 when none is kept. Chamelaion bills by
    processed duration, and a kept copy's duration is the only one DubDash reads (from the MP4's header).
    The copy is a one-to-one: the join never repeats a job, so a Count beside it stays right."""
    kept = Sum("output_copy__duration_seconds", filter=Q(output_copy__state=OutputCopy.State.DONE))
    return Coalesce(kept, Value(0.0), output_field=FloatField())


def month_start(now: datetime | None = None) -> datetime:
    local = timezone.localtime(now)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _counted_this_month() -> QuerySet[Submission]:
    """The jobs that count against monthly limits: made since the month began, and not among NOT_COUNTED."""
    # counted_at, not created_at: a job sent again counts in the month it was sent again (jobs.services.reopen).
    return Submission.objects.filter(counted_at__gte=month_start()).exclude(state__in=NOT_COUNTED)


def jobs_this_month(user: Any) -> int:
    return _counted_this_month().filter(created_by=user).count()


def use_this_month(user: Any) -> MonthUse:
    totals = _counted_this_month().filter(created_by=user).aggregate(jobs=Count("id"), seconds=kept_seconds())
    return MonthUse(jobs=totals["jobs"], seconds=totals["seconds"])


def use_this_month_by_member() -> dict[int, MonthUse]:
    """use_this_month for everyone at once (one query): user pk → use; a member without any job is absent."""
    rows = (
        _counted_this_month()
        .filter(created_by__isnull=False)
        .values_list("created_by")
        .annotate(jobs=Count("id"), seconds=kept_seconds())
        .order_by()
    )
    return {pk: MonthUse(jobs=jobs, seconds=seconds) for pk, jobs, seconds in rows}


def jobs_this_month_by_member() -> dict[int, int]:
    """jobs_this_month for everyone at once (one query): user pk → jobs; a member without any is absent."""
    return {pk: use.jobs for pk, use in use_this_month_by_member().items()}


def check_monthly_limit(*, user: Any, adding: int, actor: Any = None) -> None:
    """Call inside the transaction that saves the jobs: the member's limit row is locked, so two
    submissions at the same moment cannot both slip under the limit. `user` is whose jobs they are (the
    limit is theirs); `actor`, if someone else asks for them (a team admin sending a member's job again),
    is who is told.

    Jobs: refused if the `adding` new ones would pass the cap. Minutes: a job's length is only known once
    its output is kept, so new jobs are refused once the minutes already used reach the cap."""
    # Read with the user for this request by the auth backend: no limit applies to them. A user object kept
    # longer (a worker's, a test's) may hold an answer cached before a limit was set, so it is asked again.
    if getattr(user, "monthly_limit_preloaded", False) and user.__class__.monthly_limit.related.get_cached_value(user) is None:
        return
    # The limit row locked and the month's jobs and minutes counted in one statement.
    counted = _counted_this_month().filter(created_by=user).order_by().values("created_by")
    used_jobs = Subquery(counted.annotate(n=Count("id")).values("n"))
    used_seconds = Subquery(counted.annotate(s=kept_seconds()).values("s"), output_field=FloatField())
    row = (
        MonthlyLimit.objects.select_for_update(of=("self",))
        .filter(user=user)
        .annotate(used_jobs=Coalesce(used_jobs, 0), used_seconds=Coalesce(used_seconds, Value(0.0)))
        .values_list("jobs_per_month", "minutes_per_month", "used_jobs", "used_seconds")
        .first()
    )
    if row is None:
        return
    jobs_limit, minutes_limit, jobs_used, seconds_used = row
    if jobs_limit is not None and jobs_used + adding > jobs_limit:
        asking = f" and this asks for {adding} more" if adding > 1 else ""
        _refuse(user=user, actor=actor, used=f"{jobs_used}", limit=f"{jobs_limit} jobs this month{asking}")
    if minutes_limit is not None and seconds_used >= minutes_limit * 60:
        _refuse(user=user, actor=actor, used=f"{seconds_used / 60:.1f}", limit=f"{minutes_limit} minutes this month")


def _refuse(*, user: Any, actor: Any, used: str, limit: str) -> NoReturn:
    if actor is None or actor.pk == user.pk:
        whose, raise_whose = f"you have used {used} of your {limit}", "your limit"
    else:
        name = user.get_username()
        whose, raise_whose = f"{name} has used {used} of their {limit}", f"{name}'s limit"
    raise MonthlyLimitReached(
        f"Monthly limit reached: {whose}. Nothing was sent. A team admin can raise {raise_whose}."
    )
