""""Refresh now": one job asked about once, at most every few seconds however often it is pressed."""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from submissions import chamelaion
from submissions.apikey import clients
from submissions.core import problems
from submissions.models import Submission
from submissions.tracking.services import (
    MISSING_MESSAGE,
    REFRESH_NOW_EVERY,
    STORE_ERRORS,
    apply_snapshot,
    mark_missing,
)

logger = logging.getLogger(__name__)
State = Submission.State


# --- "Refresh now" --------------------------------------------------------------------------------


def refresh_now(*, submission: Submission) -> str:
    """Ask Chamelaion once about one job, at most once every few seconds however often it is pressed.
    Returns what to tell the user."""
    if submission.request_id is None:
        return "This job has not been sent yet, so there is nothing to ask Chamelaion."
    if submission.state not in Submission.UPSTREAM_IN_FLIGHT:
        return "This job is finished; its status will not change."
    now = timezone.now()
    claimed = Submission.objects.filter(
        Q(refresh_requested_at__isnull=True) | Q(refresh_requested_at__lte=now - REFRESH_NOW_EVERY),
        pk=submission.pk,
    ).update(refresh_requested_at=now)
    if not claimed:
        return "Checked a moment ago. Try again in a few seconds."
    client = clients.get_client()
    try:
        request = client.get_request(submission.request_id)
    except chamelaion.NotFound:
        mark_missing(submission, fetched_at=now)
        return MISSING_MESSAGE
    except chamelaion.ChamelaionError as error:
        problems.record_problem(error, while_polling=True)
        return f"Could not check now: {error.user_message}"
    problems.clear_problems()
    try:
        with transaction.atomic():  # a savepoint: the request's transaction stays usable if this fails
            apply_snapshot(submission, request, fetched_at=now)
    except STORE_ERRORS:
        logger.exception("Could not store the status of submission %s (request %s)", submission.pk, submission.request_id)
        return "Chamelaion answered, but DubDash could not store what it said about this job. It asks again by itself."
    return f"Checked just now: {submission.status_label.lower()}."
