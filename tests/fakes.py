"""A fake Chamelaion for service tests where HTTP is not what they test: the sandbox without sockets.

`FakeChamelaionClient` has the public methods of submissions.chamelaion.ChamelaionClient that the services
call, with the same signatures (tests/chamelaion/test_fake_matches_client.py keeps them equal), plus
`calls` and `base_url`. It is backed by a `FakeAccount`, which holds the sandbox's own `Store`
(submissions/sandbox/store.py) and answers with the sandbox's own contract (submissions/sandbox/contract.py):
the same jobs on the same simulated clock (queued, processing from a third of `job_seconds`, then
completed, or failed when an input URL contains "fail"), the same forced statuses, the same lookup by
request id or reference id, the same list paging and the same JSON. Only the transport is replaced:
failures are raised as the client raises them, with the real exception classes from submissions.chamelaion.

The `fake_chamelaion` fixture installs it wherever DubDash asks for a client
(submissions.apikey.clients.get_client, which every service calls at call time) and returns the account,
whose test-facing methods are named as the sandbox's: create_job, jobs, advance, set_status, stats,
go_down, come_up, and `faults.script`; `find` hands a test the stored job itself.

What stays on the real loopback sandbox: the client itself, the wire format, timeouts, TLS, answers lost
on the way, the checks of input URLs and uploaded files, rate windows measured by the server, and the
end-to-end tier.
"""

from __future__ import annotations

import hashlib
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import pytest

from submissions import chamelaion
from submissions.apikey import clients
from submissions.chamelaion import Downloaded, LipsyncRequest, RequestPage
from submissions.sandbox import contract
from submissions.sandbox.media import MEDIA_DIR, SAMPLE_AUDIO_WAV, SAMPLE_VIDEO, file_url, output_url
from submissions.sandbox.routing import ApiError
from submissions.sandbox.store import Account, Job, JobSpec, Store

BASE_URL = "https://fake-chamelaion.invalid/api"
ROOT_URL = BASE_URL.removesuffix("/api")  # where the sandbox would serve /files/
TOKEN = "fake-chamelaion-token"  # the fake account's key in the store
ACCOUNT_NAME = "DubDash fake account"


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


def _as_raised(error: ApiError) -> chamelaion.ChamelaionError:
    """The sandbox's 400 answer to an invalid request, as the real client raises it."""
    return chamelaion.BadRequest(error.message, status_code=error.status)


@dataclass
class FakeFaults:
    """`script`: one entry per coming API call, consumed in order: "pass" (no fault), a name ("401",
    "412", "429", "500", "unreachable", "malformed"), or any ChamelaionError to raise. A failed call
    changes nothing on the account."""

    script: list[str | chamelaion.ChamelaionError] = field(default_factory=list)

    def next(self) -> str | chamelaion.ChamelaionError:
        return self.script.pop(0) if self.script else "pass"


class FakeJob(Job):
    """A sandbox job as `find` returns it, with its inputs also readable as `video_url` etc."""

    @property
    def video_url(self) -> str:
        return self.spec.video_url

    @property
    def audio_url(self) -> str:
        return self.spec.audio_url

    @property
    def reference_id(self) -> str | None:
        return self.spec.reference_id


