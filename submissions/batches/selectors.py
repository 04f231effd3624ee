"""Reads of batches: which ones a member may see, and a batch's progress grid."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from submissions import roles
from submissions.models import Batch, Submission


def visible_batches(*, user: Any) -> QuerySet[Batch]:
    queryset = Batch.objects.select_related("created_by")
    return queryset if user.has_perm(roles.VIEW_TEAM_HISTORY) else queryset.filter(created_by=user)


def get_visible_batch(*, user: Any, pk: int) -> Batch:
    return get_object_or_404(visible_batches(user=user), pk=pk)


GRID_STATES = [
    Submission.State.PENDING,
    Submission.State.SENDING,
    Submission.State.QUEUED,
    Submission.State.PROCESSING,
    Submission.State.IN_FLIGHT,
    Submission.State.COMPLETED,
    Submission.State.FAILED,
    Submission.State.SEND_FAILED,
    Submission.State.MISSING,
    Submission.State.CANCELLED,
]


@dataclass
class BatchOverview:
    jobs: list[Submission]  # the current job of each language (a retried job is replaced by its retry)
    states: list[tuple[str, str, int]]  # (state, label, how many jobs are in it)
    finished: int
    failed: int
    in_flight: bool

    @property
    def total(self) -> int:
        return len(self.jobs)

    @property
    def percent(self) -> int:
        return round(100 * self.finished / self.total) if self.total else 0


def batch_overview(*, batch: Batch) -> BatchOverview:
    jobs = list(
        batch.submissions.filter(retried_as__isnull=True).select_related("created_by").order_by("target_language", "pk")
    )
    counts: dict[str, int] = {state: 0 for state in GRID_STATES}
    for job in jobs:
        counts[job.state] = counts.get(job.state, 0) + 1
    labels = dict(Submission.State.choices)
    final = (Submission.State.COMPLETED, Submission.State.FAILED, Submission.State.MISSING, Submission.State.CANCELLED)
    failed = sum(counts[state] for state in (Submission.State.FAILED, Submission.State.SEND_FAILED, Submission.State.MISSING))
    return BatchOverview(
        jobs=jobs,
        states=[(state, labels[state], counts[state]) for state in GRID_STATES],
        finished=sum(counts[state] for state in final),
        failed=failed,
        in_flight=any(job.is_in_flight for job in jobs),
    )
