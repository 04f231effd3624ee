"""Team admins look after members: their role and their optional monthly limits (jobs, minutes of output).

Who may change whom is decided here, once, for the Members page and Django admin alike: only a superuser
changes a superuser, grants or removes superuser or staff status, or gives anything beyond the DubDash roles.
Anyone else may change only people who hold nothing they do not hold themselves, and may give only the
roles that grant nothing they do not hold. Whether someone may manage members at all is each page's own
permission check (the Members page's, admin's "change user"); these functions answer for whom and what."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.db.models import Q, QuerySet

from submissions import roles
from submissions.models import MonthlyLimit


def role_of(user: Any) -> str:
    names = {group.name for group in user.groups.all()}
    return next((role for role in (roles.TEAM_ADMIN, roles.SUBMITTER, roles.VIEWER) if role in names), "")


def active_members() -> list[Any]:
    """Everyone the Members page lists, with their limit and roles read in the same few queries."""
    return list(
        get_user_model()
        .objects.filter(is_active=True)
        .select_related("monthly_limit")
        .prefetch_related("groups")
        .order_by("username")
    )


def held_permissions(*, users: Iterable[Any]) -> dict[int, set[str]]:
    """Each user's permissions ("app_label.codename"), their own and their groups', in two queries.

    Read from the tables rather than has_perm(): an inactive user has no permissions there, yet would have
    them all back the moment someone ticks "active"."""
    held: dict[int, set[str]] = {user.pk: set() for user in users}
    own = Permission.objects.filter(user__in=list(held)).values_list("user", "content_type__app_label", "codename")
    grouped = Permission.objects.filter(group__user__in=list(held)).values_list(
        "group__user", "content_type__app_label", "codename"
    )
    for rows in (own, grouped):
        for pk, app_label, codename in rows:
            held[pk].add(f"{app_label}.{codename}")
    return held


def changeable_user_ids(*, actor: Any, targets: Iterable[Any]) -> set[int]:
    """The pks among `targets` whom `actor` may change in any way: details, password, roles, limit, deletion."""
    targets = list(targets)
    if not actor.is_active:
        return set()
    if actor.is_superuser:
        return {target.pk for target in targets}
    candidates = [
        target
        for target in targets
        # Staff status is an admin login: a non-staff actor setting a staff user's password or role would get admin.
        if not target.is_superuser and (actor.is_staff or not target.is_staff)
    ]
    mine = actor.get_all_permissions()
    return {pk for pk, theirs in held_permissions(users=candidates).items() if theirs <= mine}


def can_change_user(*, actor: Any, target: Any) -> bool:
    return target.pk in changeable_user_ids(actor=actor, targets=[target])


def assignable_roles(*, actor: Any) -> list[str]:
    """The DubDash roles `actor` may give or take away: those granting nothing the actor does not hold."""
    if actor.is_superuser:
        return list(roles.PERMISSIONS)
    if not actor.is_active:
        return []
    # A role grants what roles.py lists (roles.assign fills an empty group from it) and whatever a superuser
    # has since added to its group.
    reach = {role: set(permissions) for role, permissions in roles.PERMISSIONS.items()}
    for role, app_label, codename in Permission.objects.filter(group__name__in=list(reach)).values_list(
        "group__name", "content_type__app_label", "codename"
    ):
        reach[role].add(f"{app_label}.{codename}")
    mine = actor.get_all_permissions()
    return [role for role, grants in reach.items() if grants <= mine]


def assignable_groups(*, actor: Any) -> QuerySet[Group]:
    if actor.is_superuser:
        return Group.objects.all()
    return Group.objects.filter(name__in=assignable_roles(actor=actor))


def grantable_permissions(*, actor: Any) -> QuerySet[Permission]:
    """The permissions `actor` may put in a group: a superuser any, anyone else only those they hold."""
    if actor.is_superuser:
        return Permission.objects.all()
    if not actor.is_active:
        return Permission.objects.none()
    own = Permission.objects.filter(user=actor).values("pk")
    through_groups = Permission.objects.filter(group__user=actor).values("pk")
    return Permission.objects.filter(Q(pk__in=own) | Q(pk__in=through_groups))


class MemberOutOfReach(Exception):
    """`actor` may not change `member` (or not in the way asked): the page answers 403."""

    def __init__(self, *, actor: Any, member: Any):
        super().__init__(f"{actor.get_username()} may not change the role of {member.get_username()}.")


def ensure_can_change(*, actor: Any, member: Any) -> None:
    """MemberOutOfReach unless `actor` may change `member` at all."""
    if not can_change_user(actor=actor, target=member):
        raise MemberOutOfReach(actor=actor, member=member)


def update_member(
    *, actor: Any, member: Any, role: str, jobs_per_month: int | None, minutes_per_month: int | None
) -> None:
    """Give `member` exactly one role ("" for none) and set their monthly limits (None: no limit of that
    kind; neither: no limit row at all). MemberOutOfReach, and nothing changes, unless `actor` may change
    `member` and give and take away the roles involved."""
    ensure_can_change(actor=actor, member=member)
    allowed = set(assignable_roles(actor=actor))
    current = {group.name for group in member.groups.all()} & set(roles.PERMISSIONS)
    if (role and role not in allowed) or not current <= allowed:
        raise MemberOutOfReach(actor=actor, member=member)
    with transaction.atomic():
        member.groups.remove(*Group.objects.filter(name__in=roles.PERMISSIONS))
        if role:
            roles.assign(member, role)
        if jobs_per_month is None and minutes_per_month is None:
            MonthlyLimit.objects.filter(user=member).delete()
        else:
            MonthlyLimit.objects.update_or_create(
                user=member, defaults={"jobs_per_month": jobs_per_month, "minutes_per_month": minutes_per_month}
            )


def forget_empty_limit(*, member: Any) -> None:
    """A limit row with neither cap limits nothing: remove it, as the Members page does, so the member is
    again one of those the auth backend's load tells are never limited (no locked read on each submit)."""
    MonthlyLimit.objects.filter(user=member, jobs_per_month__isnull=True, minutes_per_month__isnull=True).delete()
