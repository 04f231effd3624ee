"""Who may do what. Every view asks these (on the server); templates use the same answers to hide
buttons a user may not press."""

from typing import Any

from submissions.models import Submission


def can_see_team(user: Any) -> bool:
    return user.has_perm("submissions.view_team_history")


def can_submit(user: Any) -> bool:
    return user.has_perm("submissions.submit_jobs")


def can_manage_api_key(user: Any) -> bool:
    return user.has_perm("submissions.manage_api_key")


def can_see_problems(user: Any) -> bool:
    """The banners for what only an administrator can fix (a rejected key, a used-up quota, Chamelaion out
    of reach): for staff, and for whoever can change the key, since that is often the fix."""
    return bool(user and user.is_authenticated and (user.is_staff or can_manage_api_key(user)))


def can_view(user: Any, submission: Submission) -> bool:
    return submission.created_by_id == user.pk or can_see_team(user)


def can_retry(user: Any, submission: Submission) -> bool:
    """Send again, refresh now, retry: the owner (if they may submit) or a team admin."""
    if user.has_perm("submissions.retry_any_job"):
        return True
    return submission.created_by_id == user.pk and can_submit(user)
