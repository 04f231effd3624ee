"""A faithful local simulator ("the sandbox") of the Chamelaion lip-sync API.

No machine here reaches the real API, so demos and integration tests talk to this
server over real HTTP on loopback. It implements the whole contract in
``shared/chamelaion-api.md`` (same paths under ``/api``, same status codes, same
error messages) plus:

* ``/files/...``   sample media and the "finished" output videos (no auth, no faults);
* ``/_sandbox/...`` control endpoints (state, faults, reset, clock) for demos and for
  tests that run the sandbox in another process.

Pure standard library on purpose: it must run without Django and without any
third-party package. Job progression runs on a *simulated* clock (real time plus
whatever ``advance()`` added) so tests never sleep for a job to finish; the rate
limit runs on real monotonic time, as the real provider's does.
"""

from __future__ import annotations

import argparse
import email.message
import email.parser
import email.utils
import ipaddress
import json
import math
import random
import re
import signal
import socket
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

try:
    from . import bad_replies
    from .outage import OutageMixin, outage_seconds
except ImportError:  # run as a plain script (python submissions/sandbox/server.py): its folder is on sys.path
    import bad_replies  # type: ignore[no-redef]
    from outage import OutageMixin, outage_seconds  # type: ignore[no-redef]

__all__ = [
    "DEMO_TOKEN",
    "QUOTA_USED_UP_TOKEN",
    "REVOKED_TOKEN",
    "Faults",
    "SandboxServer",
    "SCRIPT_FAULTS",
    "main",
]

DEMO_TOKEN = "sandbox-demo-token"
QUOTA_USED_UP_TOKEN = "sandbox-quota-used-up"
REVOKED_TOKEN = "sandbox-revoked-token"

DEMO_NAME = "DubDash sandbox demo"
QUOTA_USED_UP_NAME = "DubDash sandbox (quota used up)"
REVOKED_NAME = "DubDash sandbox (revoked)"

MEDIA_DIR = Path(__file__).resolve().parent / "media"

MAX_BODY_BYTES = 512 * 1024 * 1024
# An unread request body up to this size is drained so the keep-alive connection
# survives an early error answer; a bigger one makes us close the connection instead.
DRAIN_LIMIT = 1024 * 1024
MAX_REFERENCE_ID = 128
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
RECENT_PATHS = 200  # request paths kept, as received, for tests of what a client puts on the wire
RATE_WINDOW_SECONDS = 60.0
IDLE_CONNECTION_TIMEOUT = 300.0  # generous: clients keep pooled connections idle for a while
GENERIC_FAILURE = "lip sync failed"

GENERATE_PATH = "/api/v1/lipsync/generate"
GENERATE_MEDIA_PATH = "/api/v1/lipsync/generate-with-media"

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

NGINX_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


# --------------------------------------------------------------------------- faults


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


def _merge_faults(current: Faults, changes: Mapping[str, Any]) -> Faults:
    """Return a copy of *current* with *changes* applied; ValueError on anything odd.

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
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"{key} must be a non-negative number")
        if key.startswith("rate_") and value > 1:
            raise ValueError(f"{key} must be between 0 and 1")
        merged[key] = float(value)
    return Faults(**merged)


# --------------------------------------------------------------------------- errors


class ApiError(Exception):
    """An answer of the form {"error": message}, raised from deep inside a handler."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def _bad_body() -> ApiError:
    return ApiError(400, "invalid request body")


class _DropConnection(Exception):
    """Close the connection without writing a single byte of response."""


# --------------------------------------------------------------------------- jobs


