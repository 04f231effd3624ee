"""What the sandbox remembers: accounts and their tokens, jobs, the simulated clock and the rate windows.

No HTTP here: every answer is a plain value or exception, so the behaviour can be tested without sockets.
Jobs progress on a simulated clock (real time plus whatever `advance()` added) so tests never sleep for a
job to finish; the rate limit runs on real monotonic time, as the real provider's does.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace

DEMO_TOKEN = "sandbox-demo-token"  # noqa: S105 - a public demo token, not a secret
QUOTA_USED_UP_TOKEN = "sandbox-quota-used-up"  # noqa: S105 - a public demo token, not a secret
REVOKED_TOKEN = "sandbox-revoked-token"  # noqa: S105 - a public demo token, not a secret

DEMO_NAME = "DubDash sandbox demo"
QUOTA_USED_UP_NAME = "DubDash sandbox (quota used up)"
REVOKED_NAME = "DubDash sandbox (revoked)"

RATE_WINDOW_SECONDS = 60.0
GENERIC_FAILURE = "lip sync failed"


@dataclass(frozen=True)
class Account:
    name: str
    quota_used_up: bool = False
    revoked: bool = False


def built_in_accounts() -> dict[str, Account]:
    """The token -> account map every sandbox starts with: one account per way a token can be."""
    return {
        DEMO_TOKEN: Account(DEMO_NAME),
        QUOTA_USED_UP_TOKEN: Account(QUOTA_USED_UP_NAME, quota_used_up=True),
        REVOKED_TOKEN: Account(REVOKED_NAME, revoked=True),
    }


@dataclass(frozen=True)
class JobSpec:
    """A validated generation request, before it becomes a job."""

    video_url: str
    audio_url: str
    reference_id: str | None = None
    disable_active_speaker_detection: bool = False


@dataclass(frozen=True)
class ForcedStatus:
    status: str
    at: float  # simulated epoch seconds
    error_message: str | None = None


@dataclass(frozen=True)
class Job:
    id: str
    account: str  # the token; never serialized, never logged
    spec: JobSpec
    created_at: float  # simulated epoch seconds
    duration: float  # the store's job_seconds when the job was created
    forced: ForcedStatus | None = None

    def failure_reason(self) -> str | None:
        if "fail" in self.spec.video_url.lower():
            return "video URL is not accessible"
        if "fail" in self.spec.audio_url.lower():
            return "audio URL is not accessible"
        return None

    def error_message(self) -> str:
        """What a failed job reports."""
        forced_error = self.forced.error_message if self.forced else None
        return forced_error or self.failure_reason() or GENERIC_FAILURE

    def timeline(self, now: float) -> tuple[str, float | None, float | None]:
        """(status, started_at, finished_at) as seen at simulated time `now`."""
        now = max(now, self.created_at)
        start = self.created_at + self.duration / 3
        end = self.created_at + self.duration
        if self.forced is None:
            if now >= end:
                return ("failed" if self.failure_reason() else "completed"), start, end
            if now >= start:
                return "processing", start, None
            return "queued", None, None
        # A forced status sticks; its timestamps never lie beyond the moment it was forced.
        status, forced_at = self.forced.status, self.forced.at
        if status == "queued":
            return status, None, None
        if status in ("completed", "failed"):
            return status, min(start, forced_at), min(end, forced_at)
        if status == "processing":
            return status, min(start, forced_at), None
        return status, (start if now >= start else None), None  # unknown: still in flight


class Clock:
    """Simulated epoch seconds: the wall clock read once, then driven by the monotonic clock so it never
    jumps back, plus the offset `advance()` adds."""

    def __init__(self, wall: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._wall_anchor = wall()
        self._mono_anchor = monotonic()
        self.offset = 0.0

    def now(self) -> float:
        return self._wall_anchor + (self._monotonic() - self._mono_anchor) + self.offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the simulated clock only moves forward")
        self.offset += seconds


class RateWindows:
    """A sliding window of admitted requests per key, on real monotonic time. Not thread-safe alone."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._windows: dict[str, deque[float]] = {}

    def take(self, key: str, limit: int) -> int | None:
        """Admit one request (None), or refuse it with the whole seconds until a slot frees up.
        A refused request uses no slot; a limit of 0 or less admits everything and records nothing."""
        if limit <= 0:
            return None
        now = self._monotonic()
        window = self._windows.setdefault(key, deque())
        while window and window[0] <= now - RATE_WINDOW_SECONDS:
            window.popleft()
        if len(window) >= limit:
            oldest = window[len(window) - limit]
            return max(1, math.ceil(oldest + RATE_WINDOW_SECONDS - now))
        window.append(now)
        return None

    def clear(self) -> None:
        self._windows.clear()


class StoreWasReset(Exception):
    """The store was reset after a request started: that request must not create its job in the clean store."""


@dataclass(frozen=True)
class JobCounts:
    total: int
    by_status: dict[str, int]
    by_account: dict[str, int]  # by account display name: tokens never leave the store


