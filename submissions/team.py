"""Team admins look after members: their role and their optional monthly job limit."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group
from django.db import transaction

from submissions import roles
from submissions.models import MonthlyLimit


def role_of(user: Any) -> str:
    names = {group.name for group in user.groups.all()}
    return next((role for role in (roles.TEAM_ADMIN, roles.SUBMITTER, roles.VIEWER) if role in names), "")


def update_member(*, member: Any, role: str, jobs_per_month: int | None) -> None:
    """Give `member` exactly one role ("" for none) and set or remove their monthly limit."""
    with transaction.atomic():
        member.groups.remove(*Group.objects.filter(name__in=roles.PERMISSIONS))
        if role:
            roles.assign(member, role)
        if jobs_per_month is None:
            MonthlyLimit.objects.filter(user=member).delete()
        else:
            MonthlyLimit.objects.update_or_create(user=member, defaults={"jobs_per_month": jobs_per_month})
