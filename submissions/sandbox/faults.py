"""Faults on purpose: the knobs tests and demos turn (`Faults`), the dice that apply them to /api/v1
requests, and the answers a faulty provider or the proxy in front of it gives."""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from . import bad_replies
from .contract import INTERNAL_ERROR, INVALID_BODY, INVALID_TOKEN, RATE_LIMIT_EXCEEDED, TOKEN_LIMIT_REACHED
from .routing import Response, json_response

SCRIPT_FAULTS = (
    "pass",  # this request is served normally: lets a script aim at a later request
    "400",
    "401",
    "412",
    "500",
    "429",
    "502-html",
    "drop",
    "drop-after-create",
    "timeout",
    "not-json",
    "wrong-shape",
)
RANDOM_429 = "429-random"  # what rate_429 rolls: a shorter Retry-After than the scripted "429"

NGINX_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


@dataclass
class Faults:
    """Knobs for tests; every default means "off". Assign fields directly."""

    latency: float = 0.0
    latency_jitter: float = 0.0
    rate_500: float = 0.0
    rate_429: float = 0.0
    rate_drop_after_create: float = 0.0
    script: list[str] = field(default_factory=list)
    hang_seconds: float = 5.0
    # {job id, or "*" for every job: a kind of bad_replies.KINDS}: what GET and the list say about it.
    bad_replies: dict[str, str] = field(default_factory=dict)
    # {job id, or "*" for every job: a kind of OUTPUT_FAULTS}: what /files/output/<id>.mp4 answers.
    outputs: dict[str, str] = field(default_factory=dict)


# What a finished job's output link may do instead of serving the video, as CDNs in front of real providers do.
OUTPUT_FAULTS = (
    "expired",  # 403 with an S3-style AccessDenied body: a signed link past its expiry
    "gone",  # 404: the provider deleted the output
    "not-mp4",  # 200 with an HTML page (a login or error page in place of the video)
    "500",  # a passing failure of the file server: trying again helps
    "truncated",  # the connection closes half way through the body
    "trickle",  # the video arrives a byte every 0.2 s: a server too slow for the copy's time limit
)


def check_output_faults(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ValueError("outputs must map job ids (or \"*\") to kinds")
    unknown = [kind for kind in value.values() if kind not in OUTPUT_FAULTS]
    if unknown:
        raise ValueError(f"unknown output fault: {unknown[0]}")
    return dict(value)


def merge_faults(current: Faults, changes: Mapping[str, Any]) -> Faults:
    """Return a copy of `current` with `changes` applied; ValueError on anything odd.

    Used by the control endpoint, where the input comes from another process.
    """
    known = {f.name for f in fields(Faults)}
    merged = asdict(current)
    for key, value in changes.items():
        if key not in known:
            raise ValueError(f"unknown fault field: {key}")
        if key == "script":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError("script must be a list of strings")
            unknown = [v for v in value if v not in SCRIPT_FAULTS]
            if unknown:
                raise ValueError(f"unknown script fault: {unknown[0]}")
            merged[key] = list(value)
            continue
        if key == "bad_replies":
            merged[key] = bad_replies.check(value)
            continue
        if key == "outputs":
            merged[key] = check_output_faults(value)
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"{key} must be a non-negative number")
        if key.startswith("rate_") and value > 1:
            raise ValueError(f"{key} must be between 0 and 1")
        merged[key] = float(value)
    return Faults(**merged)


class FaultDice:
    """Decides, request by request, what the knobs ask for. One seeded generator for latency and faults
    alike, so that a seed replays the same run."""

    def __init__(self, seed: int | None = None) -> None:
        self._seed = seed
        self._lock = threading.Lock()
        self._rng = random.Random(seed)  # noqa: S311 - simulated latency and faults, not security

    def reseed(self) -> None:
        with self._lock:
            self._rng = random.Random(self._seed)  # noqa: S311 - simulated latency and faults, not security

    def latency(self, faults: Faults) -> float:
        """Seconds to wait before answering one /api request."""
        with self._lock:
            jitter = self._rng.uniform(0, faults.latency_jitter) if faults.latency_jitter > 0 else 0.0
            return max(0.0, faults.latency) + jitter

    def next_fault(self, faults: Faults, *, generation: bool) -> str | None:
        """The fault for one /api/v1 request: the script first (used up as it goes), then the dice."""
        with self._lock:
            if faults.script:
                scripted = faults.script.pop(0)
                return None if scripted == "pass" else scripted
            if faults.rate_500 > 0 and self._rng.random() < faults.rate_500:
                return "500"
            if not generation:
                return None
            if faults.rate_429 > 0 and self._rng.random() < faults.rate_429:
                return RANDOM_429
            if faults.rate_drop_after_create > 0 and self._rng.random() < faults.rate_drop_after_create:
                return "drop-after-create"
            return None


def fault_response(fault: str) -> Response:
    """The answer a fault gives in place of the real one (faults that hang up or stall have none)."""
    if fault == "400":
        return json_response(400, {"error": INVALID_BODY})
    if fault == "401":
        return json_response(401, {"error": INVALID_TOKEN})
    if fault == "412":
        return json_response(412, {"error": TOKEN_LIMIT_REACHED})
    if fault == "500":
        return json_response(500, {"error": INTERNAL_ERROR})
    if fault == "429":
        return json_response(429, {"error": RATE_LIMIT_EXCEEDED}, {"Retry-After": "2"})
    if fault == RANDOM_429:
        return json_response(429, {"error": RATE_LIMIT_EXCEEDED}, {"Retry-After": "1"})
    if fault == "502-html":
        return Response(502, NGINX_502, "text/html")
    if fault == "not-json":
        return Response(200, b"OK", "text/plain")
    if fault == "wrong-shape":
        return json_response(200, {"unexpected": True})
    raise AssertionError(f"not a response fault: {fault}")
