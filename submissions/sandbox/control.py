"""/_sandbox/...: the sandbox's remote control (state, faults, reset, clock, settings, jobs, outage), for
demos and for tests that run the sandbox in another process. No auth: it only ever listens on loopback."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import Any, Protocol

from .contract import NOT_FOUND, check_reference_id, json_object
from .faults import Faults
from .outage import outage_seconds
from .routing import ApiError, Request, Response, RouteTable, error_response, json_response, route
from .store import DEMO_TOKEN


class Controlled(Protocol):
    """The sandbox as its remote control sees it (SandboxServer is one; see there for what each does)."""

    job_seconds: float
    rate_limit_per_minute: int
    output_bytes: int

    @property
    def faults(self) -> Faults: ...

    @property
    def clock_offset(self) -> float: ...

    def state(self) -> dict[str, Any]: ...

    def set_faults(self, changes: Mapping[str, Any]) -> dict[str, Any]: ...

    def reset(self) -> None: ...

    def advance(self, seconds: float) -> None: ...

    def create_job(
        self,
        *,
        video_url: str,
        audio_url: str,
        reference_id: str | None = None,
        token: str = DEMO_TOKEN,
        disable_active_speaker_detection: bool = False,
    ) -> dict[str, Any]: ...

    def set_status(self, job_id: str, status: str, *, error_message: str | None = None) -> None: ...

    def go_down(self, *, seconds: float | None = None) -> None: ...

Action = Callable[[Request], Any]  # returns the JSON answer; ValueError/TypeError -> 400, KeyError -> 404
OUTAGE_DELAY = 0.1  # seconds: time for the answer to go out before the socket closes
PREFIX = "/_sandbox/"
MAX_OUTPUT_BYTES = 512 * 1024 * 1024  # outputs are held in memory: a typo must not take the machine's


class ControlArea:
    def __init__(self, sandbox: Controlled) -> None:
        self._sandbox = sandbox
        self._routes: RouteTable[Action] = RouteTable(
            [
                route("GET", r"/_sandbox/state", lambda request: sandbox.state()),
                # Reading the knobs back is a convenience: the banner documents this path as POST, and a 405 names only that.
                route("GET", r"/_sandbox/faults", lambda request: asdict(sandbox.faults), in_allow_header=False),
                route("POST", r"/_sandbox/faults", self._with_payload(sandbox.set_faults)),
                route("POST", r"/_sandbox/reset", self._with_payload(self._reset)),
                route("POST", r"/_sandbox/advance", self._with_payload(self._advance)),
                route("POST", r"/_sandbox/config", self._with_payload(self._configure)),
                route("POST", r"/_sandbox/jobs", self._with_payload(self._create_job)),
                route("POST", r"/_sandbox/status", self._with_payload(self._set_status)),
                route("POST", r"/_sandbox/outage", self._with_payload(self._go_down)),
            ]
        )

    def owns(self, path: str) -> bool:
        return path.startswith(PREFIX)

    def answering(self, status: int) -> None:
        pass

    def respond(self, request: Request) -> Response:
        try:
            action = self._routes.find(request.method, request.path).handler_or_raise()
            try:
                return json_response(200, action(request))
            except KeyError:
                raise ApiError(404, NOT_FOUND) from None
            except (ValueError, TypeError) as error:
                raise ApiError(400, str(error)) from None
        except ApiError as error:
            return error_response(error)

    @staticmethod
    def _with_payload(action: Callable[[dict[str, Any]], Any]) -> Action:
        """The action, given the request's JSON object (an empty body is {})."""

        def run(request: Request) -> Any:
            return action(_payload(request.read_body()))

        return run

    def _reset(self, payload: dict[str, Any]) -> dict[str, Any]:
        self._sandbox.reset()
        return {"status": "ok"}

    def _advance(self, payload: dict[str, Any]) -> dict[str, Any]:
        seconds = payload.get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            raise ValueError("seconds must be a number")
        self._sandbox.advance(float(seconds))
        return {"status": "ok", "clock_offset_seconds": self._sandbox.clock_offset}

    def _configure(self, payload: dict[str, Any]) -> dict[str, Any]:
        sandbox = self._sandbox
        unknown = set(payload) - {"job_seconds", "rate_limit_per_minute", "output_bytes"}
        if unknown:
            raise ValueError(f"unknown config field: {sorted(unknown)[0]}")
        for key, value in payload.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{key} must be a non-negative number")
        if "job_seconds" in payload:
            sandbox.job_seconds = float(payload["job_seconds"])
        if "rate_limit_per_minute" in payload:
            sandbox.rate_limit_per_minute = int(payload["rate_limit_per_minute"])
        if "output_bytes" in payload:
            sandbox.output_bytes = min(int(payload["output_bytes"]), MAX_OUTPUT_BYTES)
        return {
            "job_seconds": sandbox.job_seconds,
            "rate_limit_per_minute": sandbox.rate_limit_per_minute,
            "output_bytes": sandbox.output_bytes,
        }

    def _create_job(self, payload: dict[str, Any]) -> dict[str, Any]:
        allowed = {"video_url", "audio_url", "reference_id", "token", "disable_active_speaker_detection"}
        unknown = set(payload) - allowed
        if unknown:
            raise ValueError(f"unknown job field: {sorted(unknown)[0]}")
        video, audio = payload.get("video_url"), payload.get("audio_url")
        if not isinstance(video, str) or not isinstance(audio, str):
            raise ValueError("video_url and audio_url must be strings")
        return self._sandbox.create_job(
            video_url=video,
            audio_url=audio,
            reference_id=check_reference_id(payload.get("reference_id")),
            token=str(payload.get("token", DEMO_TOKEN)),
            disable_active_speaker_detection=bool(payload.get("disable_active_speaker_detection", False)),
        )

    def _set_status(self, payload: dict[str, Any]) -> dict[str, Any]:
        job_id, status = payload.get("id"), payload.get("status")
        if not isinstance(job_id, str) or not isinstance(status, str) or not status:
            raise ValueError("id and status must be strings")
        self._sandbox.set_status(job_id, status, error_message=payload.get("error_message"))
        return {"status": "ok"}

    def _go_down(self, payload: dict[str, Any]) -> dict[str, Any]:
        seconds = outage_seconds(payload)
        # After this answer has gone out: the request that asks must not be refused itself.
        threading.Timer(OUTAGE_DELAY, self._sandbox.go_down, kwargs={"seconds": seconds}).start()
        return {"status": "ok", "down_for_seconds": seconds}


def _payload(body: bytes) -> dict[str, Any]:
    return json_object(body) if body.strip() else {}
