"""The team's usage, for team admins: jobs per member, per language and per week, with outcomes, the
average time to finish and the minutes of output kept. A few aggregate queries, whatever the number of jobs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Avg, Count, DurationField, ExpressionWrapper, F, Q
from django.db.models.functions import TruncWeek
from django.utils import timezone

from submissions.models import Submission
from submissions.team.limits import kept_seconds

State = Submission.State
FINISH_TIME = ExpressionWrapper(F("finished_at") - F("created_at"), output_field=DurationField())


@dataclass
class UsageRow:
    label: str
    jobs: int
    completed: int
    failed: int
    average_finish: timedelta | None
    # Of kept copies only (what Chamelaion bills is their processed duration); a job without one counts 0.
    minutes: float


def _summarise(queryset, key: str, *, order: str = "-jobs") -> list[dict]:
    return list(
        queryset.values(key)
        .annotate(
            jobs=Count("id"),
            completed=Count("id", filter=Q(state=State.COMPLETED)),
            failed=Count("id", filter=Q(state__in=[State.FAILED, State.SEND_FAILED, State.MISSING])),
            average_finish=Avg(FINISH_TIME, filter=Q(state=State.COMPLETED)),
            seconds=kept_seconds(),
        )
        .order_by(order)
    )


def _row(label: str, totals: dict) -> UsageRow:
    return UsageRow(
        label, totals["jobs"], totals["completed"], totals["failed"], totals["average_finish"], totals["seconds"] / 60
    )


def usage(*, since: datetime) -> dict[str, list[UsageRow]]:
    jobs = Submission.objects.filter(created_at__gte=since)
    languages = dict(settings.DUBBING_LANGUAGES)

    def week_label(week: datetime | None) -> str:
        return f"Week of {timezone.localtime(week).date():%Y-%m-%d}" if week else "?"

    return {
        "member": [
            _row(row["created_by__username"] or "outside DubDash", row)
            for row in _summarise(jobs, "created_by__username")
        ],
        "language": [
            _row(languages.get(row["target_language"], row["target_language"]) or "(not set)", row)
            for row in _summarise(jobs, "target_language")
        ],
        "week": [
            _row(week_label(row["week"]), row)
            for row in _summarise(jobs.annotate(week=TruncWeek("created_at")), "week", order="-week")
        ],
    }


def period_start(days: int) -> datetime:
    return timezone.now() - timedelta(days=days)