class Store:
    """Accounts, jobs, clock and rate windows behind one lock. Jobs are immutable values: a changed job
    replaces the old one, so callers may read what they got without holding the lock."""

    def __init__(
        self,
        *,
        job_seconds: float = 30.0,
        rate_limit_per_minute: int = 60,
        clock: Clock | None = None,
        rate_windows: RateWindows | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._initial_job_seconds = job_seconds
        self._initial_rate_limit = rate_limit_per_minute
        self.job_seconds = job_seconds
        self.rate_limit_per_minute = rate_limit_per_minute  # generation requests per token per minute; <= 0: none
        self._clock = clock or Clock()
        self._rate_windows = rate_windows or RateWindows()
        self._accounts = built_in_accounts()
        self._jobs: dict[str, Job] = {}  # insertion order == creation order
        self._epoch = 0

    # ----------------------------------------------------------------- clock and epoch

    def now(self) -> float:
        return self._clock.now()

    @property
    def clock_offset(self) -> float:
        return self._clock.offset

    def advance(self, seconds: float) -> None:
        """Move the simulated clock (job progression only) forward."""
        with self._lock:
            self._clock.advance(seconds)

    @property
    def epoch(self) -> int:
        """Bumped by reset(): a request still in flight from before (say, hanging on a "timeout" fault)
        hands it to create_job() so that it cannot create its job in the next test's clean store."""
        return self._epoch

    def reset(self) -> None:
        """Forget jobs, rate windows and the clock offset; restore the settings given at construction.
        Accounts survive."""
        with self._lock:
            self._jobs.clear()
            self._epoch += 1
            self._rate_windows.clear()
            self._clock.offset = 0.0
            self.job_seconds = self._initial_job_seconds
            self.rate_limit_per_minute = self._initial_rate_limit

    # ----------------------------------------------------------------- accounts

    def account(self, token: str) -> Account | None:
        return self._accounts.get(token)

    def add_account(self, token: str, account: Account) -> None:
        if not token.strip():
            raise ValueError("token must not be blank")
        with self._lock:
            self._accounts[token] = account

    def take_rate_slot(self, token: str) -> int | None:
        """None when the token may send one more generation request now, else seconds to wait."""
        with self._lock:
            return self._rate_windows.take(token, self.rate_limit_per_minute)

    # ----------------------------------------------------------------- jobs

    def create_job(self, token: str, spec: JobSpec, *, epoch: int | None = None) -> Job:
        """A new job on that account. With `epoch`, StoreWasReset if the store was reset since then."""
        with self._lock:
            if epoch is not None and epoch != self._epoch:
                raise StoreWasReset
            job = Job(str(uuid.uuid4()), token, spec, self._clock.now(), max(0.0, float(self.job_seconds)))
            self._jobs[job.id] = job
            return job

    def job(self, job_id: str) -> Job:
        """KeyError for an unknown id."""
        with self._lock:
            return self._jobs[job_id]

    def force_status(self, job_id: str, status: str, *, error_message: str | None = None) -> None:
        """Make a job report `status` from now on (any string); KeyError for an unknown id."""
        with self._lock:
            job = self._jobs[job_id]
            self._jobs[job_id] = replace(job, forced=ForcedStatus(status, self._clock.now(), error_message))

    def jobs_of(self, token: str) -> list[Job]:
        """That account's jobs, oldest first."""
        with self._lock:
            return [job for job in self._jobs.values() if job.account == token]

    def find(self, token: str, key: str) -> Job | None:
        """By request id, else by reference_id (newest match wins), same account only."""
        with self._lock:
            job = self._jobs.get(key.lower())
            if job is not None and job.account == token:
                return job
            matches = [j for j in self._jobs.values() if j.account == token and j.spec.reference_id == key]
            return matches[-1] if matches else None

    def page(self, token: str, *, limit: int, offset: int, reference_id: str | None = None) -> tuple[list[Job], int]:
        """One page of that account's jobs (oldest first), optionally only those with `reference_id`,
        and how many there are in all."""
        with self._lock:
            mine = [
                j
                for j in self._jobs.values()
                if j.account == token and (reference_id is None or j.spec.reference_id == reference_id)
            ]
        return mine[offset : offset + limit], len(mine)

    def is_completed(self, job_id: str) -> bool:
        with self._lock:
            job = self._jobs.get(job_id)
            return job is not None and job.timeline(self._clock.now())[0] == "completed"

    def counts(self, now: float) -> JobCounts:
        """Every job counted by status at simulated time `now`, and by account name."""
        with self._lock:
            by_status: dict[str, int] = {}
            by_account: dict[str, int] = {}
            for job in self._jobs.values():
                status = job.timeline(now)[0]
                by_status[status] = by_status.get(status, 0) + 1
                name = self._accounts[job.account].name
                by_account[name] = by_account.get(name, 0) + 1
            return JobCounts(len(self._jobs), by_status, by_account)
