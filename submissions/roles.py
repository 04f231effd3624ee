"""The three roles of a DubDash team, as Django groups (made by migration 0005, assignable in admin)."""

VIEWER = "Viewer"
SUBMITTER = "Submitter"
TEAM_ADMIN = "Team admin"

_VIEW = ["submissions.view_team_history"]
_SUBMIT = _VIEW + ["submissions.submit_jobs"]
_ADMINISTER = _SUBMIT + [
    "submissions.retry_any_job",
    "submissions.manage_api_key",
    "submissions.manage_members",
    "submissions.view_usage",
    # What a team admin needs in Django admin (with "staff status") to look after jobs and members.
    "submissions.view_submission",
    "submissions.change_submission",
    "submissions.view_batch",
    "submissions.view_problem",
    "submissions.delete_problem",
    "auth.view_user",
    "auth.add_user",
    "auth.change_user",
    # Added by migration 0010: the activity trail, and unlocking accounts locked out by failed logins.
    "submissions.view_activity",
    "axes.view_accessattempt",
    "axes.delete_accessattempt",
]

PERMISSIONS = {VIEWER: _VIEW, SUBMITTER: _SUBMIT, TEAM_ADMIN: _ADMINISTER}


def assign(user, role: str) -> None:
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
