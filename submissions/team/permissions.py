"""Who may do what. Every view asks these (on the server); templates use the same answers to hide
buttons a user may not press."""

from dataclasses import dataclass
from typing import Any

from submissions import roles
from submissions.models import Batch, Submission


def can_see_team(user: Any) -> bool:
    return user.has_perm(roles.VIEW_TEAM_HISTORY)


def can_submit(user: Any) -> bool:
    return user.has_perm(roles.SUBMIT_JOBS)


def can_manage_api_key(user: Any) -> bool:
    return user.has_perm(roles.MANAGE_API_KEY)


def can_see_problems(user: Any) -> bool:
    """The banners for what only an administrator can fix (a rejected key, a used-up quota, Chamelaion out
    of reach): for staff, and for whoever can change the key, since that is often the fix."""
    return bool(user and user.is_authenticated and (user.is_staff or can_manage_api_key(user)))


def can_manage_members(user: Any) -> bool:
    return user.has_perm(roles.MANAGE_MEMBERS)


def can_see_usage(user: Any) -> bool:
    return user.has_perm(roles.VIEW_USAGE)


def can_retry_batch(user: Any, batch: Batch) -> bool:
    """Retry a batch's failed jobs: whoever made it (if they may submit) or a team admin."""
    return user.has_perm(roles.RETRY_ANY_JOB) or (batch.created_by_id == user.pk and can_submit(user))


@dataclass(frozen=True)
class Capabilities:
    """What the menu and pages may offer this user: the same answers the views enforce."""

    submit: bool
    see_team: bool
    manage_members: bool
    see_usage: bool
    manage_api_key: bool


def capabilities(user: Any) -> Capabilities:
    return Capabilities(
        submit=can_submit(user),
        see_team=can_see_team(user),
        manage_members=can_manage_members(user),
        see_usage=can_see_usage(user),
        manage_api_key=can_manage_api_key(user),
    )


def can_retry(user: Any, submission: Submission) -> bool:
    """Send again, refresh now, retry: the owner (if they may submit) or a team admin."""
    if user.has_perm(roles.RETRY_ANY_JOB):
        return True
    return submission.created_by_id == user.pk and can_submit(user)


def can_make_new_take(user: Any, latest_take: Submission) -> bool:
    """New take of a language: the rule of Send again, asked of the latest take (the one it replaces). A new
    take costs money as a resend does, and it replaces someone's take, so it is theirs (or a team admin's)
    to make, not any submitter's."""
    return can_retry(user, latest_take)
