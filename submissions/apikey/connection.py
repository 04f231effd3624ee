"""What the settings page says about the key, and its "Test connection" button."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings

from submissions import chamelaion
from submissions.apikey import clients
from submissions.apikey.keys import (
    MASK,
    KeySource,
    active_key,
    encryption_configured,
    mask,
    scrub,
)
from submissions.core import problems
from submissions.models import ApiCredential

# --- What the settings page shows ---------------------------------------------------------------------


@dataclass(frozen=True)
class KeyStatus:
    source: KeySource
    masked: str  # "•••• 3f9a" for the key in use; blank in sandbox mode
    problem: str  # why the stored key cannot be used
    stored: ApiCredential | None
    environment_masked: str  # CHAMELAION_API_KEY, masked: what removing the stored key falls back to
    can_store: bool
    base_url: str  # where the key in use is sent


def key_status() -> KeyStatus:
    stored = ApiCredential.objects.select_related("updated_by").filter(pk=ApiCredential.SINGLETON_PK).first()
    active = active_key()
    environment = settings.CHAMELAION_API_KEY
    if active.source == "stored":
        masked = f"{MASK} {stored.last_four}" if stored else mask(active.key)
    else:
        masked = mask(active.key) if active.key else ""
    return KeyStatus(
        source=active.source,
        masked=masked,
        problem=active.problem,
        stored=stored,
        environment_masked=mask(environment) if environment else "",
        can_store=encryption_configured(),
        base_url=settings.CHAMELAION_SANDBOX_URL if active.source == "sandbox" else settings.CHAMELAION_BASE_URL,
    )


# --- Test connection ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectionCheck:
    ok: bool
    message: str


def check_connection() -> ConnectionCheck:
    """Ask /health (no key needed) and then /v1/users/me (the key) with the key in use. Says which step
    failed and exactly how; on success, names the token. A success also clears a "key rejected" banner:
    an accepted authenticated call is the proof it is fixed."""

    active = active_key()
    if active.problem:
        return ConnectionCheck(False, active.problem)
    client = clients.get_client()
    try:
        healthy = client.health()
    except chamelaion.ChamelaionError as error:
        return ConnectionCheck(False, f"The health check ({client.base_url}/health) failed. {_explain(error)}")
    if not healthy:
        return ConnectionCheck(
            False,
            f"{client.base_url}/health answered, but not with status “ok”: the service is down, or this is not "
            "the Chamelaion API.",
        )
    try:
        name = client.me()
    except chamelaion.ChamelaionError as error:
        return ConnectionCheck(
            False, f"Chamelaion is reachable, but the key check (/v1/users/me) failed. {_explain(error)}"
        )
    problems.clear_problems()
    return ConnectionCheck(True, f"Connected as “{scrub(name)}”.")


def _explain(error: Any) -> str:
    """The failure's plain-words sentence, then exactly what came back: the upstream message with its HTTP
    status, or what went wrong on the wire."""
    detail = scrub(error.detail) if error.detail else "nothing more"
    if error.status_code:
        return f"{error.user_message} Chamelaion said: “{detail}” (HTTP {error.status_code})."
    return f"{error.user_message} What went wrong: {detail}."
