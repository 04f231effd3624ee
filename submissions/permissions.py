"""Who may do what. Every view asks these (on the server); templates use the same answers to hide
buttons a user may not press."""

from typing import Any

from submissions.models import Submission


def can_see_team(user: Any) -> bool:
    return user.has_perm("submissions.view_team_history")


def can_submit(user: Any) -> bool:
    return user.has_perm("submissions.submit_jobs")


def can_view(user: Any, submission: Submission) -> bool:
    return submission.created_by_id == user.pk or can_see_team(user)


def can_retry(user: Any, submission: Submission) -> bool:
    """Send again, refresh now, retry: the owner (if they may submit) or a team admin."""
    if user.has_perm("submissions.retry_any_job"):
        return True
    return submission.created_by_id == user.pk and can_submit(user)
