"""Reads of batches: which ones a member may see, and a batch's progress grid."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import BooleanField, Case, Q, QuerySet, Value, When
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404

from submissions import roles
from submissions.jobs.selectors import has_inputs_to_send
from submissions.models import Batch, Submission
from submissions.outputs.delivery_selectors import Delivery, delivery_of
from submissions.takes.selectors import may_make_new_take


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


# --- "Retry the failed ones": what it sends, the one rule its button's count and the retry both read -----


def current_takes(*, batch: Batch) -> QuerySet[Submission]:
    """The latest take of each language: one a later take replaced is history, not a failure to retry."""
    return batch.submissions.filter(retried_as__isnull=True)


def _sent_again_as_it_is() -> Q:
    """Could not be sent, and still has its inputs: back to the outbox (jobs.services.reopen)."""
    return Q(state=Submission.State.SEND_FAILED) & has_inputs_to_send()


def _sent_again_as_next_take() -> Q:
    """Failed or lost at Chamelaion: sent again as the next take, with the same links. Not one made from
    uploaded files: those were deleted once Chamelaion had them, so there is nothing to send again."""
    return Q(state__in=[Submission.State.FAILED, Submission.State.MISSING]) & ~Q(video_url="")


@dataclass(frozen=True)
class FailedToRetry:
    unsent: list[Submission]  # sent again as they are, with their owners (each counts against its own limit)
    finished_badly: list[Submission]  # sent again as the next take of their language


def failed_to_retry(*, batch: Batch) -> FailedToRetry:
    """The jobs "Retry the failed ones" sends again now, oldest first. Read by the retry under the batch's
    lock; the page's count of them is the same rule (batch_overview's `retryable`)."""
    current = current_takes(batch=batch).order_by("pk")
    return FailedToRetry(
        unsent=list(current.filter(_sent_again_as_it_is()).select_related("created_by")),
        finished_badly=list(current.filter(_sent_again_as_next_take())),
    )


# --- The batch page ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchRow:
    job: Submission  # the latest take of one language
    delivery: Delivery
    new_take: bool  # "New take" is offered to the user reading the page (takes.selectors.may_make_new_take)

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
    retryable: int  # how many "Retry the failed ones" would send again now (failed_to_retry's rule)

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


def batch_overview(*, batch: Batch, user: Any = None) -> BatchOverview:
    """The batch page for `user`: the latest take of each language, the counts and the progress bar, and
    what this user is offered (New take per row; the count on "Retry the failed ones"). Without a user
    (a reader of the jobs alone, such as the batch's ZIP), no row offers New take."""
    retryable = Case(
        When(_sent_again_as_it_is() | _sent_again_as_next_take(), then=Value(True)),
        default=Value(False),
        output_field=BooleanField(),
    )
    annotated = list(
        current_takes(batch=batch)
        .annotate(retryable=retryable)  # the retry's own rule, in the same query: no second read to disagree
        .select_related("created_by", "output_copy")
        # Every take of a language shares its first take's id, and the first takes were saved in the order
        # the languages were entered.
        .order_by(Coalesce("first_take_id", "pk"), "pk")
    )
    jobs: list[Submission] = list(annotated)
    counts: dict[str, int] = {state: 0 for state in GRID_STATES}
    for job in jobs:
        counts[job.state] = counts.get(job.state, 0) + 1
    labels = dict(Submission.State.choices)
    final = (Submission.State.COMPLETED, Submission.State.FAILED, Submission.State.MISSING, Submission.State.CANCELLED)
    failed = sum(counts[state] for state in (Submission.State.FAILED, Submission.State.SEND_FAILED, Submission.State.MISSING))
    rows = [
        BatchRow(
            job=job,
            delivery=delivery_of(submission=job),
            new_take=user is not None and may_make_new_take(user=user, latest=job),
        )
        for job in jobs
    ]
    return BatchOverview(
        jobs=jobs,
        rows=rows,
        states=[(state, labels[state], counts[state]) for state in GRID_STATES],
        finished=sum(counts[state] for state in final),
        failed=failed,
        completed=counts[Submission.State.COMPLETED],
        # A copy still being made changes the page too: it polls until every copy is kept or given up.
        in_flight=any(row.job.is_in_flight or row.delivery.copying for row in rows),
        retryable=sum(1 for job in annotated if job.retryable),
    )
