"""A fake Chamelaion for service tests where HTTP is not what they test: no server, no sockets.

`FakeChamelaionClient` has the public methods of submissions.chamelaion.ChamelaionClient that the services
call, with the same signatures (tests/chamelaion/test_fake_matches_client.py keeps them equal), plus
`calls` and `base_url`. It is backed by a `FakeAccount` held in memory: jobs progress on a simulated clock
as the sandbox's do (queued, processing from a third of `job_seconds`, then completed, or failed when an
input URL contains "fail"), the list pages oldest first, and failures are raised as the client raises
them, with the real exception classes from submissions.chamelaion.

The `fake_chamelaion` fixture installs it wherever DubDash asks for a client
(submissions.apikey.clients.get_client, which every service calls at call time) and returns the account,
whose test-facing methods are named as the sandbox's: create_job, jobs, advance, set_status, stats,
go_down, come_up, and `faults.script`.

What stays on the real loopback sandbox: the client itself, the wire format, timeouts, TLS, answers lost
on the way, rate windows measured by the server, and the end-to-end tier.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

import pytest

from submissions import chamelaion
from submissions.apikey import clients
from submissions.chamelaion import LipsyncRequest, RequestPage

BASE_URL = "https://fake-chamelaion.invalid/api"
ACCOUNT_NAME = "DubDash fake account"
GENERIC_FAILURE = "lip sync failed"


def _fault(name: str) -> chamelaion.ChamelaionError:
    """The failure a scripted fault stands for, as the real client raises it."""
    faults: dict[str, chamelaion.ChamelaionError] = {
        "401": chamelaion.Unauthorized("invalid api key", status_code=401),
        "412": chamelaion.QuotaExhausted("token limit reached", status_code=412),
        "429": chamelaion.RateLimited("rate limit exceeded", retry_after=2),
        "500": chamelaion.ServerError("internal error", status_code=500),
        "unreachable": chamelaion.Unreachable("connection failed", may_have_reached_server=False),
        "malformed": chamelaion.MalformedReply("not json"),
    }
    return faults[name]


@dataclass
class FakeFaults:
    """`script`: one entry per coming API call, consumed in order: "pass" (no fault), a name ("401",
    "412", "429", "500", "unreachable", "malformed"), or any ChamelaionError to raise. A failed call
    changes nothing on the account."""

    script: list[str | chamelaion.ChamelaionError] = field(default_factory=list)

    def next(self) -> str | chamelaion.ChamelaionError:
        return self.script.pop(0) if self.script else "pass"


@dataclass
class FakeJob:
    id: str
    video_url: str
    audio_url: str
    reference_id: str | None
    created_at: float  # simulated epoch seconds
    duration: float
    forced_status: str | None = None
    forced_at: float | None = None
    forced_error: str | None = None

    def failure_reason(self) -> str | None:
        if "fail" in self.video_url.lower():
            return "video URL is not accessible"
        if "fail" in self.audio_url.lower():
            return "audio URL is not accessible"
        return None

    def timeline(self, now: float) -> tuple[str, float | None, float | None]:
        """(status, started_at, finished_at) at simulated time `now`, as the sandbox reports them."""
        now = max(now, self.created_at)
        start, end = self.created_at + self.duration / 3, self.created_at + self.duration
        if self.forced_status is None:
            if now >= end:
                return ("failed" if self.failure_reason() else "completed"), start, end
            return ("processing", start, None) if now >= start else ("queued", None, None)
        status, forced_at = self.forced_status, self.forced_at or now
        if status == "queued":
            return status, None, None
        if status in ("completed", "failed"):
            return status, min(start, forced_at), min(end, forced_at)
        if status == "processing":
            return status, min(start, forced_at), None
        return status, (start if now >= start else None), None

    def render(self, now: float) -> dict[str, Any]:
        """The job as the API's JSON shows it (what the sandbox's jobs() returns too)."""
        status, started, finished = self.timeline(now)
        data: dict[str, Any] = {"id": self.id, "created_at": _iso(self.created_at), "status": status}
        if self.reference_id is not None:
            data["reference_id"] = self.reference_id
        if started is not None:
            data["started_at"] = _iso(started)
        if finished is not None:
            data["finished_at"] = _iso(finished)
        if status == "completed":
            data["output_url"] = f"{BASE_URL.removesuffix('/api')}/files/output/{self.id}.mp4"
        elif status == "failed":
            data["error_message"] = self.forced_error or self.failure_reason() or GENERIC_FAILURE
        return data


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, tz=UTC).isoformat().replace("+00:00", "Z")


class FakeAccount:
    """One Chamelaion account in memory: its jobs, a simulated clock, counters and scripted faults."""

    sample_video_url = "https://cdn.example.com/sample-video.mp4"
    sample_audio_url = "https://cdn.example.com/sample-audio.wav"

    def __init__(self, *, job_seconds: float = 30.0) -> None:
        self.job_seconds = job_seconds
        self.faults = FakeFaults()
        self.is_down = False
        self._offset = 0.0
        self._jobs: dict[str, FakeJob] = {}  # insertion order: oldest first, as the sandbox lists them
        self._stats = {"requests": 0, "generate": 0, "uploads": 0, "get": 0, "list": 0, "me": 0}

    # What a test does to the account ------------------------------------------------------------------

    def now(self) -> float:
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the simulated clock forward: jobs progress, nothing waits."""
        self._offset += seconds

    def create_job(
        self,
        *,
        video_url: str,
        audio_url: str,
        reference_id: str | None = None,
        disable_active_speaker_detection: bool = False,
    ) -> dict[str, Any]:
        """A job on the account as if another tool had made it (no API call counted)."""
        job = FakeJob(str(uuid.uuid4()), video_url, audio_url, reference_id, self.now(), self.job_seconds)
        self._jobs[job.id] = job
        return job.render(self.now())

    def set_status(self, job_id: str, status: str, *, error_message: str | None = None) -> None:
        job = self._jobs[job_id]
        job.forced_status, job.forced_at, job.forced_error = status, self.now(), error_message

    def jobs(self) -> list[dict[str, Any]]:
        """Every job as the API shows it, oldest first."""
        now = self.now()
        return [job.render(now) for job in self._jobs.values()]

    def stats(self) -> dict[str, int]:
        return dict(self._stats)

    def go_down(self) -> None:
        """Connections refused: nothing reaches the account until come_up()."""
        self.is_down = True

    def come_up(self) -> None:
        self.is_down = False

    # What the client does ------------------------------------------------------------------------------

    def call(self, kind: str, *, uploads: bool = False) -> str | chamelaion.ChamelaionError:
        """Count one API call and say how it fails, if it does. A refused connection never arrives."""
        if self.is_down:
            raise _fault("unreachable")
        self._stats["requests"] += 1
        self._stats[kind] += 1
        self._stats["uploads"] += uploads
        return self.faults.next()

    def add(self, *, video_url: str, audio_url: str, reference_id: str) -> FakeJob:
        job = FakeJob(str(uuid.uuid4()), video_url, audio_url, reference_id, self.now(), self.job_seconds)
        self._jobs[job.id] = job
        return job

    def find(self, key: str) -> FakeJob | None:
        """By request id, else by reference id (the newest match), as the API's GET does."""
        if key.lower() in self._jobs:
            return self._jobs[key.lower()]
        matches = [job for job in self._jobs.values() if job.reference_id == key]
        return matches[-1] if matches else None

    def listed(self, *, reference_id: str) -> list[FakeJob]:
        return [job for job in self._jobs.values() if not reference_id or job.reference_id == reference_id]