def _iso(ts: float) -> str:
    moment = datetime.fromtimestamp(ts, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass
class _Account:
    name: str
    quota_used_up: bool = False
    revoked: bool = False


@dataclass
class _JobSpec:
    """A validated generation request, before it becomes a job."""

    video_url: str
    audio_url: str
    reference_id: str | None = None
    disable_active_speaker_detection: bool = False


@dataclass
class _Job:
    id: str
    account: str  # the token; never serialized, never logged
    spec: _JobSpec
    created_at: float  # simulated epoch seconds
    duration: float  # job_seconds when the job was created
    forced_status: str | None = None
    forced_at: float | None = None
    forced_error: str | None = None

    def failure_reason(self) -> str | None:
        if "fail" in self.spec.video_url.lower():
            return "video URL is not accessible"
        if "fail" in self.spec.audio_url.lower():
            return "audio URL is not accessible"
        return None

    def timeline(self, now: float) -> tuple[str, float | None, float | None]:
        """(status, started_at, finished_at) as seen at simulated time *now*."""
        now = max(now, self.created_at)
        start = self.created_at + self.duration / 3
        end = self.created_at + self.duration
        if self.forced_status is None:
            if now >= end:
                return ("failed" if self.failure_reason() else "completed"), start, end
            if now >= start:
                return "processing", start, None
            return "queued", None, None
        # A forced status sticks; its timestamps never lie beyond the moment it was forced.
        status, forced_at = self.forced_status, self.forced_at or now
        if status == "queued":
            return status, None, None
        if status in ("completed", "failed"):
            return status, min(start, forced_at), min(end, forced_at)
        if status == "processing":
            return status, min(start, forced_at), None
        return status, (start if now >= start else None), None  # unknown: still in flight

    def render(self, now: float, root_url: str) -> dict[str, Any]:
        """The LipsyncRequest JSON object; keys that are not known yet are left out."""
        status, started, finished = self.timeline(now)
        data: dict[str, Any] = {"id": self.id, "created_at": _iso(self.created_at), "status": status}
        if self.spec.reference_id is not None:
            data["reference_id"] = self.spec.reference_id
        if started is not None:
            data["started_at"] = _iso(started)
        if finished is not None:
            data["finished_at"] = _iso(finished)
        if status == "completed":
            data["output_url"] = f"{root_url}/files/output/{self.id}.mp4"
        elif status == "failed":
            data["error_message"] = self.forced_error or self.failure_reason() or GENERIC_FAILURE
        return data


# --------------------------------------------------------------------------- request validation


def _media_type(content_type: str | None) -> tuple[str, email.message.Message]:
    """Lower-cased media type ("" when absent) and a Message for reading its parameters."""
    holder = email.message.Message()
    if not content_type:
        return "", holder
    holder["Content-Type"] = content_type
    return content_type.split(";", 1)[0].strip().lower(), holder


def _is_http_url(value: Any) -> bool:
    if not isinstance(value, str) or not value or any(ch.isspace() for ch in value):
        return False
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(host)


def _check_reference_id(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_REFERENCE_ID:
        raise _bad_body()
    return value


def parse_generate_json(content_type: str | None, body: bytes) -> _JobSpec:
    """Validate a POST /v1/lipsync/generate body exactly as the provider does."""
    if _media_type(content_type)[0] != "application/json":
        raise ApiError(400, "content-type must be application/json")
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise _bad_body() from None
    if not isinstance(payload, dict):
        raise _bad_body()
    inputs = payload.get("inputs")
    disable = payload.get("disable_active_speaker_detection")
    if not isinstance(inputs, list) or not isinstance(disable, (bool, type(None))):
        raise _bad_body()
    reference_id = _check_reference_id(payload.get("reference_id"))
    # Shape problems first (they would fail decoding upstream), then values.
    for item in inputs:
        if not isinstance(item, dict) or not isinstance(item.get("type", ""), str):
            raise _bad_body()
        if not _is_http_url(item.get("url")):
            raise _bad_body()
    if any(item.get("type") not in ("video", "audio") for item in inputs):
        raise ApiError(400, 'input type must be "video" or "audio"')
    videos = [item["url"] for item in inputs if item["type"] == "video"]
    audios = [item["url"] for item in inputs if item["type"] == "audio"]
    if len(videos) != 1:
        raise ApiError(400, "expected exactly one video input")
    if len(audios) != 1:
        raise ApiError(400, "expected exactly one audio input")
    return _JobSpec(videos[0], audios[0], reference_id, bool(disable))


@dataclass
class _Part:
    name: str | None
    filename: str | None
    content: bytes


def _parse_multipart(body: bytes, boundary: str) -> list[_Part]:
    """Split a multipart/form-data body; ValueError when it is not well formed."""
    delimiter = b"--" + boundary.encode("latin-1")
    sections = body.split(delimiter)
    if len(sections) < 3:  # preamble, at least one part, the closing "--"
        raise ValueError("no parts")
    parts: list[_Part] = []
    for section in sections[1:]:
        if section.startswith(b"--"):
            return parts
        if not section.startswith(b"\r\n"):
            raise ValueError("bad delimiter line")
        head, sep, content = section[2:].partition(b"\r\n\r\n")
        if not sep:
            raise ValueError("part without a header block")
        if content.endswith(b"\r\n"):
            content = content[:-2]
        headers = email.parser.BytesHeaderParser().parsebytes(head + b"\r\n\r\n")
        name = headers.get_param("name", header="content-disposition")
        name = email.utils.collapse_rfc2231_value(name) if name is not None else None
        parts.append(_Part(_text(name), _text(headers.get_filename()), content))
    raise ValueError("missing closing delimiter")


def _text(value: str | None) -> str | None:
    """Undo the header parser's surrogate escapes: raw UTF-8 names become real text."""
    if value is None:
        return None
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _is_mp4(data: bytes) -> bool:
    return len(data) >= 8 and data[4:8] == b"ftyp"


def _is_wav_or_mp3(data: bytes) -> bool:
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return True
    if data[:3] == b"ID3":
        return True
    return len(data) >= 2 and data[0] == 0xFF and (data[1] & 0xE0) == 0xE0


_GO_BOOLS = {"1": True, "t": True, "true": True, "0": False, "f": False, "false": False}


def _form_text(parts: list[_Part], name: str) -> str | None:
    for part in parts:
        if part.name == name and part.filename is None:
            try:
                return part.content.decode("utf-8")
            except UnicodeDecodeError:
                raise _bad_body() from None
    return None


def _form_file(parts: list[_Part], name: str) -> _Part | None:
    # Like Go's FormFile: a part without a filename is a plain field, not a file.
    return next((p for p in parts if p.name == name and p.filename), None)


def parse_generate_multipart(content_type: str | None, body: bytes) -> _JobSpec:
    """Validate a POST /v1/lipsync/generate-with-media body."""
    media_type, holder = _media_type(content_type)
    if media_type != "multipart/form-data":
        raise ApiError(400, "content-type must be multipart/form-data")
    boundary = holder.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise _bad_body()
    try:
        parts = _parse_multipart(body, boundary)
    except ValueError:
        raise _bad_body() from None
    video, audio = _form_file(parts, "video"), _form_file(parts, "audio")
    if video is None:
        raise ApiError(400, "missing video file")
    if audio is None:
        raise ApiError(400, "missing audio file")
    if not _is_mp4(video.content):
        raise ApiError(400, "video must be an MP4 file")
    if not _is_wav_or_mp3(audio.content):
        raise ApiError(400, "audio must be a WAV or MP3 file")
    flag = _form_text(parts, "disable_active_speaker_detection")
    if flag and flag.strip().lower() not in _GO_BOOLS:
        raise _bad_body()
    disable = _GO_BOOLS.get(flag.strip().lower(), False) if flag else False
    reference_id = _check_reference_id(_form_text(parts, "reference_id"))
    return _JobSpec(f"upload:{video.filename}", f"upload:{audio.filename}", reference_id, disable)


def _non_negative_int(query: dict[str, list[str]], key: str) -> int | None:
    raw = (query.get(key) or [""])[0].strip()
    if raw == "":
        return None
    if not raw.isdigit() or not raw.isascii():
        raise _bad_body()
    return int(raw)


# --------------------------------------------------------------------------- static media


@dataclass(frozen=True)
class _MediaFile:
    data: bytes
    content_type: str


def _load_media() -> dict[str, _MediaFile]:
    wanted = {
        "sample-video.mp4": ("sample.mp4", "video/mp4"),
        "sample-audio.wav": ("sample.wav", "audio/wav"),
        "sample-audio.mp3": ("sample.mp3", "audio/mpeg"),
    }
    files: dict[str, _MediaFile] = {}
    for public_name, (file_name, content_type) in wanted.items():
        path = MEDIA_DIR / file_name
        if path.is_file():
            files[public_name] = _MediaFile(path.read_bytes(), content_type)
    return files


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Inclusive (first, last) for a single "bytes=" range, None to send everything.

    Raises ApiError(416) for a well-formed but unsatisfiable range. Multi-range and
    malformed headers are ignored, which RFC 9110 allows.
    """
    if not header:
        return None
    match = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header)
    if not match or match.group(1) == match.group(2) == "":
        return None
    first_raw, last_raw = match.groups()
    unsatisfiable = ApiError(416, "range not satisfiable", {"Content-Range": f"bytes */{size}"})
    if first_raw == "":  # suffix range: the last N bytes
        length = int(last_raw)
        if length == 0 or size == 0:
            raise unsatisfiable
        return max(0, size - length), size - 1
    first = int(first_raw)
    last = int(last_raw) if last_raw else size - 1
    if first >= size:
        raise unsatisfiable
    if last < first:
        return None
    return first, min(last, size - 1)


# --------------------------------------------------------------------------- responses


@dataclass
class _Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> _Response:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return _Response(status, body, "application/json", headers or {})


def _error(error: ApiError) -> _Response:
    return _json(error.status, {"error": error.message}, error.headers)


def _fault_response(fault: str) -> _Response:
    if fault == "400":
        return _json(400, {"error": "invalid request body"})
    if fault == "401":
        return _json(401, {"error": "invalid token"})
    if fault == "412":
        return _json(412, {"error": "token limit reached"})
    if fault == "500":
        return _json(500, {"error": "internal error"})
    if fault == "429":
        return _json(429, {"error": "rate limit exceeded"}, {"Retry-After": "2"})
    if fault == "429-random":
        return _json(429, {"error": "rate limit exceeded"}, {"Retry-After": "1"})
    if fault == "502-html":
        return _Response(502, NGINX_502, "text/html")
    if fault == "not-json":
        return _Response(200, b"OK", "text/plain")
    if fault == "wrong-shape":
        return _json(200, {"unexpected": True})
    raise AssertionError(f"not a response fault: {fault}")


# --------------------------------------------------------------------------- the server


def _new_stats() -> dict[str, int]:
    names = ["requests", "health", "generate", "uploads", "get", "list", "users_me", "dropped", "faults"]
    codes = [200, 400, 401, 404, 405, 412, 413, 429, 500, 502]
    return dict.fromkeys(names + [f"status_{code}" for code in codes], 0)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SandboxServer(OutageMixin):
    """The simulator: a ThreadingHTTPServer plus the account/job store behind it."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        job_seconds: float = 30.0,
        rate_limit_per_minute: int = 60,
        seed: int | None = None,
        verbose: bool = False,
    ) -> None:
        if not _is_loopback(host):
            raise ValueError(f"the sandbox binds loopback addresses only, not {host!r}")
        self._lock = threading.Lock()
        self._initial_job_seconds = job_seconds
        self._initial_rate_limit = rate_limit_per_minute
        self._seed = seed
        self.verbose = verbose
        self.job_seconds = job_seconds
        self.rate_limit_per_minute = rate_limit_per_minute
        self.faults = Faults()
        self._rng = random.Random(seed)
        self._accounts: dict[str, _Account] = {
            DEMO_TOKEN: _Account(DEMO_NAME),
            QUOTA_USED_UP_TOKEN: _Account(QUOTA_USED_UP_NAME, quota_used_up=True),
            REVOKED_TOKEN: _Account(REVOKED_NAME, revoked=True),
        }
        self._jobs: dict[str, _Job] = {}  # insertion order == creation order
        # Bumped by reset(): a request still in flight from before (say, hanging on a "timeout" fault)
        # must not create its job in the next test's clean sandbox.
        self._epoch = 0
        self._rate_windows: dict[str, deque[float]] = {}
        self._stats = _new_stats()
        self._paths: deque[str] = deque(maxlen=RECENT_PATHS)
        self._clock_offset = 0.0
        # Wall clock anchored once, then driven by the monotonic clock: never jumps back.
        self._wall_anchor = time.time()
        self._mono_anchor = time.monotonic()
        self.media = _load_media()

        self._httpd = _HTTPServer(host, port, self)
        self.host = host
        self.port: int = self._httpd.server_address[1]
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()
        self._lifecycle = threading.Lock()

    # ----------------------------------------------------------------- URLs

    @property
    def root_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.root_url + "/api"

    @property
    def sample_video_url(self) -> str:
        return self.root_url + "/files/sample-video.mp4"

    @property
    def sample_audio_url(self) -> str:
        return self.root_url + "/files/sample-audio.wav"

    @property
    def sample_audio_mp3_url(self) -> str:
        return self.root_url + "/files/sample-audio.mp3"

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Serve in a background daemon thread; returns once the socket is listening."""
        with self._lifecycle:
            if self._stopped.is_set():
                raise RuntimeError("this sandbox has been stopped; make a new one")
            if self._thread is not None or self._httpd is None:
                return
            # The socket already listens (bound in __init__), so clients can connect now.
            self._serve_in_thread()

    def _serve_in_thread(self) -> None:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"sandbox:{self.port}",
            daemon=True,
        )
        self._thread.start()

    def _new_httpd(self) -> _HTTPServer:
        return _HTTPServer(self.host, self.port, self)

    def serve_forever(self) -> None:
        """Serve until stop() is called from elsewhere or a KeyboardInterrupt arrives."""
        self.start()
        try:
            while not self._stopped.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def stop(self) -> None:
        """Shut down, close the listening socket and every open connection. Idempotent."""
        with self._lifecycle:
            if self._stopped.is_set():
                return
            self._cancel_back_up_timer()
            if self._httpd is not None:  # None during an outage: nothing listens
                if self._thread is not None:
                    self._httpd.shutdown()
                    self._thread.join(timeout=5)
                self._httpd.close_connections()
                self._httpd.server_close()
            self._stopped.set()

    def __enter__(self) -> SandboxServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ----------------------------------------------------------------- test helpers

    def reset(self) -> None:
        """Forget jobs, rate-limit windows, faults, clock offset and stats; end an outage."""
        self.come_up()
        with self._lock:
            self._jobs.clear()
            self._epoch += 1
            self._rate_windows.clear()
            self._stats = _new_stats()
            self._paths.clear()
            self._clock_offset = 0.0
            self._rng = random.Random(self._seed)
            self.faults = Faults()
            self.job_seconds = self._initial_job_seconds
            self.rate_limit_per_minute = self._initial_rate_limit

    def advance(self, seconds: float) -> None:
        """Move the simulated clock (job progression only) forward."""
        if seconds < 0:
            raise ValueError("the simulated clock only moves forward")
        with self._lock:
            self._clock_offset += seconds

    def add_token(self, token: str, name: str, *, quota_used_up: bool = False) -> None:
        """Register another working token (its own account). Survives reset()."""
        if not token.strip():
            raise ValueError("token must not be blank")
        with self._lock:
            self._accounts[token] = _Account(name, quota_used_up=quota_used_up)

    def create_job(
        self,
        *,
        video_url: str,
        audio_url: str,
        reference_id: str | None = None,
        token: str = DEMO_TOKEN,
        disable_active_speaker_detection: bool = False,
    ) -> dict[str, Any]:
        """Create a job as if another tool had used that account (no quota/rate checks)."""
        if token not in self._accounts:
            raise ValueError("unknown token")
        spec = _JobSpec(video_url, audio_url, reference_id, disable_active_speaker_detection)
        with self._lock:
            job = self._store_job(token, spec)
            return job.render(self._now(), self.root_url)

    def set_status(self, job_id: str, status: str, *, error_message: str | None = None) -> None:
        """Force a job's status string (e.g. an unknown "rendering"); it sticks."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise KeyError(job_id)
            job.forced_status = status
            job.forced_at = self._now()
            job.forced_error = error_message

    def jobs(self, token: str = DEMO_TOKEN) -> list[dict[str, Any]]:
        """Every job of that account as LipsyncRequest dicts, oldest first."""
        with self._lock:
            now = self._now()
            return [j.render(now, self.root_url) for j in self._jobs.values() if j.account == token]

    def job_inputs(self, job_id: str) -> dict[str, Any]:
        """What a job was made from. The API never reports this; tests check what DubDash sent."""
        with self._lock:
            spec = self._jobs[job_id].spec
            return {
                "video_url": spec.video_url,
                "audio_url": spec.audio_url,
                "disable_active_speaker_detection": spec.disable_active_speaker_detection,
                "reference_id": spec.reference_id,
            }

    def record_path(self, path: str) -> None:
        with self._lock:
            self._paths.append(path)

    def request_paths(self) -> list[str]:
        """The paths of the latest /api requests exactly as they arrived (percent-encoding and dot segments
        untouched, query strings left out), oldest first."""
        with self._lock:
            return list(self._paths)

    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self._stats)

    def state(self) -> dict[str, Any]:
        """What GET /_sandbox/state shows: no tokens, account display names only."""
        with self._lock:
            now = self._now()
            by_status: dict[str, int] = {}
            by_account: dict[str, int] = {}
            for job in self._jobs.values():
                status = job.timeline(now)[0]
                by_status[status] = by_status.get(status, 0) + 1
                name = self._accounts[job.account].name
                by_account[name] = by_account.get(name, 0) + 1
            return {
                "stats": dict(self._stats),
                "jobs": {"total": len(self._jobs), "by_status": by_status, "by_account": by_account},
                "faults": asdict(self.faults),
                "job_seconds": self.job_seconds,
                "rate_limit_per_minute": self.rate_limit_per_minute,
                "clock_offset_seconds": self._clock_offset,
                "simulated_now": _iso(now),
            }

    # ----------------------------------------------------------------- internals (used by the handler)

    def _now(self) -> float:
        return self._wall_anchor + (time.monotonic() - self._mono_anchor) + self._clock_offset

    def _count(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._stats[key] = self._stats.get(key, 0) + 1

    def _store_job(self, token: str, spec: _JobSpec) -> _Job:
        """Caller holds the lock."""
        job = _Job(str(uuid.uuid4()), token, spec, self._now(), max(0.0, float(self.job_seconds)))
        self._jobs[job.id] = job
        return job

    def _authenticate(self, headers: Mapping[str, str]) -> str:
        """The account token of a request, or ApiError(401) with the contract's message."""
        api_key = headers.get("x-api-key")
        if api_key is not None:
            token = api_key.strip()
        else:
            authorization = headers.get("authorization")
            if authorization is None:
                raise ApiError(401, "missing authorization header")
            scheme, _, rest = authorization.strip().partition(" ")
            if scheme.lower() != "bearer":
                raise ApiError(401, "invalid authorization format")
            token = rest.strip()
        if not token:
            raise ApiError(401, "missing token")
        account = self._accounts.get(token)
        if account is None:
            raise ApiError(401, "invalid token")
        if account.revoked:
            raise ApiError(401, "unauthorized")
        return token

    def _check_quota(self, token: str) -> None:
        if self._accounts[token].quota_used_up:
            raise ApiError(412, "token limit reached")

    def _take_rate_slot(self, token: str) -> None:
        """Sliding 60 s window on real time; a refused request uses no slot."""
        limit = self.rate_limit_per_minute
        if limit <= 0:
            return
        now = time.monotonic()
        with self._lock:
            window = self._rate_windows.setdefault(token, deque())
            while window and window[0] <= now - RATE_WINDOW_SECONDS:
                window.popleft()
            if len(window) >= limit:
                oldest = window[len(window) - limit]
                retry_after = max(1, math.ceil(oldest + RATE_WINDOW_SECONDS - now))
                raise ApiError(429, "rate limit exceeded", {"Retry-After": str(retry_after)})
            window.append(now)

    def _create(self, token: str, spec: _JobSpec, *, upload: bool, epoch: int) -> _Job:
        with self._lock:
            if epoch != self._epoch:
                raise ApiError(500, "internal error")  # the sandbox was reset while this request waited
            job = self._store_job(token, spec)
            self._stats["generate"] += 1
            if upload:
                self._stats["uploads"] += 1
            return job

    def _find(self, token: str, key: str) -> dict[str, Any] | None:
        """By request id, else by reference_id (newest match wins), same account only."""
        with self._lock:
            job = self._jobs.get(key.lower())
            if job is None or job.account != token:
                matches = [
                    j for j in self._jobs.values() if j.account == token and j.spec.reference_id == key
                ]
                job = matches[-1] if matches else None
            return bad_replies.spoil(job.render(self._now(), self.root_url), self.faults.bad_replies) if job else None

    def _page(self, token: str, limit: int, offset: int, reference_id: str | None) -> dict[str, Any]:
        with self._lock:
            now = self._now()
            mine = [
                j
                for j in self._jobs.values()
                if j.account == token and (reference_id is None or j.spec.reference_id == reference_id)
            ]
            spoiled = self.faults.bad_replies
            data = [bad_replies.spoil(j.render(now, self.root_url), spoiled) for j in mine[offset : offset + limit]]
        return {"data": data, "pagination": {"limit": limit, "offset": offset, "total": len(mine)}}

    def _completed_output_exists(self, job_id: str) -> bool:
        with self._lock:
            job = self._jobs.get(job_id)
            return job is not None and job.timeline(self._now())[0] == "completed"

    def _latency(self) -> float:
        with self._lock:
            faults = self.faults
            jitter = self._rng.uniform(0, faults.latency_jitter) if faults.latency_jitter > 0 else 0.0
            return max(0.0, faults.latency) + jitter

    def _next_fault(self, generation: bool) -> str | None:
        """The fault for one /api/v1 request: the script first, then the dice."""
        with self._lock:
            faults = self.faults
            if faults.script:
                scripted = faults.script.pop(0)
                return None if scripted == "pass" else scripted
            if faults.rate_500 > 0 and self._rng.random() < faults.rate_500:
                return "500"
            if not generation:
                return None
            if faults.rate_429 > 0 and self._rng.random() < faults.rate_429:
                return "429-random"
            if faults.rate_drop_after_create > 0 and self._rng.random() < faults.rate_drop_after_create:
                return "drop-after-create"
            return None

    def _set_faults(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.faults = _merge_faults(self.faults, changes)
            return asdict(self.faults)

    def _log(self, line: str) -> None:
        if self.verbose:
            sys.stderr.write(f"[sandbox] {line}\n")
            sys.stderr.flush()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # idle keep-alive connections must not block shutdown
    request_queue_size = 128  # bursts of new connections from load tests

    def __init__(self, host: str, port: int, sandbox: SandboxServer) -> None:
        if ":" in host:
            self.address_family = socket.AF_INET6
        self.sandbox = sandbox
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__((host, port), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Wake every handler thread blocked on an idle keep-alive connection."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up are routine here (timeouts, drops); anything else is a
        # sandbox bug worth one line, never a traceback per request.
        error = sys.exc_info()[1]
        if not isinstance(error, OSError):
            sys.stderr.write(f"[sandbox] connection error: {error!r}\n")


# --------------------------------------------------------------------------- the request handler


_API_ROUTES: list[tuple[re.Pattern[str], str, str]] = [
    (re.compile(r"/api/health"), "GET", "health"),
    (re.compile(r"/api/v1/lipsync/generate"), "POST", "generate"),
    (re.compile(r"/api/v1/lipsync/generate-with-media"), "POST", "upload"),
    (re.compile(r"/api/v1/lipsync/requests"), "GET", "list"),
    (re.compile(r"/api/v1/lipsync/requests/([^/]+)"), "GET", "get"),
    (re.compile(r"/api/v1/users/me"), "GET", "users_me"),
]

_CONTROL_ROUTES: dict[str, str] = {
    "/_sandbox/state": "GET",
    "/_sandbox/faults": "POST",
    "/_sandbox/reset": "POST",
    "/_sandbox/advance": "POST",
    "/_sandbox/config": "POST",
    "/_sandbox/jobs": "POST",
    "/_sandbox/status": "POST",
    "/_sandbox/outage": "POST",
}


def _match_api(path: str) -> tuple[str | None, str | None, list[str]]:
    """(allowed method, endpoint name, path arguments), or Nones when no route matches."""
    for pattern, method, name in _API_ROUTES:
        found = pattern.fullmatch(path)
        if found:
            return method, name, [unquote(arg) for arg in found.groups()]
    return None, None, []


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "ChamelaionSandbox/1.0"
    timeout = IDLE_CONNECTION_TIMEOUT
    disable_nagle_algorithm = True  # headers and body go out in separate writes

    # Every method, even an odd one like "PURGE", reaches the same dispatcher, so that
    # the route table (not http.server) decides between 404 and 405.
    def __getattr__(self, name: str) -> Any:
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    @property
    def sandbox(self) -> SandboxServer:
        return self.server.sandbox

    def version_string(self) -> str:
        return self.server_version  # no Python version in the Server header

    # ----------------------------------------------------------------- plumbing

    def _dispatch(self) -> None:
        self._started = time.perf_counter()
        self._body_consumed = False
        self._responded = False
        self._is_api = False
        self._outcome = "?"
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query, keep_blank_values=True)
        try:
            if path == "/api" or path.startswith("/api/"):
                self._is_api = True
                self._handle_api(path, query)
            elif path.startswith("/files/"):
                self._handle_files(path)
            elif path.startswith("/_sandbox/"):
                self._send(self._handle_control(path))
            else:
                self._send(_error(ApiError(404, "not found")))
        except _DropConnection:
            self._drop()
        except (ConnectionError, TimeoutError):
            self.close_connection = True
            self._outcome = "client went away"
        except Exception as error:  # a sandbox bug must cost one answer, not the thread
            sys.stderr.write(f"[sandbox] internal error on {self.command} {path}: {error!r}\n")
            self._outcome = "500 (bug)"
            self.close_connection = True
            if not self._responded:
                try:
                    self._send(_json(500, {"error": "internal error"}))
                except OSError:
                    pass
        finally:
            elapsed = (time.perf_counter() - self._started) * 1000
            # Path only: the query string is the client's business and headers carry tokens.
            self.sandbox._log(f"{self.command} {path} -> {self._outcome} ({elapsed:.1f} ms)")

    def _declared_length(self) -> int | None:
        raw = self.headers.get("Content-Length")
        if raw is None:
            return None
        if not raw.strip().isdigit():
            self.close_connection = True  # where this body ends is anyone's guess
            raise ApiError(400, "invalid request body")
        return int(raw)

    def _is_chunked(self) -> bool:
        return "chunked" in self.headers.get("Transfer-Encoding", "").lower()

    def _read_body(self) -> bytes:
        """The whole request body, refusing anything over MAX_BODY_BYTES with 413."""
        self._body_consumed = True
        if self._is_chunked():
            return self._read_chunked()
        length = self._declared_length() or 0
        if length > MAX_BODY_BYTES:
            self.close_connection = True  # the body stays unread: this connection is done
            raise ApiError(413, "request entity too large")
        body = self.rfile.read(length)
        if len(body) != length:
            raise ConnectionError("request body cut short")
        return body

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                self.close_connection = True
                raise ApiError(400, "invalid request body") from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            total += size
            if total > MAX_BODY_BYTES:
                self.close_connection = True
                raise ApiError(413, "request entity too large")
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _settle_body(self) -> None:
        """Before answering: drain a small unread body so keep-alive stays in sync."""
        if self._body_consumed:
            return
        self._body_consumed = True
        try:
            length = self._declared_length()
        except ApiError:
            length = None
            self.close_connection = True
        if self._is_chunked() or (length is not None and length > DRAIN_LIMIT):
            self.close_connection = True
        elif length:
            self.rfile.read(length)

    def _send(self, response: _Response, *, head_only: bool = False) -> None:
        self._settle_body()
        # Count before writing: a client that reads stats right after the answer must see it.
        self._responded = True
        self._outcome = str(response.status)
        if self._is_api:
            self.sandbox._count(f"status_{response.status}")
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if not head_only and response.body:
            self.wfile.write(response.body)

    def _drop(self) -> None:
        """Hang up without a byte of answer (after reading a small body, for a clean FIN)."""
        try:
            self._settle_body()
        except OSError:
            pass
        self.close_connection = True
        self._outcome = "dropped"
        self.sandbox._count("dropped")

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (bad request line, huge headers...) as JSON too."""
        self.close_connection = True
        # Always answer with a status line (even to a garbled, "HTTP/0.9"-looking request)
        # and never echo the client's bytes back.
        self.request_version = "HTTP/1.1"
        body = json.dumps({"error": HTTPStatus(code).phrase.lower()}).encode()
        try:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD" and code >= 200 and code not in (204, 304):
                self.wfile.write(body)
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # one line per request is written by _dispatch, only when verbose

    # ----------------------------------------------------------------- /api

    def _handle_api(self, path: str, query: dict[str, list[str]]) -> None:
        sandbox = self.sandbox
        self._epoch = sandbox._epoch
        sandbox._count("requests")
        sandbox.record_path(path)
        path = bad_replies.resolve_dot_segments(path)  # what a real server routes, not what was typed
        delay = sandbox._latency()
        if delay:
            time.sleep(delay)
        method, endpoint, args = _match_api(path)
        generation = endpoint in ("generate", "upload") and self.command == "POST"

        fault = sandbox._next_fault(generation) if path.startswith("/api/v1/") else None
        if fault:
            sandbox._count("faults")
        if fault == "timeout":
            time.sleep(sandbox.faults.hang_seconds)
            fault = None
        if fault == "drop" or (fault == "drop-after-create" and not generation):
            raise _DropConnection
        if fault and fault != "drop-after-create":
            self._send(_fault_response(fault))
            return

        try:
            if endpoint is None:
                raise ApiError(404, "not found")
            if self.command != method:
                raise ApiError(405, "method not allowed", {"Allow": method})
            response = self._run_endpoint(endpoint, args, query)
        except ApiError as error:
            response = _error(error)
        if fault == "drop-after-create":
            raise _DropConnection
        self._send(response)

    def _run_endpoint(self, endpoint: str, args: list[str], query: dict[str, list[str]]) -> _Response:
        sandbox = self.sandbox
        if endpoint == "health":
            sandbox._count("health")
            return _json(200, {"status": "ok"})
        token = sandbox._authenticate(self.headers)
        if endpoint in ("generate", "upload"):
            return self._generate(token, upload=endpoint == "upload")
        if endpoint == "get":
            sandbox._count("get")
            found = sandbox._find(token, args[0])
            if found is None:
                raise ApiError(404, "lipsync request not found")
            return _json(200, found)
        if endpoint == "list":
            sandbox._count("list")
            return _json(200, self._list(token, query))
        if endpoint == "users_me":
            sandbox._count("users_me")
            return _json(200, {"name": sandbox._accounts[token].name})
        raise AssertionError(endpoint)

    def _generate(self, token: str, *, upload: bool) -> _Response:
        # The provider's order: auth (done), quota, rate limit, then the body.
        self.sandbox._check_quota(token)
        self.sandbox._take_rate_slot(token)
        body = self._read_body()
        content_type = self.headers.get("Content-Type")
        parse = parse_generate_multipart if upload else parse_generate_json
        spec = parse(content_type, body)
        job = self.sandbox._create(token, spec, upload=upload, epoch=self._epoch)
        return _json(200, {"status": "success", "request_id": job.id})

    def _list(self, token: str, query: dict[str, list[str]]) -> dict[str, Any]:
        limit = _non_negative_int(query, "limit") or DEFAULT_PAGE_SIZE
        offset = _non_negative_int(query, "offset") or 0
        reference_id = (query.get("reference_id") or [""])[0] or None
        return self.sandbox._page(token, min(limit, MAX_PAGE_SIZE), offset, reference_id)

    # ----------------------------------------------------------------- /files

    def _handle_files(self, path: str) -> None:
        if self.command not in ("GET", "HEAD"):
            self._send(_error(ApiError(405, "method not allowed", {"Allow": "GET, HEAD"})))
            return
        media = self._media_for(path)
        if media is None:
            self._send(_error(ApiError(404, "not found")), head_only=self.command == "HEAD")
            return
        size = len(media.data)
        headers = {"Accept-Ranges": "bytes", "Cache-Control": "no-cache", "Access-Control-Allow-Origin": "*"}
        try:
            span = _byte_range(self.headers.get("Range"), size)
        except ApiError as error:
            self._send(_error(error), head_only=self.command == "HEAD")
            return
        if span is None:
            response = _Response(200, media.data, media.content_type, headers)
        else:
            first, last = span
            headers["Content-Range"] = f"bytes {first}-{last}/{size}"
            response = _Response(206, media.data[first : last + 1], media.content_type, headers)
        self._send(response, head_only=self.command == "HEAD")

    def _media_for(self, path: str) -> _MediaFile | None:
        name = path[len("/files/") :]
        output = re.fullmatch(r"output/([0-9a-fA-F-]{36})\.mp4", name)
        if output:
            if not self.sandbox._completed_output_exists(output.group(1).lower()):
                return None
            return self.sandbox.media.get("sample-video.mp4")
        return self.sandbox.media.get(name)

    # ----------------------------------------------------------------- /_sandbox

    def _handle_control(self, path: str) -> _Response:
        method = _CONTROL_ROUTES.get(path)
        try:
            if method is None:
                raise ApiError(404, "not found")
            if path == "/_sandbox/faults" and self.command == "GET":
                return _json(200, asdict(self.sandbox.faults))
            if self.command != method:
                raise ApiError(405, "method not allowed", {"Allow": method})
            if path == "/_sandbox/state":
                return _json(200, self.sandbox.state())
            return self._control_action(path, self._control_payload())
        except ApiError as error:
            return _error(error)

    def _control_payload(self) -> dict[str, Any]:
        body = self._read_body()
        if not body.strip():
            return {}
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise _bad_body() from None
        if not isinstance(payload, dict):
            raise _bad_body()
        return payload

    def _control_action(self, path: str, payload: dict[str, Any]) -> _Response:
        sandbox = self.sandbox
        try:
            if path == "/_sandbox/reset":
                sandbox.reset()
                return _json(200, {"status": "ok"})
            if path == "/_sandbox/faults":
                return _json(200, sandbox._set_faults(payload))
            if path == "/_sandbox/advance":
                seconds = payload.get("seconds")
                if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
                    raise ValueError("seconds must be a number")
                sandbox.advance(float(seconds))
                offset = sandbox.state()["clock_offset_seconds"]
                return _json(200, {"status": "ok", "clock_offset_seconds": offset})
            if path == "/_sandbox/config":
                return _json(200, self._configure(payload))
            if path == "/_sandbox/jobs":
                return _json(200, self._control_create(payload))
            if path == "/_sandbox/outage":
                seconds = outage_seconds(payload)
                # After this answer has gone out: the request that asks must not be refused itself.
                threading.Timer(0.1, sandbox.go_down, kwargs={"seconds": seconds}).start()
                return _json(200, {"status": "ok", "down_for_seconds": seconds})
            if path == "/_sandbox/status":
                job_id, status = payload.get("id"), payload.get("status")
                if not isinstance(job_id, str) or not isinstance(status, str) or not status:
                    raise ValueError("id and status must be strings")
                sandbox.set_status(job_id, status, error_message=payload.get("error_message"))
                return _json(200, {"status": "ok"})
        except KeyError:
            raise ApiError(404, "lipsync request not found") from None
        except (ValueError, TypeError) as error:
            raise ApiError(400, str(error)) from None
        raise AssertionError(path)

    def _configure(self, payload: dict[str, Any]) -> dict[str, Any]:
        sandbox = self.sandbox
        unknown = set(payload) - {"job_seconds", "rate_limit_per_minute"}
        if unknown:
            raise ValueError(f"unknown config field: {sorted(unknown)[0]}")
        for key, value in payload.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{key} must be a non-negative number")
        if "job_seconds" in payload:
            sandbox.job_seconds = float(payload["job_seconds"])
        if "rate_limit_per_minute" in payload:
            sandbox.rate_limit_per_minute = int(payload["rate_limit_per_minute"])
        return {"job_seconds": sandbox.job_seconds, "rate_limit_per_minute": sandbox.rate_limit_per_minute}

    def _control_create(self, payload: dict[str, Any]) -> dict[str, Any]:
        allowed = {"video_url", "audio_url", "reference_id", "token", "disable_active_speaker_detection"}
        unknown = set(payload) - allowed
        if unknown:
            raise ValueError(f"unknown job field: {sorted(unknown)[0]}")
        video, audio = payload.get("video_url"), payload.get("audio_url")
        if not isinstance(video, str) or not isinstance(audio, str):
            raise ValueError("video_url and audio_url must be strings")
        return self.sandbox.create_job(
            video_url=video,
            audio_url=audio,
            reference_id=_check_reference_id(payload.get("reference_id")),
            token=str(payload.get("token", DEMO_TOKEN)),
            disable_active_speaker_detection=bool(payload.get("disable_active_speaker_detection", False)),
        )


# --------------------------------------------------------------------------- command line


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by `python -m submissions.sandbox.server` and `manage.py sandbox`."""
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    parser.add_argument("--job-seconds", dest="job_seconds", type=float, default=30.0)
    parser.add_argument("--rate-limit", dest="rate_limit", type=int, default=60,
                        help="generation requests per minute per token (0: unlimited)")
    parser.add_argument("--latency", type=float, default=0.0, help="extra seconds before every /api answer")
    parser.add_argument("--rate-500", dest="rate_500", type=float, default=0.0)
    parser.add_argument("--rate-429", dest="rate_429", type=float, default=0.0)
    parser.add_argument("--rate-drop", dest="rate_drop", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--quiet", action="store_true", help="no per-request log lines")


def build_from_options(options: Mapping[str, Any]) -> SandboxServer:
    """A SandboxServer from parsed CLI options; ValueError/OSError when it cannot be."""
    for key in ("rate_500", "rate_429", "rate_drop"):
        if not 0 <= options[key] <= 1:
            raise ValueError(f"--{key.replace('_', '-')} must be between 0 and 1")
    if options["latency"] < 0 or options["job_seconds"] < 0:
        raise ValueError("--latency and --job-seconds must not be negative")
    sandbox = SandboxServer(
        options["host"],
        options["port"],
        job_seconds=options["job_seconds"],
        rate_limit_per_minute=options["rate_limit"],
        seed=options["seed"],
        verbose=not options.get("quiet", False),
    )
    sandbox.faults.latency = options["latency"]
    sandbox.faults.rate_500 = options["rate_500"]
    sandbox.faults.rate_429 = options["rate_429"]
    sandbox.faults.rate_drop_after_create = options["rate_drop"]
    return sandbox


def banner(sandbox: SandboxServer) -> list[str]:
    lines = [
        f"Chamelaion sandbox listening on {sandbox.root_url}",
        f"  API base URL:          {sandbox.base_url}",
        f"  sample video:          {sandbox.sample_video_url}",
        f"  sample audio:          {sandbox.sample_audio_url}",
    ]
    if "sample-audio.mp3" in sandbox.media:
        lines.append(f"  sample audio (MP3):    {sandbox.sample_audio_mp3_url}")
    lines += [
        f"  demo token:            {DEMO_TOKEN}",
        f"  quota-used-up token:   {QUOTA_USED_UP_TOKEN}",
        f"  revoked token:         {REVOKED_TOKEN}",
        f"  control:               {sandbox.root_url}/_sandbox/state  (POST /_sandbox/faults|reset|advance|outage)",
        f"  jobs take {sandbox.job_seconds:g} s; rate limit {sandbox.rate_limit_per_minute}/min",
        "Press Ctrl-C to stop.",
    ]
    return lines


def run_cli(options: Mapping[str, Any], write: Callable[[str], None]) -> None:
    """Serve until SIGINT or SIGTERM, then stop cleanly."""
    sandbox = build_from_options(options)
    stop_requested = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop_requested.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        sandbox.start()
        for line in banner(sandbox):
            write(line)
        while not stop_requested.wait(0.5):
            pass
        write("Stopping the sandbox.")
    finally:
        sandbox.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the Chamelaion API sandbox on loopback.")
    add_cli_arguments(parser)
    options = vars(parser.parse_args(argv))
    try:
        run_cli(options, lambda line: print(line, flush=True))
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
