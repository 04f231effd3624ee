"""Factories for the suite: members of each role, and submissions. Every test that needs a person gets one
from here (or from the `cast` fixture), so what a role is, is written once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model

from submissions import roles
from submissions.core.reference_ids import new_reference_id
from submissions.jobs.fingerprints import fingerprint_of
from submissions.models import Submission

PASSWORD = "dubbing-all-day"

# The cast's parts: role (None: on no team), and the account flags.
PARTS: dict[str, tuple[str | None, dict[str, bool]]] = {
    "viewer": (roles.VIEWER, {}),
    "submitter": (roles.SUBMITTER, {}),
    "reviewer": (roles.REVIEWER, {}),
    "team_admin": (roles.TEAM_ADMIN, {}),
    "staff_team_admin": (roles.TEAM_ADMIN, {"is_staff": True}),
    "superuser": (None, {"is_staff": True, "is_superuser": True}),
    "no_role": (None, {}),
}


def make_member(username: str, *, role: str | None = None, password: str = PASSWORD, **flags: Any) -> Any:
    """A user with a password and, if given, one of the roles."""
    user = get_user_model().objects.create_user(username=username, password=password, **flags)
    if role is not None:
        roles.assign(user, role)
    return user


def make_part(part: str, *, username: str | None = None, password: str = PASSWORD) -> Any:
    """One member of the cast by part name (viewer, submitter, team_admin, ...)."""
    role, flags = PARTS[part]
    return make_member(username or part.replace("_", "-"), role=role, password=password, **flags)


@dataclass
class Cast:
    """One member per role and account kind, made on demand (a test only pays for the people it uses)."""

    made: dict[str, Any]

    def __getattr__(self, part: str) -> Any:
        if part.startswith("_") or part not in PARTS:
            raise AttributeError(part)
        if part not in self.made:
            self.made[part] = make_part(part)
        return self.made[part]


def make_submission(user: Any, **fields: Any) -> Submission:
    """A saved submission with plausible inputs; any field can be overridden. Its inputs fingerprint is
    computed as the services compute it (unless given), so the duplicate guard finds it."""
    defaults = {
        "video_url": "https://cdn.example.com/episode-1.mp4",
        "audio_url": "https://cdn.example.com/episode-1-de.wav",
        # As DubDash makes them when nobody chooses one (a chosen id is looked up before its first send).
        "reference_id": new_reference_id(),
    }
    chosen = {**defaults, **fields}
    chosen.setdefault("inputs_fingerprint", fingerprint_of(chosen))
    if "created_at" in chosen:  # a job made in the past counted then, as the services save it
        chosen.setdefault("counted_at", chosen["created_at"])
    return Submission.objects.create(created_by=user, **chosen)