class FakeAccount:
    """One Chamelaion account on a sandbox `Store` in memory, with counters and scripted faults."""

    sample_video_url = file_url(ROOT_URL, SAMPLE_VIDEO)
    sample_audio_url = file_url(ROOT_URL, SAMPLE_AUDIO_WAV)

    def __init__(self, *, job_seconds: float = 30.0) -> None:
        self.store = Store(job_seconds=job_seconds, rate_limit_per_minute=0)  # rate limits: the real sandbox's
        self.store.add_account(TOKEN, Account(ACCOUNT_NAME))
        self.faults = FakeFaults()
        self.is_down = False
        self._stats = {"requests": 0, "generate": 0, "uploads": 0, "get": 0, "list": 0, "me": 0}

    # What a test does to the account ------------------------------------------------------------------

    @property
    def job_seconds(self) -> float:
        """How long a job takes, in simulated seconds: the store's setting (`store.job_seconds` changes it)."""
        return self.store.job_seconds

    def now(self) -> float:
        return self.store.now()

    def advance(self, seconds: float) -> None:
        """Move the simulated clock forward: jobs progress, nothing waits."""
        self.store.advance(seconds)

    def create_job(
        self,
        *,
        video_url: str,
        audio_url: str,
        reference_id: str | None = None,
        disable_active_speaker_detection: bool = False,
    ) -> dict[str, Any]:
        """A job on the account as if another tool had made it (no API call counted)."""
        spec = JobSpec(video_url, audio_url, reference_id, disable_active_speaker_detection)
        return self.render(self.store.create_job(TOKEN, spec))

    def set_status(self, job_id: str, status: str, *, error_message: str | None = None) -> None:
        """Force a job's status string (e.g. an unknown "rendering"); it sticks. KeyError for an unknown id."""
        self.store.force_status(job_id, status, error_message=error_message)

    def jobs(self) -> list[dict[str, Any]]:
        """Every job as the API shows it, oldest first."""
        return [self.render(job) for job in self.store.jobs_of(TOKEN)]

    def find(self, key: str) -> FakeJob | None:
        """By request id, else by reference id (the newest match), as the API's GET does."""
        job = self.store.find(TOKEN, key)
        return None if job is None else FakeJob(**vars(job))

    def stats(self) -> dict[str, int]:
        return dict(self._stats)

    def go_down(self) -> None:
        """Connections refused: nothing reaches the account until come_up()."""
        self.is_down = True

    def come_up(self) -> None:
        self.is_down = False

    # What the client does ------------------------------------------------------------------------------

    def call(self, kind: str, *, uploads: bool = False) -> None:
        """Count one API call and raise its scripted fault, if any. A refused connection never arrives."""
        if self.is_down:
            raise _fault("unreachable")
        self._stats["requests"] += 1
        self._stats[kind] += 1
        self._stats["uploads"] += uploads
        fault = self.faults.next()
        if isinstance(fault, chamelaion.ChamelaionError):
            raise fault
        if fault != "pass":
            raise _fault(fault)

    def render(self, job: Job) -> dict[str, Any]:
        """The job as the API's JSON shows it now."""
        return contract.lipsync_request(job, self.store.now(), ROOT_URL)


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
        return self._create(video_url, audio_url, reference_id, disable_active_speaker_detection, kind="generate")

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
        # The sandbox names an uploaded input after its file.
        video_url, audio_url = f"upload:{video_name}", f"upload:{audio_name}"
        return self._create(video_url, audio_url, reference_id, disable_active_speaker_detection, kind="uploads")

    def get_request(self, id_or_reference_id: str) -> LipsyncRequest:
        key = _usable(id_or_reference_id)
        self.calls += 1
        self.account.call("get")
        job = self.account.store.find(TOKEN, key)
        if job is None:
            raise chamelaion.NotFound(contract.NOT_FOUND, status_code=404)
        return LipsyncRequest.from_json(self.account.render(job))

    def find_by_reference_id(self, reference_id: str) -> LipsyncRequest | None:
        try:
            return self.get_request(reference_id)
        except chamelaion.NotFound:
            return None

    def list_requests(self, *, limit: int = chamelaion.LIST_PAGE_LIMIT, offset: int = 0, reference_id: str = "") -> RequestPage:
        self.calls += 1
        self.account.call("list")
        query = {"limit": [str(limit)], "offset": [str(offset)], "reference_id": [reference_id]}
        try:
            limit, offset, wanted = contract.page_request(query)  # the query as the client sends it
        except ApiError as error:
            raise _as_raised(error) from None
        jobs, total = self.account.store.page(TOKEN, limit=limit, offset=offset, reference_id=wanted)
        page = [LipsyncRequest.from_json(self.account.render(job)) for job in jobs]
        return RequestPage(page, limit, offset, total, size=len(page))

    def me(self) -> str:
        self.calls += 1
        self.account.call("me")
        return ACCOUNT_NAME

    def download_output(
        self,
        url: str,
        *,
        into: IO[bytes],
        max_bytes: int,
        max_seconds: float,
        max_bytes_per_second: float = 0,
        stop: threading.Event | None = None,
    ) -> Downloaded:
        """A completed job's output is the sandbox's sample video, as the sandbox serves it; anything else 404s."""
        self.calls += 1
        prefix = output_url(ROOT_URL, "")
        job_id = url.removeprefix(prefix).removesuffix(".mp4") if url.startswith(prefix) else ""
        if not job_id or self.account.is_down or not self.account.store.is_completed(job_id):
            raise chamelaion.OutputLinkExpired("HTTP 404", status_code=404)
        data = (MEDIA_DIR / "sample.mp4").read_bytes()
        if len(data) > max_bytes:
            raise chamelaion.OutputTooLarge(f"more than {max_bytes} bytes", max_bytes=max_bytes)
        into.write(data)
        return Downloaded(size=len(data), sha256=hashlib.sha256(data).hexdigest(), crc32=zlib.crc32(data))

    def health(self) -> bool:
        self.calls += 1
        if self.account.is_down:
            raise _fault("unreachable")
        return True

    def _create(self, video_url: str, audio_url: str, reference_id: str, disable: bool, *, kind: str) -> str:
        self.calls += 1
        self.account.call("generate", uploads=kind == "uploads")
        try:
            spec = JobSpec(video_url, audio_url, contract.check_reference_id(reference_id), disable)
        except ApiError as error:
            raise _as_raised(error) from None
        return self.account.store.create_job(TOKEN, spec).id


@pytest.fixture
def fake_chamelaion(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAccount]:
    """Every client DubDash asks for is a FakeChamelaionClient on one fresh in-memory account."""
    account = FakeAccount()
    monkeypatch.setattr(clients, "get_client", lambda: FakeChamelaionClient(account))
    monkeypatch.setattr(clients, "get_download_client", lambda: FakeChamelaionClient(account))
    yield account
