"""The one factory that joins the deployment's key and settings to a Chamelaion client.

Read at every call (one small query), so a key set or rotated in any process is used at once, without a
restart: the key stored in DubDash, else CHAMELAION_API_KEY with the configured base URL; with neither,
the local sandbox."""

from __future__ import annotations

from django.conf import settings

from submissions.apikey import keys
from submissions.chamelaion.client import ChamelaionClient, KeyUnusableClient

# The token the sandbox accepts as a working key (submissions.sandbox.DEMO_TOKEN; a test keeps them equal).
# Written here, not imported: web processes must not load the simulator.
SANDBOX_TOKEN = "sandbox-demo-token"  # noqa: S105 - the sandbox's public demo token, not a secret


def is_sandbox_mode() -> bool:
    """No key anywhere: neither stored in DubDash nor in CHAMELAION_API_KEY. One small query."""
    return keys.active_key_source() == "sandbox"


def sandbox_sample_urls() -> dict[str, str]:
    """In sandbox mode, inputs that work: the sandbox serves these files itself."""
    if not is_sandbox_mode():
        return {}
    root = settings.CHAMELAION_SANDBOX_URL.removesuffix("/api")
    return {"video_url": f"{root}/files/sample-video.mp4", "audio_url": f"{root}/files/sample-audio.wav"}


def get_client() -> ChamelaionClient:
    active = keys.active_key()
    timeouts = {
        "connect_timeout": settings.CHAMELAION_CONNECT_TIMEOUT,
        "read_timeout": settings.CHAMELAION_READ_TIMEOUT,
    }
    if active.source == "sandbox":
        return ChamelaionClient(base_url=settings.CHAMELAION_SANDBOX_URL, api_key=SANDBOX_TOKEN, **timeouts)
    if active.problem:
        return KeyUnusableClient(base_url=settings.CHAMELAION_BASE_URL, problem=active.problem, **timeouts)
    return ChamelaionClient(base_url=settings.CHAMELAION_BASE_URL, api_key=active.key, **timeouts)


def get_download_client() -> ChamelaionClient:
    """For fetching finished outputs: their links are signed by themselves, so no key is needed (nor sent),
    and a copy's own timeouts apply, not the API's."""
    return ChamelaionClient(
        base_url=settings.CHAMELAION_BASE_URL,
        api_key="",
        connect_timeout=settings.OUTPUT_COPY_CONNECT_TIMEOUT,
        read_timeout=settings.OUTPUT_COPY_READ_TIMEOUT,
    )