def _raise_unless_pass(fault: str | chamelaion.ChamelaionError) -> None:
    if isinstance(fault, chamelaion.ChamelaionError):
        raise fault
    if fault != "pass":
        raise _fault(fault)


def _usable(value: str) -> str:
    """As the real client: an id made only of dots (or none) is refused before any call."""
    if not value or not value.strip("."):
        raise chamelaion.UnusableId(value)
    return value


class FakeChamelaionClient:
    """Stands in for ChamelaionClient: the same public methods and signatures, answered by a FakeAccount."""

    def __init__(self, account: FakeAccount, *, base_url: str = BASE_URL) -> None:
        self.account = account
        self.base_url = base_url
        self.calls = 0

    def generate(
        self,
        *,
        video_url: str,
        audio_url: str,
        reference_id: str,
        disable_active_speaker_detection: bool = False,
    ) -> str:
        if reference_id:
            _usable(reference_id)
        return self._create(video_url=video_url, audio_url=audio_url, reference_id=reference_id, kind="generate")

    def generate_with_media(
        self,
        *,
        video: IO[bytes],
        audio: IO[bytes],
        reference_id: str,
        disable_active_speaker_detection: bool = False,
        video_name: str = "video.mp4",
        audio_name: str = "audio",
    ) -> str:
        if reference_id:
            _usable(reference_id)
        return self._create(video_url=f"upload://{video_name}", audio_url=f"upload://{audio_name}",
                            reference_id=reference_id, kind="uploads")

    def get_request(self, id_or_reference_id: str) -> LipsyncRequest:
        key = _usable(id_or_reference_id)
        self.calls += 1
        _raise_unless_pass(self.account.call("get"))
        job = self.account.find(key)
        if job is None:
            raise chamelaion.NotFound("request not found", status_code=404)
        return LipsyncRequest.from_json(job.render(self.account.now()))

    def find_by_reference_id(self, reference_id: str) -> LipsyncRequest | None:
        try:
            return self.get_request(reference_id)
        except chamelaion.NotFound:
            return None

    def list_requests(self, *, limit: int = chamelaion.LIST_PAGE_LIMIT, offset: int = 0, reference_id: str = "") -> RequestPage:
        self.calls += 1
        _raise_unless_pass(self.account.call("list"))
        jobs = self.account.listed(reference_id=reference_id)
        now = self.account.now()
        page = [LipsyncRequest.from_json(job.render(now)) for job in jobs[offset : offset + limit]]
        return RequestPage(page, limit, offset, len(jobs), size=len(page))

    def me(self) -> str:
        self.calls += 1
        _raise_unless_pass(self.account.call("me"))
        return ACCOUNT_NAME

    def health(self) -> bool:
        self.calls += 1
        if self.account.is_down:
            raise _fault("unreachable")
        return True

    def _create(self, *, video_url: str, audio_url: str, reference_id: str, kind: str) -> str:
        self.calls += 1
        _raise_unless_pass(self.account.call("generate", uploads=kind == "uploads"))
        return self.account.add(video_url=video_url, audio_url=audio_url, reference_id=reference_id).id


@pytest.fixture
def fake_chamelaion(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAccount]:
    """Every client DubDash asks for is a FakeChamelaionClient on one fresh in-memory account."""
    account = FakeAccount()
    monkeypatch.setattr(clients, "get_client", lambda: FakeChamelaionClient(account))
    yield account
