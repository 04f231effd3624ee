"""The activity trail: who submitted, sent again, retried, cancelled, imported, refreshed or changed what.

Services call `record()` after the change they describe has happened (on the same database, so inside
the caller's transaction when there is one). Admin edits are also kept in Django's own LogEntry.
`details` is a short plain summary for people: never put a secret (API key, token, password) in it.
"""

from __future__ import annotations

from typing import Any

from submissions.models import Activity, Batch, Submission

Verb = Activity.Verb


def record(
    *,
    actor: Any,
    verb: str,
    submission: Submission | None = None,
    batch: Batch | None = None,
    details: str = "",
) -> Activity:
    """Add one entry to the trail. `actor` is the user who did it, or None for DubDash itself (the
    worker, a management command). An anonymous user counts as None."""
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    batch_id: int | None
    if batch is None and submission is not None and submission.batch_id is not None:
        batch_id = submission.batch_id  # so a batch's trail also shows what happened to its jobs
    else:
        batch_id = batch.pk if batch is not None else None
    details = " ".join(str(details).split())  # one line
    if len(details) > Activity.DETAILS_MAX_LENGTH:
        details = details[: Activity.DETAILS_MAX_LENGTH - 1] + "…"
    return Activity.objects.create(
        actor=actor,
        verb=verb,
        submission=submission,
        batch_id=batch_id,
        details=details,
    )


def of_submission(submission: Submission, *, limit: int = 50) -> list[Activity]:
    """That job's trail, newest first (one query)."""
    return list(Activity.objects.filter(submission=submission).select_related("actor").order_by("-at", "-id")[:limit])
