"""Reads of batches: which ones a member may see, and a batch's progress grid."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404

from submissions import roles
from submissions.models import Batch, Submission
from submissions.outputs.delivery_selectors import Delivery, delivery_of
from submissions.takes.selectors import SETTLED


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


@dataclass(frozen=True)
class BatchRow:
    job: Submission  # the latest take of one language
    delivery: Delivery

    @property
    def settled(self) -> bool:
        """Finished one way or another: a new take may replace it (takes.selectors.SETTLED)."""
        return self.job.state in SETTLED

    @property
    def problem(self) -> str:
        """Why it failed, in plain words, where there is a reason."""
        job = self.job
        if job.failed_at_chamelaion:
            return job.failure_explanation
        if job.state in (Submission.State.SEND_FAILED, Submission.State.MISSING):
            return job.last_error
        return ""


@dataclass
class BatchOverview:
    jobs: list[Submission]  # the latest take of each language, in the order the languages were entered
    rows: list[BatchRow]
    states: list[tuple[str, str, int]]  # (state, label, how many jobs are in it)
    finished: int
    failed: int
    completed: int
    in_flight: bool

    @property
    def total(self) -> int:
        return len(self.jobs)

    @property
    def percent(self) -> int:
        return round(100 * self.finished / self.total) if self.total else 0

    @property
    def other_finished(self) -> int:
        """Finished neither completed nor failed (cancelled): the bar's grey part."""
        return max(0, self.finished - self.completed - self.finished_failed)

    @property
    def finished_failed(self) -> int:
        return min(self.failed, self.finished - self.completed)

    # Where each part of the progress bar starts (SVG x positions: no inline style, which the CSP refuses).
    @property
    def failed_from(self) -> int:
        return self.completed

    @property
    def other_from(self) -> int:
        return self.completed + self.finished_failed

    @property
    def kept(self) -> int:
        return sum(1 for row in self.rows if row.delivery.kept)


def batch_overview(*, batch: Batch) -> BatchOverview:
    jobs = list(
        batch.submissions.filter(retried_as__isnull=True)
        .select_related("created_by", "output_copy")
        # Every take of a language shares its first take's id, and the first takes were saved in the order
        # the languages were entered.
        .order_by(Coalesce("first_take_id", "pk"), "pk")
    )
    counts: dict[str, int] = {state: 0 for state in GRID_STATES}
    for job in jobs:
        counts[job.state] = counts.get(job.state, 0) + 1
    labels = dict(Submission.State.choices)
    final = (Submission.State.COMPLETED, Submission.State.FAILED, Submission.State.MISSING, Submission.State.CANCELLED)
    failed = sum(counts[state] for state in (Submission.State.FAILED, Submission.State.SEND_FAILED, Submission.State.MISSING))
    rows = [BatchRow(job=job, delivery=delivery_of(submission=job)) for job in jobs]
    return BatchOverview(
        jobs=jobs,
        rows=rows,
        states=[(state, labels[state], counts[state]) for state in GRID_STATES],
        finished=sum(counts[state] for state in final),
        failed=failed,
        completed=counts[Submission.State.COMPLETED],
        # A copy still being made changes the page too: it polls until every copy is kept or given up.
        in_flight=any(row.job.is_in_flight or row.delivery.copying for row in rows),
    )
