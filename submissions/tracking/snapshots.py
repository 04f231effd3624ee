"""What DubDash stores of what Chamelaion says about a job, and how often it asks again. Used by the send
that learns a job's id (or finds it by reference id), by the worker's rounds, Refresh now and the import."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from submissions import chamelaion
from submissions.models import Submission

State = Submission.State


def state_for(upstream_status: str) -> str:
    """Chamelaion's status is a free string; one DubDash does not know is still in flight."""
    known = {"queued": State.QUEUED, "processing": State.PROCESSING, "completed": State.COMPLETED, "failed": State.FAILED}
    return known.get(upstream_status, State.IN_FLIGHT)


def poll_interval(age: timedelta) -> timedelta:
    """Young jobs are asked about often, old ones rarely: a tenth of the job's age, within bounds."""
    seconds = age.total_seconds() / 10
    return timedelta(seconds=min(settings.POLL_MAX_SECONDS, max(settings.POLL_MIN_SECONDS, seconds)))


def upstream_fields(request: chamelaion.LipsyncRequest) -> dict[str, Any]:
    """What a submission stores of a LipsyncRequest. Its values are already fit to store: the client
    cleans every reply as it parses it (chamelaion_replies), whichever path the reply then takes."""
    return {
        "state": state_for(request.status),
        "upstream_status": request.status,
        "upstream_created_at": request.created_at,
        "started_at": request.started_at,
        "finished_at": request.finished_at,
        "output_url": request.output_url,
        "upstream_error_message": request.error_message,
        # Why the reported output link was not kept, shown where the video would be; blank otherwise.
        "last_error": request.output_problem,
        "last_synced_at": timezone.now(),
    }
