"""Kept copies of outputs for the team's tests: what minutes of output are counted from."""

from __future__ import annotations

import uuid
from typing import Any

from django.utils import timezone

from submissions.models import OutputCopy, Submission
from tests.factories import make_submission


def keep(submission: Submission, *, seconds: float | None, state: str = OutputCopy.State.DONE) -> OutputCopy:
    """The job's kept copy, `seconds` long (as read from the MP4's header); any other state is not kept."""
    done = state == OutputCopy.State.DONE
    return OutputCopy.objects.create(
        submission=submission,
        state=state,
        duration_seconds=seconds,
        kept_at=timezone.now() if done else None,
        file=f"outputs/test/{submission.reference_id}.mp4" if done else "",
    )


def completed_with_output(user: Any, *, seconds: float, **fields: Any) -> Submission:
    """A completed job of `user` whose output was kept, `seconds` long."""
    job = make_submission(user, state=Submission.State.COMPLETED, request_id=f"r-{uuid.uuid4().hex}", **fields)
    keep(job, seconds=seconds)
    return job
