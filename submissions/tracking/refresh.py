""""Refresh now": one job asked about once, at most every few seconds however often it is pressed.

The answer is typed (RefreshResult: an outcome and the sentence to show), so a caller that handles many
jobs (admin's action) counts outcomes without reading the sentences."""

from __future__ import annotations

import enum
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from submissions import chamelaion
from submissions.apikey import clients
from submissions.core import activity, problems
from submissions.models import Submission
from submissions.tracking.services import (
    MISSING_MESSAGE,
    REFRESH_NOW_EVERY,
    STORE_ERRORS,
    apply_snapshot,
    mark_missing,
)

logger = logging.getLogger(__name__)


class RefreshOutcome(enum.Enum):
    NOT_SENT_YET = "not sent yet"  # nothing upstream to ask about
    FINISHED = "finished"  # its status will not change
    TOO_SOON = "too soon"  # asked a moment ago: not asked again
    MISSING = "missing"  # Chamelaion has no such job: now "Not found at Chamelaion"
    COULD_NOT_ASK = "could not ask"  # the call failed (a problem banner may say why)
    NOT_STORED = "not stored"  # Chamelaion answered; storing it failed (the worker asks again)
    CHECKED = "checked"  # asked and stored


@dataclass(frozen=True)
class RefreshResult:
    outcome: RefreshOutcome
    message: str  # what to tell the person who pressed it


# --- "Refresh now" --------------------------------------------------------------------------------


def refresh_now(*, submission: Submission, client: chamelaion.ChamelaionClient | None = None) -> RefreshResult:
    """Ask Chamelaion once about one job, at most once every few seconds however often it is pressed.
    `client`: one already made for a run of these (else the deployment's, made here)."""
    if submission.request_id is None:
        return RefreshResult(
            RefreshOutcome.NOT_SENT_YET, "This job has not been sent yet, so there is nothing to ask Chamelaion."
        )
    if submission.state not in Submission.UPSTREAM_IN_FLIGHT:
        return RefreshResult(RefreshOutcome.FINISHED, "This job is finished; its status will not change.")
    now = timezone.now()
    claimed = Submission.objects.filter(
        Q(refresh_requested_at__isnull=True) | Q(refresh_requested_at__lte=now - REFRESH_NOW_EVERY),
        pk=submission.pk,
    ).update(refresh_requested_at=now)
    if not claimed:
        return RefreshResult(RefreshOutcome.TOO_SOON, "Checked a moment ago. Try again in a few seconds.")
    client = client or clients.get_client()
    try:
        request = client.get_request(submission.request_id)
    except chamelaion.NotFound:
        mark_missing(submission, fetched_at=now)
        return RefreshResult(RefreshOutcome.MISSING, MISSING_MESSAGE)
    except chamelaion.ChamelaionError as error:
        problems.record_problem(error, while_polling=True)
        return RefreshResult(RefreshOutcome.COULD_NOT_ASK, f"Could not check now: {error.user_message}")
    problems.clear_problems()
    try:
        with transaction.atomic():  # a savepoint: the request's transaction stays usable if this fails
            apply_snapshot(submission, request, fetched_at=now)
    except STORE_ERRORS:
        logger.exception("Could not store the status of submission %s (request %s)", submission.pk, submission.request_id)
        return RefreshResult(
            RefreshOutcome.NOT_STORED,
            "Chamelaion answered, but DubDash could not store what it said about this job. It asks again by itself.",
        )
    return RefreshResult(RefreshOutcome.CHECKED, f"Checked just now: {submission.status_label.lower()}.")


# --- Many at once (admin's "Refresh status now") -------------------------------------------------------


@dataclass
class RefreshReport:
    selected: int  # jobs the person chose
    asked: int = 0  # of those, the ones asked about
    # How many ended in each result. Keyed by the whole result (outcome and sentence), so that "checked"
    # jobs are told apart by the status they now have, as the sentence says it.
    results: Counter[RefreshResult] = field(default_factory=Counter)

    @property
    def skipped(self) -> int:
        return self.selected - self.asked

    def count(self, outcome: RefreshOutcome) -> int:
        return sum(n for result, n in self.results.items() if result.outcome is outcome)


def refresh_selected(*, submissions: QuerySet[Submission], actor: Any, limit: int) -> RefreshReport:
    """Refresh now, for up to `limit` of the chosen jobs that can still change (sent, not finished); the
    others are left to the worker. Each one asked about is noted in the activity trail, with what it said."""
    report = RefreshReport(selected=submissions.count())
    askable = submissions.filter(request_id__isnull=False, state__in=Submission.UPSTREAM_IN_FLIGHT).order_by("pk")
    client = clients.get_client()  # one key read for the whole run
    for submission in askable[:limit]:
        result = refresh_now(submission=submission, client=client)
        report.asked += 1
        report.results[result] += 1
        activity.record(actor=actor, verb=activity.Verb.REFRESHED, submission=submission, details=result.message)
    return report
