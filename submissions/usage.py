"""The team's usage, for team admins: jobs per member, per language and per week, with outcomes and the
average time to finish. A few aggregate queries, whatever the number of jobs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Avg, Count, DurationField, ExpressionWrapper, F, Q
from django.db.models.functions import TruncWeek
from django.utils import timezone

from submissions.models import Submission

State = Submission.State
FINISH_TIME = ExpressionWrapper(F("finished_at") - F("created_at"), output_field=DurationField())


@dataclass
class UsageRow:
    label: str
    jobs: int
    completed: int
    failed: int
    average_finish: timedelta | None


def _summarise(queryset, key: str) -> list[dict]:
    return list(
        queryset.values(key)
        .annotate(
            jobs=Count("id"),
            completed=Count("id", filter=Q(state=State.COMPLETED)),
            failed=Count("id", filter=Q(state__in=[State.FAILED, State.SEND_FAILED, State.MISSING])),
            average_finish=Avg(FINISH_TIME, filter=Q(state=State.COMPLETED)),
        )
        .order_by("-jobs")
    )


def usage(*, since: datetime) -> dict[str, list[UsageRow]]:
    jobs = Submission.objects.filter(created_at__gte=since)
    languages = dict(settings.DUBBING_LANGUAGES)
    by_member = [
        UsageRow(row["created_by__username"] or "outside DubDash", row["jobs"], row["completed"], row["failed"], row["average_finish"])
        for row in _summarise(jobs, "created_by__username")
    ]
    by_language = [
        UsageRow(languages.get(row["target_language"], row["target_language"]) or "(not set)", row["jobs"], row["completed"], row["failed"], row["average_finish"])
        for row in _summarise(jobs, "target_language")
    ]
    weeks = (
        jobs.annotate(week=TruncWeek("created_at"))
        .values("week")
        .annotate(
            jobs=Count("id"),
            completed=Count("id", filter=Q(state=State.COMPLETED)),
            failed=Count("id", filter=Q(state__in=[State.FAILED, State.SEND_FAILED, State.MISSING])),
            average_finish=Avg(FINISH_TIME, filter=Q(state=State.COMPLETED)),
        )
        .order_by("-week")
    )
    by_week = [
        UsageRow(f"Week of {timezone.localtime(row['week']).date():%Y-%m-%d}" if row["week"] else "?", row["jobs"], row["completed"], row["failed"], row["average_finish"])
        for row in weeks
    ]
    return {"member": by_member, "language": by_language, "week": by_week}


def period_start(days: int) -> datetime:
    return timezone.now() - timedelta(days=days)
