"""A faithful local simulator ("the sandbox") of the Chamelaion lip-sync API, for demos and tests.

No machine here reaches the real API, so they talk to this server over real HTTP on loopback. It
implements the whole contract in ``shared/chamelaion-api.md`` (same paths under ``/api``, same status
codes, same error messages), serves sample media and finished outputs under ``/files/``, and has control
endpoints under ``/_sandbox/`` for tests that run it in another process.

Pure standard library on purpose: it must run without Django and without any third-party package.
This module holds `SandboxServer`, which puts the pieces together, and the command line.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from types import FrameType
from typing import Any

if __name__ == "__main__" and not __package__:
    # Run as a plain script (python submissions/sandbox/server.py), this file's folder heads sys.path and
    # relative imports cannot work: run the same module from its package instead.
    sys.path[0] = str(Path(__file__).resolve().parents[2])
    sys.exit(importlib.import_module("submissions.sandbox.server").main())

from .api import ApiArea
from .contract import iso_time, lipsync_request, rate_limited
from .control import ControlArea
from .faults import SCRIPT_FAULTS, FaultDice, Faults, merge_faults
from .httpd import Listener
from .media import MEDIA_DIR, SAMPLE_AUDIO_MP3, SAMPLE_AUDIO_WAV, SAMPLE_VIDEO, FilesArea, file_url, load_media
from .outage import Reachability
from .routing import ApiError, Site
from .store import DEMO_TOKEN, QUOTA_USED_UP_TOKEN, REVOKED_TOKEN, Account, JobSpec, Store
from .traffic import Traffic

__all__ = [  # the names other code imports from here, whichever module defines them
    "DEMO_TOKEN", "MEDIA_DIR", "QUOTA_USED_UP_TOKEN", "REVOKED_TOKEN", "SCRIPT_FAULTS",
    "ApiError", "Faults", "SandboxServer", "add_cli_arguments", "main", "run_cli",
]


class SandboxServer:
    """The simulator: a loopback HTTP server plus the account/job store behind it.

    Tests drive it directly: `faults` (assign its fields, or a new Faults), `job_seconds`,
    `rate_limit_per_minute`, `advance()`, `create_job()`, `set_status()`, `go_down()`; and read
    `jobs()`, `job_inputs()`, `stats()`, `request_paths()`. `reset()` puts all of it back.
    """

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
        # Guards `faults` being replaced; subclasses may guard their own additions with it too.
        self._lock = threading.Lock()
        self.verbose = verbose
        self.faults = Faults()
        self.output_bytes = 0  # how large finished outputs are (0: the sample video as it is)
        self.store = Store(job_seconds=job_seconds, rate_limit_per_minute=rate_limit_per_minute)
        self.traffic = Traffic()
        self.dice = FaultDice(seed)
        self.media = load_media()
        self.site = Site(
            [
                ApiArea(self, self.store, self.traffic, self.dice),
                FilesArea(self.media, self.store.is_completed, lambda: self.faults.outputs, lambda: self.output_bytes),
                ControlArea(self),
            ],
            self.log,
        )
        self.host = host
        listener = Listener(host, port, self.site)  # listening from here on, so `port` is known before start()
        self.port: int = listener.port
        self._reachability = Reachability(listener, lambda: Listener(self.host, self.port, self.site))

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
        return file_url(self.root_url, SAMPLE_VIDEO)

    @property
    def sample_audio_url(self) -> str:
        return file_url(self.root_url, SAMPLE_AUDIO_WAV)

    @property
    def sample_audio_mp3_url(self) -> str:
        return file_url(self.root_url, SAMPLE_AUDIO_MP3)

    # ----------------------------------------------------------------- lifecycle and outage

    def start(self) -> None:
        """Serve in a background daemon thread; returns once the socket is listening."""
        self._reachability.start()

    def serve_forever(self) -> None:
        """Serve until stop() is called from elsewhere or a KeyboardInterrupt arrives."""
        self.start()
        try:
            while not self._reachability.wait_stopped(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def stop(self) -> None:
        """Shut down, close the listening socket and every open connection. Idempotent."""
        self._reachability.stop()

    def __enter__(self) -> SandboxServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def is_down(self) -> bool:
        return self._reachability.is_down

    def go_down(self, *, seconds: float | None = None) -> None:
        """Refuse every connection until come_up(), or for `seconds` (then back by itself)."""
        self._reachability.go_down(seconds=seconds)

    def come_up(self) -> None:
        """Listen again, on the same port. Does nothing if the sandbox is up."""
        self._reachability.come_up()

    # ----------------------------------------------------------------- settings

    @property
    def job_seconds(self) -> float:
        """How long a job takes from creation to done (a third of it queued), in simulated seconds."""
        return self.store.job_seconds

    @job_seconds.setter
    def job_seconds(self, seconds: float) -> None:
        self.store.job_seconds = seconds

    @property
    def rate_limit_per_minute(self) -> int:
        """Generation requests per token in any 60 s of real time; 0 or less: unlimited."""
        return self.store.rate_limit_per_minute

    @rate_limit_per_minute.setter
    def rate_limit_per_minute(self, limit: int) -> None:
        self.store.rate_limit_per_minute = limit

    @property
    def clock_offset(self) -> float:
        """Seconds advance() has moved the simulated clock since the last reset()."""
        return self.store.clock_offset

    def set_faults(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Change some fault knobs from untrusted input (ValueError when odd); returns all of them."""
        with self._lock:
            self.faults = merge_faults(self.faults, changes)
            return asdict(self.faults)

    # ----------------------------------------------------------------- test helpers

    def reset(self) -> None:
        """Forget jobs (so their outputs too), rate-limit windows, faults, clock offset, output size and stats;
        end an outage."""
        self.come_up()
        self.store.reset()
        self.output_bytes = 0
        self.traffic.reset()
        self.dice.reseed()
        with self._lock:
            self.faults = Faults()

    def advance(self, seconds: float) -> None:
        """Move the simulated clock (job progression only) forward."""
        self.store.advance(seconds)

    def add_token(self, token: str, name: str, *, quota_used_up: bool = False) -> None:
        """Register another working token (its own account). Survives reset()."""
        self.store.add_account(token, Account(name, quota_used_up=quota_used_up))

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
        if self.store.account(token) is None:
            raise ValueError("unknown token")
        spec = JobSpec(video_url, audio_url, reference_id, disable_active_speaker_detection)
        job = self.store.create_job(token, spec)
        return lipsync_request(job, self.store.now(), self.root_url)

    def set_status(self, job_id: str, status: str, *, error_message: str | None = None) -> None:
        """Force a job's status string (e.g. an unknown "rendering"); it sticks. KeyError for an unknown id."""
        self.store.force_status(job_id, status, error_message=error_message)

    def jobs(self, token: str = DEMO_TOKEN) -> list[dict[str, Any]]:
        """Every job of that account as LipsyncRequest dicts, oldest first."""
        jobs, now = self.store.jobs_of(token), self.store.now()
        return [lipsync_request(job, now, self.root_url) for job in jobs]

    def job_inputs(self, job_id: str) -> dict[str, Any]:
        """What a job was made from. The API never reports this; tests check what DubDash sent."""
        spec = self.store.job(job_id).spec
        return {
            "video_url": spec.video_url,
            "audio_url": spec.audio_url,
            "disable_active_speaker_detection": spec.disable_active_speaker_detection,
            "reference_id": spec.reference_id,
        }

    def request_paths(self) -> list[str]:
        """The paths of the latest /api requests exactly as they arrived (percent-encoding and dot segments
        untouched, query strings left out), oldest first."""
        return self.traffic.paths()

    def stats(self) -> dict[str, int]:
        return self.traffic.stats()

    def state(self) -> dict[str, Any]:
        """What GET /_sandbox/state shows: no tokens, account display names only."""
        now = self.store.now()
        counts = self.store.counts(now)
        return {
            "stats": self.traffic.stats(),
            "jobs": {"total": counts.total, "by_status": counts.by_status, "by_account": counts.by_account},
            "faults": asdict(self.faults),
            "job_seconds": self.job_seconds,
            "rate_limit_per_minute": self.rate_limit_per_minute,
            "clock_offset_seconds": self.clock_offset,
            "simulated_now": iso_time(now),
        }

    # ----------------------------------------------------------------- what the API asks of it

    def take_rate_slot(self, token: str) -> None:
        """Let one generation request of that token into its rate window, or raise the contract's 429."""
        self._take_rate_slot(token)

    def _take_rate_slot(self, token: str) -> None:
        # The one overridable step between the API and the store: bench/run.py's CountingSandbox
        # overrides it to count admitted and refused sends.
        retry_after = self.store.take_rate_slot(token)
        if retry_after is not None:
            raise rate_limited(retry_after)

    def log(self, line: str) -> None:
        if self.verbose:
            sys.stderr.write(f"[sandbox] {line}\n")
            sys.stderr.flush()


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
    if SAMPLE_AUDIO_MP3 in sandbox.media:
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

    def on_signal(signum: int, frame: FrameType | None) -> None:
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
