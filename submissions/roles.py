"""The four roles of a DubDash team, as Django groups (made by migrations 0005 and 0017, assignable in admin), and
the one place permission names are written."""

from typing import Any

VIEWER = "Viewer"
SUBMITTER = "Submitter"
REVIEWER = "Reviewer"
TEAM_ADMIN = "Team admin"

# Every permission DubDash checks, named once. Code and templates refer to these constants (templates
# through the `can` context processor), never to the strings.
VIEW_TEAM_HISTORY = "submissions.view_team_history"
SUBMIT_JOBS = "submissions.submit_jobs"
RETRY_ANY_JOB = "submissions.retry_any_job"
MANAGE_API_KEY = "submissions.manage_api_key"
MANAGE_MEMBERS = "submissions.manage_members"
VIEW_USAGE = "submissions.view_usage"
REVIEW_TAKES = "submissions.review_takes"
VIEW_SUBMISSION = "submissions.view_submission"
CHANGE_SUBMISSION = "submissions.change_submission"
VIEW_BATCH = "submissions.view_batch"
VIEW_PROBLEM = "submissions.view_problem"
DELETE_PROBLEM = "submissions.delete_problem"
VIEW_ACTIVITY = "submissions.view_activity"
VIEW_OUTGOING_EMAIL = "submissions.view_outgoingemail"
VIEW_USER = "auth.view_user"
ADD_USER = "auth.add_user"
CHANGE_USER = "auth.change_user"
VIEW_ACCESS_ATTEMPT = "axes.view_accessattempt"
DELETE_ACCESS_ATTEMPT = "axes.delete_accessattempt"

_VIEW = [VIEW_TEAM_HISTORY]
_SUBMIT = [*_VIEW, SUBMIT_JOBS]
_REVIEW = [*_VIEW, REVIEW_TAKES]
_ADMINISTER = [
    *_SUBMIT,
    REVIEW_TAKES,
    RETRY_ANY_JOB,
    MANAGE_API_KEY,
    MANAGE_MEMBERS,
    VIEW_USAGE,
    # What a team admin needs in Django admin (with "staff status") to look after jobs and members.
    VIEW_SUBMISSION,
    CHANGE_SUBMISSION,
    VIEW_BATCH,
    VIEW_PROBLEM,
    DELETE_PROBLEM,
    VIEW_USER,
    ADD_USER,
    CHANGE_USER,
    # Added by migration 0010: the activity trail, and unlocking accounts locked out by failed logins.
    VIEW_ACTIVITY,
    VIEW_ACCESS_ATTEMPT,
    DELETE_ACCESS_ATTEMPT,
    # Added by migration 0017: the mail outbox in admin (its state and last error).
    VIEW_OUTGOING_EMAIL,
]

PERMISSIONS = {VIEWER: _VIEW, SUBMITTER: _SUBMIT, REVIEWER: _REVIEW, TEAM_ADMIN: _ADMINISTER}


def assign(user: Any, role: str) -> None:
    """Give a user a role, making the role first if it is missing (a flushed test database, say)."""
    from django.contrib.auth.models import Group, Permission

    group, created = Group.objects.get_or_create(name=role)
    if created or not group.permissions.exists():
        wanted = [name.split(".") for name in PERMISSIONS[role]]
        group.permissions.set(
            Permission.objects.get(content_type__app_label=app_label, codename=codename) for app_label, codename in wanted
        )
    user.groups.add(group)
    for cache in ("_perm_cache", "_user_perm_cache", "_group_perm_cache"):
        user.__dict__.pop(cache, None)
