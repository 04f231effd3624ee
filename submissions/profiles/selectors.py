"""Reads of a member's own settings: their time zone, and whether they want a kind of e-mail."""

from __future__ import annotations

import zoneinfo
from typing import Any

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist

from submissions.profiles.models import Profile

# The kinds of e-mail a member chooses on their profile page: each is a Profile field.
MAIL_KINDS = (
    "mail_batch_finished",
    "mail_job_failed",
    "mail_changes_requested",
    "mail_ready_for_review",
    "mail_sending_paused",
)


def profile_of(user: Any) -> Profile | None:
    try:
        return user.profile
    except (ObjectDoesNotExist, AttributeError):  # never saved one: the defaults
        return None


def zone_name_of(user: Any) -> str:
    """The member's time zone name; the deployment's TIME_ZONE when they chose none, or one no longer known."""
    profile = profile_of(user)
    name = profile.time_zone if profile is not None else ""
    return name if name and name in available_zones() else settings.TIME_ZONE


def zone_of(user: Any) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(zone_name_of(user))


def wants_mail(user: Any, *, kind: str) -> bool:
    """Whether the member receives this kind of e-mail (one of MAIL_KINDS): yes unless they turned it off,
    and never without an address."""
    if kind not in MAIL_KINDS:
        raise ValueError(f"unknown kind of e-mail: {kind}")
    if not getattr(user, "email", "") or not user.is_active:
        return False
    profile = profile_of(user)
    return True if profile is None else bool(getattr(profile, kind))


def available_zones() -> frozenset[str]:
    return _ZONES


_ZONES = frozenset(zoneinfo.available_timezones())
