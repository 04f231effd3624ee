"""DubDash's benchmarks: `make bench` (or `.venv/bin/python bench/run.py`).

Prints one table and exits non-zero when a target is missed or a benchmark finds wrong results.

Every benchmark is a function registered with @benchmark("name"): it receives a Context (the running
sandbox) and returns Rows. Adding a benchmark means writing one more such function; the set-up, the
table and the exit code are shared.

The benchmarks run in a throw-away database (a temporary SQLite file, or, when the caller set
DATABASE_URL, e.g. `scripts/with-postgres .venv/bin/python bench/run.py`, a scratch database created
next to it and dropped afterwards) and against an in-process sandbox, never against the real API. The
outbox benchmarks also start real `manage.py run_worker` processes on that scratch database.

`bench/run.py drain chaos` runs only the benchmarks whose name contains one of the words.
"""

from __future__ import annotations

import atexit
import logging
import os
import random
import secrets
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TMP_DIR = Path(tempfile.mkdtemp(prefix="dubdash-bench-"))
atexit.register(shutil.rmtree, TMP_DIR, ignore_errors=True)


def configure_environment() -> None:
    """Env defaults, before Django reads its settings. The caller's own values win, except the API key:
    a benchmark must never send thousands of calls to the real, paid API."""
    sys.path.insert(0, str(ROOT))  # run as a script, bench/ is on the path but the project is not
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dubdash.settings")
    # Production-like: DEBUG off (cached templates, no query log), so page timings mean something.
    # Plain HTTP in-process, so the HTTPS-only switches are off.
    os.environ.setdefault("DEBUG", "false")
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    for name in ("SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"):
        os.environ.setdefault(name, "false")
    os.environ.setdefault("SECURE_HSTS_SECONDS", "0")
    os.environ.setdefault("ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{TMP_DIR / 'bench.sqlite3'}")
    os.environ.setdefault("LOG_LEVEL", "WARNING")  # the table is the output, not the worker's log lines
    os.environ.setdefault("MEDIA_ROOT", str(TMP_DIR / "media"))  # kept outputs of the benchmarks, deleted after
    os.environ["CHAMELAION_API_KEY"] = ""  # sandbox mode


configure_environment()

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Count, Q  # noqa: E402
from django.test.utils import CaptureQueriesContext, override_settings  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.workers import WebPath, Worker, worker_env  # noqa: E402
from submissions.models import Batch, Submission  # noqa: E402
from submissions.sandbox import SandboxServer  # noqa: E402
from submissions.sandbox.server import ApiError  # noqa: E402
from submissions.tracking import services as tracking  # noqa: E402
from submissions.tracking import snapshots  # noqa: E402

State = Submission.State


# --- Results and the registry ---------------------------------------------------------------------


class BenchError(Exception):
    """A benchmark produced wrong results: its timings mean nothing, so the run fails."""


@dataclass
class Row:
    benchmark: str
    scenario: str
    measure: str
    value: str
    target: str = ""
    passed: bool | None = None  # None: informative, no target

    @property
    def verdict(self) -> str:
        return "" if self.passed is None else ("PASS" if self.passed else "FAIL")


@dataclass
class Context:
    sandbox: SandboxServer


Benchmark = Callable[[Context], list[Row]]
BENCHMARKS: list[tuple[str, Benchmark]] = []


def benchmark(name: str) -> Callable[[Benchmark], Benchmark]:
    def register(function: Benchmark) -> Benchmark:
        BENCHMARKS.append((name, function))
        return function

    return register


# --- Benchmark: one worker round over 1,000 jobs in flight -----------------------------------------

ROUND_JOBS = 1000
OLD_FINISHED_JOBS = 500  # older history: the list endpoint pages through it too
LATENCY = 0.02  # seconds per API call, a realistic round trip to a hosted API
JOB_SECONDS = 60.0  # long enough that no job changes state between the round and the check below
MAX_API_CALLS = 50
MAX_OVERHEAD_SECONDS = 5.0
ROUND_BENCH = f"worker refresh round, {ROUND_JOBS:,} jobs in flight"


@dataclass
class RoundScenario:
    name: str
    # Simulated seconds to advance after creating each batch of the in-flight jobs (the batches split
    # them evenly): jobs are queued for JOB_SECONDS/3, then processing until JOB_SECONDS, then completed.
    advance_after_batches: tuple[float, ...]
    history: int = OLD_FINISHED_JOBS  # finished jobs on the account before these


ROUND_SCENARIOS = [
    RoundScenario("all completed", (JOB_SECONDS + 1,)),
    RoundScenario("half processing, half queued", (JOB_SECONDS / 2, 0)),
    # The list pages through the whole history: the round must not cost more as the account grows.
    RoundScenario("all completed, 20,000 older jobs", (JOB_SECONDS + 1,), history=20_000),
]


@benchmark(ROUND_BENCH)
def worker_round(ctx: Context) -> list[Row]:
    rows = []
    for scenario in ROUND_SCENARIOS:
        rows += run_round_scenario(ctx.sandbox, scenario)
    return rows


def run_round_scenario(sandbox: SandboxServer, scenario: RoundScenario) -> list[Row]:
    start_clean(sandbox)
    owner = get_user_model().objects.create_user(username="bench-owner")
    # A real account's history is spread over time, not created in one millisecond.
    history = create_sandbox_jobs(sandbox, scenario.history, prefix="bench-old", spacing=1.0)
    sandbox.advance(JOB_SECONDS + 1)  # the history is finished before today's jobs start
    add_submissions(sandbox, owner, sandbox_jobs(sandbox, history), in_flight=False)
    in_flight = create_in_flight_jobs(sandbox, scenario)
    add_submissions(sandbox, owner, in_flight, in_flight=True)
    history_before = stored_rows(history)

    sandbox.faults.latency = LATENCY  # only now: setting up is not what is measured
    requests_before = sandbox.stats()["requests"]
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        report = tracking.refresh_round()
        wall = time.perf_counter() - started
    sandbox.faults.latency = 0.0
    served = sandbox.stats()["requests"] - requests_before

    try:
        matching = check_round(sandbox, report, served=served, expected_ids=[job["id"] for job in in_flight])
        if stored_rows(history) != history_before:
            raise BenchError("the round changed finished jobs it had no reason to touch")
    except BenchError as error:
        raise BenchError(f"scenario {scenario.name!r}: {error}") from error

    latency_total = report.api_calls * LATENCY
    overhead = wall - latency_total
    stages = ", ".join(f"{n} {status}" for status, n in sorted(count_statuses(in_flight).items()))

    def row(measure: str, value: str, target: str = "", passed: bool | None = None) -> Row:
        return Row(ROUND_BENCH, scenario.name, measure, value, target, passed)

    return [
        row("jobs asked about", f"{report.jobs:,}"),
        row("their upstream status", f"{stages} (+{scenario.history:,} older, finished)"),
        row("API calls", f"{report.api_calls} (sandbox served {served})", f"<= {MAX_API_CALLS}",
            report.api_calls <= MAX_API_CALLS),
        row("rows updated", f"{report.updated:,}"),
        row("rows matching the sandbox", f"{matching:,}/{len(in_flight):,}", "all", matching == len(in_flight)),
        row("database queries", f"{len(queries):,}"),
        row("wall time", f"{wall:.2f} s"),
        row("simulated API latency", f"{latency_total:.2f} s ({report.api_calls} x {LATENCY:g} s)"),
        row("round overhead", f"{overhead:.2f} s", f"< {MAX_OVERHEAD_SECONDS:g} s", overhead < MAX_OVERHEAD_SECONDS),
    ]


def start_clean(sandbox: SandboxServer) -> None:
    """Each scenario starts from an empty account and an empty database."""
    sandbox.reset()
    Submission.objects.all().delete()
    Batch.objects.all().delete()
    get_user_model().objects.all().delete()


def create_sandbox_jobs(sandbox: SandboxServer, count: int, *, prefix: str, spacing: float = 0.0) -> list[str]:
    ids = []
    for n in range(count):
        job = sandbox.create_job(
            video_url=sandbox.sample_video_url, audio_url=sandbox.sample_audio_url, reference_id=f"{prefix}-{n}"
        )
        ids.append(job["id"])
        if spacing:
            sandbox.advance(spacing)
    return ids


def create_in_flight_jobs(sandbox: SandboxServer, scenario: RoundScenario) -> list[dict]:
    """The jobs the round will ask about, created in batches with the clock advanced after each, so
    that the batches are at different stages; returned as the sandbox reports them now."""
    batches = len(scenario.advance_after_batches)
    ids: list[str] = []
    for number, seconds in enumerate(scenario.advance_after_batches):
        size = ROUND_JOBS // batches + (1 if number < ROUND_JOBS % batches else 0)
        ids += create_sandbox_jobs(sandbox, size, prefix=f"bench-batch{number}")
        sandbox.advance(seconds)
    return sandbox_jobs(sandbox, ids)


def sandbox_jobs(sandbox: SandboxServer, ids: list[str]) -> list[dict]:
    by_id = {job["id"]: job for job in sandbox.jobs()}
    return [by_id[job_id] for job_id in ids]


def count_statuses(jobs: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for job in jobs:
        counts[job["status"]] = counts.get(job["status"], 0) + 1
    return counts


def add_submissions(sandbox: SandboxServer, owner, jobs: list[dict], *, in_flight: bool) -> None:
    """DubDash's rows for these jobs. In flight: all still "queued" as far as DubDash knows, and due.
    Finished: the history, synced long ago and never due, so the round's "what is due" query runs on
    a realistic table."""
    now = timezone.now()
    Submission.objects.bulk_create(
        Submission(
            created_by=owner,
            request_id=job["id"],
            reference_id=job["reference_id"],
            video_url=sandbox.sample_video_url,
            audio_url=sandbox.sample_audio_url,
            state=State.QUEUED if in_flight else snapshots.state_for(job["status"]),
            upstream_status="queued" if in_flight else job["status"],
            sent_at=now - (timedelta(minutes=1) if in_flight else timedelta(days=1)),
            last_synced_at=None if in_flight else now - timedelta(days=1),
            next_poll_at=now - timedelta(seconds=1) if in_flight else None,
        )
        for job in jobs
    )


def stored_rows(request_ids: list[str]) -> list[tuple]:
    rows = Submission.objects.filter(request_id__in=request_ids).order_by("pk")
    return list(rows.values_list("pk", "state", "upstream_status", "last_synced_at", "next_poll_at", "poll_lease"))


def check_round(sandbox: SandboxServer, report: tracking.RoundReport, *, served: int, expected_ids: list[str]) -> int:
    """Timings of a round that got things wrong are worthless: check that it did the whole job, and
    right. Returns how many rows match the sandbox (all of them, or BenchError)."""
    problems = []
    if report.failed:
        problems.append(f"the round stopped early: {report.error}")
    if report.jobs != len(expected_ids):
        problems.append(f"the round asked about {report.jobs} jobs, not {len(expected_ids)}")
    if report.api_calls != served:
        problems.append(f"the round counted {report.api_calls} API calls but the sandbox served {served}")
    upstream = {job["id"]: job for job in sandbox.jobs()}
    matching, wrong = 0, []
    for row in Submission.objects.filter(request_id__in=expected_ids):
        job = upstream[row.request_id]
        expected_state = snapshots.state_for(job["status"])
        if (row.state, row.upstream_status) != (expected_state, job["status"]):
            wrong.append(f"{row.request_id}: stored {row.state}/{row.upstream_status!r}, sandbox says {job['status']!r}")
        elif row.last_synced_at is None or row.poll_lease:
            wrong.append(f"{row.request_id}: not marked synced, or still leased")
        elif row.output_url != job.get("output_url", ""):
            wrong.append(f"{row.request_id}: output_url {row.output_url!r}, sandbox says {job.get('output_url')!r}")
        else:
            matching += 1
    if wrong:
        problems.append(f"{len(wrong)} rows disagree with the sandbox, e.g. " + "; ".join(wrong[:3]))
    if problems:
        raise BenchError("; ".join(problems))
    return matching


# --- The deployment in miniature: worker processes, the web path, a sandbox that counts -----------------

NOT_DONE = (State.PENDING, State.SENDING, State.SEND_FAILED)  # not (yet) sent, or given up
SAMPLE_INPUTS = {"video_url": "https://cdn.example.com/episode.mp4", "audio_url": "https://cdn.example.com/episode-de.wav"}


class CountingSandbox(SandboxServer):
    """The sandbox, also noting when it let each generation request into its rate window, and how many
    it refused for going over its rate limit (its status_429 counter includes the 429s injected as faults)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.accepted_at: list[float] = []
        self.over_limit = 0

    def _take_rate_slot(self, token: str) -> None:
        try:
            super()._take_rate_slot(token)
        except ApiError as error:
            if error.status == 429:
                with self._lock:
                    self.over_limit += 1
            raise
        with self._lock:
            self.accepted_at.append(time.monotonic())

    def busiest_minute(self) -> int:
        """The most generation requests accepted within any 60 s: what the rate limit is compared with."""
        with self._lock:
            times = sorted(self.accepted_at)
        most = first = 0
        for last, moment in enumerate(times):
            while moment - times[first] >= 60:
                first += 1
            most = max(most, last - first + 1)
        return most


@contextmanager
def counting_sandbox(**options) -> Iterator[CountingSandbox]:
    sandbox = CountingSandbox(port=0, **options)
    sandbox.start()
    try:
        yield sandbox
    finally:
        sandbox.stop()


@contextmanager
def quiet_logs() -> Iterator[None]:
    """The web path logs every failed send; under chaos that is thousands of lines above the table."""
    logger = logging.getLogger("submissions")
    previous = logger.level
    logger.setLevel("ERROR")
    try:
        yield
    finally:
        logger.setLevel(previous)


def stop_workers(workers: list[Worker]) -> tuple[bool, str]:
    """Stop them cleanly; (clean, what to show): every one exited 0 without a traceback in its log."""
    codes = [worker.stop() for worker in workers]
    crashed = [worker.name for worker in workers if "Traceback" in worker.output()]
    clean = all(code == 0 for code in codes) and not crashed
    value = f"exit codes {', '.join(str(code) for code in codes)}; " + (
        f"tracebacks in {', '.join(crashed)} (logs in {TMP_DIR})" if crashed else "no tracebacks"
    )
    return clean, value


def clear_database() -> None:
    from submissions.models import Batch, Problem, RateBudget

    Submission.objects.all().delete()
    Batch.objects.all().delete()
    Problem.objects.all().delete()
    RateBudget.objects.all().delete()  # every benchmark starts with the whole burst
    get_user_model().objects.all().delete()


def queue_submissions(owner, count: int, *, prefix: str) -> list[str]:
    """`count` submissions saved and waiting to send, all due now, as a big batch or a backlog leaves them."""
    now = timezone.now()
    references = [f"{prefix}-{n}" for n in range(count)]
    Submission.objects.bulk_create(
        Submission(created_by=owner, reference_id=reference, next_attempt_at=now, created_at=now, **SAMPLE_INPUTS)
        for reference in references
    )
    return references


def unsettled() -> Q:
    return Q(request_id__isnull=True) | Q(state__in=NOT_DONE)


def describe_run(sandbox: SandboxServer, workers: list[Worker], why: str) -> str:
    """Why a run failed, with what is needed to see it: states, a few unsettled rows, the workers' logs."""
    states = dict(Submission.objects.values_list("state").annotate(n=Count("pk")).values_list("state", "n"))
    now = timezone.now()
    lines = [why, f"submissions by state: {states}", f"sandbox: {len(sandbox.jobs())} jobs, {sandbox.stats()}"]
    for row in Submission.objects.filter(unsettled()).order_by("pk")[:5]:
        next_in = (row.next_attempt_at - now).total_seconds() if row.next_attempt_at else None
        lines.append(f"  {row.reference_id}: {row.state}, {row.send_attempts} attempts, next in {next_in} s, "
                     f"outcome unknown since {row.outcome_unknown_since}, {row.last_error[:90]!r}")
    for worker in workers:
        lines.append(f"  {worker.name} (alive: {worker.alive()}, log {worker.log_path}), last lines:")
        lines += [f"    {line}" for line in worker.output().splitlines()[-10:]]
    return "\n".join(lines)


def wait_for(condition: Callable[[], bool], *, seconds: float, sandbox: SandboxServer, workers: list[Worker],
             what: str) -> float:
    """Poll until `condition`; returns the seconds it took. BenchError at the deadline, or at once when a
    worker exits by itself."""
    started = time.monotonic()
    while not condition():
        for worker in workers:
            if worker.process is not None and not worker.alive():
                raise BenchError(describe_run(sandbox, workers, f"{worker.name} exited by itself "
                                                                f"(code {worker.process.returncode})"))
        if time.monotonic() - started > seconds:
            raise BenchError(describe_run(sandbox, workers, f"{what}: not done after {seconds:g} s"))
        time.sleep(0.1)
    return time.monotonic() - started


@dataclass
class Upstream:
    """How the sandbox's jobs and DubDash's submissions compare."""

    jobs: int
    submissions: int
    once: int  # submissions with exactly one job upstream, whose request id they hold
    duplicated: dict[str, int]  # reference id -> jobs, where more than one
    strangers: int  # jobs whose reference id no submission has
    with_request_id: int
    stuck: dict[str, int]  # state -> submissions not sent, still sending, given up, or not found upstream

    @property
    def exactly_once(self) -> bool:
        return self.jobs == self.submissions == self.once and not self.duplicated and not self.strangers

    def per_reference(self) -> str:
        if not self.duplicated and not self.strangers:
            return f"1 job each ({self.once:,} of {self.submissions:,} hold its request id)"
        twice = ", ".join(f"{reference} x{n}" for reference, n in list(self.duplicated.items())[:3])
        return f"{len(self.duplicated)} duplicated ({twice}), {self.strangers} unknown; {self.once:,} exactly once"


def compare_with_sandbox(sandbox: SandboxServer) -> Upstream:
    jobs = sandbox.jobs()
    by_reference: dict[str, list[str]] = {}
    for job in jobs:
        by_reference.setdefault(job.get("reference_id", ""), []).append(job["id"])
    rows = list(Submission.objects.values_list("reference_id", "request_id", "state"))
    references = {reference for reference, _, _ in rows}
    once = sum(1 for reference, request_id, _ in rows if by_reference.get(reference) == [request_id])
    stuck = Counter(state for _, _, state in rows if state in (*NOT_DONE, State.MISSING))
    return Upstream(
        jobs=len(jobs),
        submissions=len(rows),
        once=once,
        duplicated={reference: len(ids) for reference, ids in by_reference.items() if len(ids) > 1},
        strangers=sum(len(ids) for reference, ids in by_reference.items() if reference not in references),
        with_request_id=sum(1 for _, request_id, _ in rows if request_id),
        stuck=dict(stuck),
    )


# --- Benchmark: draining a full outbox at the rate limit --------------------------------------------

DRAIN_SUBMISSIONS = 600
DRAIN_RATE = 600  # a minute: the sandbox's limit, and DubDash's budget
DRAIN_TARGET_SECONDS = 1.1 * 60 * DRAIN_SUBMISSIONS / DRAIN_RATE
DRAIN_DEADLINE_SECONDS = 240
DRAIN_BENCH = f"outbox drain, {DRAIN_SUBMISSIONS} waiting, 2 worker processes"
DRAIN_DEPLOYMENT = {  # production's defaults (not .env's), but for the rate
    "SEND_RATE_LIMIT_PER_MINUTE": DRAIN_RATE,
    "WORKER_INTERVAL_SECONDS": 0.5,
    "CHAMELAION_CONNECT_TIMEOUT": 5,
    "CHAMELAION_READ_TIMEOUT": 30,
    "CHAMELAION_SETTLE_SECONDS": 60,
    "SEND_RETRY_BASE_SECONDS": 2,
    "SEND_RETRY_MAX_SECONDS": 300,
    "SEND_MAX_ATTEMPTS": 8,
    "SEND_MAX_AGE_SECONDS": 3600,
    "POLL_MIN_SECONDS": 3,
    "POLL_MAX_SECONDS": 120,
}


@benchmark(DRAIN_BENCH)
def outbox_drain(ctx: Context) -> list[Row]:
    clear_database()
    owner = get_user_model().objects.create_user(username="bench-drain")
    with counting_sandbox(job_seconds=20, rate_limit_per_minute=DRAIN_RATE, seed=600) as sandbox, override_settings(
        CHAMELAION_SANDBOX_URL=sandbox.base_url, **DRAIN_DEPLOYMENT
    ):
        sandbox.faults.latency, sandbox.faults.latency_jitter = LATENCY, LATENCY  # 20 to 40 ms a call
        queue_submissions(owner, DRAIN_SUBMISSIONS, prefix="bench-drain")
        env = worker_env(connection=connection, sandbox_url=sandbox.base_url, deployment=DRAIN_DEPLOYMENT)
        workers = [Worker(f"drain-worker-{n}", env, TMP_DIR) for n in range(2)]
        try:
            for worker in workers:
                worker.start()
            took = wait_for(lambda: not Submission.objects.filter(request_id__isnull=True).exists(),
                            seconds=DRAIN_DEADLINE_SECONDS, sandbox=sandbox, workers=workers, what="drain")
            clean, exits = stop_workers(workers)
        finally:
            for worker in workers:
                worker.kill()
        upstream = compare_with_sandbox(sandbox)
        stats = sandbox.stats()
        busiest = sandbox.busiest_minute()
        first, last = min(sandbox.accepted_at), max(sandbox.accepted_at)
    clear_database()

    def row(measure: str, value: str, target: str = "", passed: bool | None = None) -> Row:
        return Row(DRAIN_BENCH, f"limit {DRAIN_RATE}/min, {LATENCY * 1000:g}-{LATENCY * 2000:g} ms a call", measure,
                   value, target, passed)

    return [
        row("all sent (each has a request id)", f"{took:.1f} s from the workers' start",
            f"<= {DRAIN_TARGET_SECONDS:g} s", took <= DRAIN_TARGET_SECONDS),
        row("first to last job created", f"{last - first:.1f} s"),
        row("busiest 60 s at the sandbox", f"{busiest} generation requests (limit {DRAIN_RATE})"),
        row("429 answers", f"{stats['status_429']}", "0", stats["status_429"] == 0),
        row("jobs created in the sandbox", f"{upstream.jobs:,}", f"= {DRAIN_SUBMISSIONS}",
            upstream.jobs == DRAIN_SUBMISSIONS),
        row("jobs per reference id", upstream.per_reference(), "1 each, matching", upstream.exactly_once),
        row("API calls", f"{stats['requests']:,} ({stats['list']} list, {stats['get']} get: the status poller)"),
        row("worker processes", exits, "clean", clean),
    ]


# --- Benchmark: full-size chaos -------------------------------------------------------------------------

CHAOS_QUEUED = 300  # waiting in the outbox when the workers start
CHAOS_FROM_THE_WEB = 200  # submitted through the web path while they run
CHAOS_TOTAL = CHAOS_QUEUED + CHAOS_FROM_THE_WEB
CHAOS_RATE = 600
CHAOS_WEB_THREADS = 3
CHAOS_KILL_AT = 0.4  # SIGKILL a worker once this share is sent
CHAOS_DEADLINE_SECONDS = 600
CHAOS_BENCH = f"chaos, {CHAOS_TOTAL} submissions, 2 workers + the web path"
CHAOS_FAULTS = {
    "rate_drop_after_create": 0.2,  # the job is made, the answer never comes
    "rate_500": 0.1,
    "rate_429": 0.1,  # as if another client used the account's budget: Retry-After 1
    "latency": 0.01,
    "latency_jitter": 0.15,
    "hang_seconds": 1.5,  # the slow answers fed in below: beyond the read timeout, the job made afterwards
}
CHAOS_SLOW_ANSWER_EVERY = (0.5, 2.0)  # seconds between two, at random
CHAOS_DEPLOYMENT = {
    "SEND_RATE_LIMIT_PER_MINUTE": CHAOS_RATE,
    "WORKER_INTERVAL_SECONDS": 0.2,
    "CHAMELAION_CONNECT_TIMEOUT": 0.5,
    "CHAMELAION_READ_TIMEOUT": 1.0,
    # Longer than any job can take to appear after its POST here: hang_seconds plus latency.
    "CHAMELAION_SETTLE_SECONDS": 3,
    "SEND_RETRY_BASE_SECONDS": 0.2,
    "SEND_RETRY_MAX_SECONDS": 2,
    "SEND_MAX_ATTEMPTS": 1000,  # never give up: the point is ending with every job sent exactly once
    "SEND_MAX_AGE_SECONDS": 3600,
    "POLL_MIN_SECONDS": 1,
    "POLL_MAX_SECONDS": 5,
}


def feed_slow_answers(sandbox: SandboxServer, stop: threading.Event) -> None:
    """Now and then one answer (a send, a lookup or a poll) comes after the client has given up."""
    rng = random.Random(7)
    while not stop.wait(rng.uniform(*CHAOS_SLOW_ANSWER_EVERY)):
        sandbox.faults.script.append("timeout")


@benchmark(CHAOS_BENCH)
def chaos(ctx: Context) -> list[Row]:
    clear_database()
    owner = get_user_model().objects.create_user(username="bench-chaos")
    with counting_sandbox(job_seconds=20, rate_limit_per_minute=CHAOS_RATE, seed=500) as sandbox, override_settings(
        CHAMELAION_SANDBOX_URL=sandbox.base_url, **CHAOS_DEPLOYMENT
    ), quiet_logs():
        for name, value in CHAOS_FAULTS.items():
            setattr(sandbox.faults, name, value)
        queue_submissions(owner, CHAOS_QUEUED, prefix="bench-chaos-queued")
        env = worker_env(connection=connection, sandbox_url=sandbox.base_url, deployment=CHAOS_DEPLOYMENT)
        workers = [Worker(f"chaos-worker-{n}", env, TMP_DIR) for n in range(2)]
        web = WebPath(owner, [f"bench-chaos-web-{n}" for n in range(CHAOS_FROM_THE_WEB)], threads=CHAOS_WEB_THREADS,
                      inputs=SAMPLE_INPUTS, new_work_share=0.4, largest_batch=8, pace=(0.01, 0.1))
        stop_feeding = threading.Event()
        feeder = threading.Thread(target=feed_slow_answers, args=(sandbox, stop_feeding), daemon=True)

        def settled() -> bool:
            return (web.created_all and Submission.objects.count() == CHAOS_TOTAL
                    and not Submission.objects.filter(unsettled()).exists())

        def wait(condition: Callable[[], bool], what: str, seconds: float = CHAOS_DEADLINE_SECONDS) -> float:
            return wait_for(condition, seconds=seconds, sandbox=sandbox, workers=workers, what=what)

        try:
            started = time.monotonic()
            for worker in workers:
                worker.start()
            web.start()
            feeder.start()
            wait(lambda: Submission.objects.filter(request_id__isnull=False).count() >= CHAOS_TOTAL * CHAOS_KILL_AT,
                 "the first part")
            interrupted = kill_in_the_middle_of_a_send(workers[0], web, wait)
            wait(settled, "settling")
            took = time.monotonic() - started
            stop_feeding.set()
            if not web.finish():
                raise BenchError("a web path thread hung")
            clean, exits = stop_workers(workers)
        finally:
            stop_feeding.set()
            web.stop.set()
            for worker in workers:
                worker.kill()
            for thread in web.threads:
                thread.join(timeout=30)
        if web.errors:
            raise BenchError("the web path raised:\n" + "\n".join(web.errors[:3]))
        upstream = compare_with_sandbox(sandbox)
        stats = sandbox.stats()
        over_limit = sandbox.over_limit
        slow = stats["faults"] - stats["dropped"] - stats["status_500"] - (stats["status_429"] - over_limit)
        busiest = sandbox.busiest_minute()
        stuck_after_kill = Submission.objects.filter(reference_id__in=interrupted)
        interrupted_ok = sum(1 for row in stuck_after_kill if row.request_id and row.send_attempts >= 2)
    clear_database()

    def row(measure: str, value: str, target: str = "", passed: bool | None = None) -> Row:
        return Row(CHAOS_BENCH, "drop 20 %, 500 10 %, 429 10 %, random latency, SIGKILL", measure, value, target, passed)

    attempts = stats["requests"] - stats["get"] - stats["list"] - stats["users_me"] - stats["health"]
    stuck = sum(upstream.stuck.values())
    return [
        row("time to settle", f"{took:.1f} s (all {CHAOS_TOTAL} sent, from the workers' start)"),
        row("sandbox jobs", f"{upstream.jobs:,}", f"= {CHAOS_TOTAL}", upstream.jobs == CHAOS_TOTAL),
        row("jobs per reference id", upstream.per_reference(), "1 each, matching", upstream.exactly_once),
        row("submissions with a request id", f"{upstream.with_request_id:,}", f"= {CHAOS_TOTAL}",
            upstream.with_request_id == CHAOS_TOTAL),
        row("stuck (waiting, sending, given up, not found)", f"{stuck} {upstream.stuck or ''}".strip(), "0", stuck == 0),
        row("API calls", f"{stats['requests']:,}: {attempts:,} sends, {stats['get']} lookups/gets, {stats['list']} lists"),
        row("faults met", f"{stats['dropped']} dropped after create, {stats['status_500']} x 500, {slow} slow"),
        row("429s seen", f"{stats['status_429']} ({stats['status_429'] - over_limit} injected, {over_limit} over the "
                         f"rate limit; busiest 60 s: {busiest} sends)", "0 over the limit", over_limit == 0),
        row("worker SIGKILLed mid-send", f"{workers[0].runs - 1} kill(s), {len(interrupted)} send(s) interrupted, "
                                         f"{interrupted_ok} of them settled by a later attempt",
            "all settled", interrupted_ok == len(interrupted) if interrupted else None),
        row("sends attempted by each worker", ", ".join(f"{w.name}: {w.sends_attempted()}" for w in workers)),
        row("web path calls", ", ".join(f"{n} {name}" for name, n in sorted(web.calls.items()))),
        row("worker processes", exits, "clean", clean),
    ]


def kill_in_the_middle_of_a_send(victim: Worker, web: WebPath, wait: Callable[..., float]) -> list[str]:
    """SIGKILL the victim while a worker is sending, then start it again; a few times if need be (the
    other worker may have been the one sending). The web path pauses around the kill, so the two workers
    share the budget. A live process ends any send within 2 x (connect + read timeout) = 3 s, so a row
    still "sending" 3.5 s after the kill, claimed before it, was the victim's. Returns the reference ids of
    the sends the kill interrupted."""

    def a_worker_is_sending() -> bool:
        return Submission.objects.filter(state=State.SENDING).exclude(reference_id__in=web.sending_now()).exists()

    for _ in range(10):
        web.pause.set()
        try:
            time.sleep(0.5)
            wait(a_worker_is_sending, "a worker's send in progress", 60)
            killed_at = timezone.now()
            victim.kill()
        finally:
            web.pause.clear()
        time.sleep(3.5)
        interrupted = list(Submission.objects.filter(state=State.SENDING, last_attempt_at__lte=killed_at)
                           .values_list("reference_id", flat=True))
        victim.start()
        if interrupted:
            return interrupted
        time.sleep(3)  # the restarted victim gets going before the next try
    return []


# --- Running and reporting ------------------------------------------------------------------------


@contextmanager
def scratch_database() -> Iterator[None]:
    """A database of the bench's own, migrated here and dropped afterwards. Never the caller's data: a
    round leases *every* due job in the database, so a bench on a real one would poll its real jobs."""
    if connection.vendor == "sqlite":
        connection.settings_dict["TEST"]["NAME"] = str(TMP_DIR / "bench-scratch.sqlite3")  # a file, not :memory:
    # create_test_db runs `migrate` (quietly at verbosity 0) on the fresh database.
    original_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        yield
    finally:
        connection.creation.destroy_test_db(original_name, verbosity=0)


@contextmanager
def running_sandbox() -> Iterator[SandboxServer]:
    sandbox = SandboxServer(port=0, job_seconds=JOB_SECONDS, rate_limit_per_minute=0)
    sandbox.start()
    previous_url = settings.CHAMELAION_SANDBOX_URL
    settings.CHAMELAION_SANDBOX_URL = sandbox.base_url
    try:
        yield sandbox
    finally:
        settings.CHAMELAION_SANDBOX_URL = previous_url
        sandbox.stop()


def render_table(rows: list[Row]) -> str:
    header = ("Benchmark", "Scenario", "Measure", "Value", "Target", "Result")
    cells = []
    previous = ("", "")
    for row in rows:
        # Repeated benchmark and scenario names are left blank: the groups are easier to read.
        bench = row.benchmark if row.benchmark != previous[0] else ""
        scenario = row.scenario if (row.benchmark, row.scenario) != previous else ""
        cells.append((bench, scenario, row.measure, row.value, row.target, row.verdict))
        previous = (row.benchmark, row.scenario)
    widths = [max(len(line[i]) for line in [header, *cells]) for i in range(len(header))]

    def line(values: tuple[str, ...]) -> str:
        return "  ".join(value.ljust(width) for value, width in zip(values, widths, strict=True)).rstrip()

    return "\n".join([line(header), line(tuple("-" * w for w in widths)), *map(line, cells)])


# --- Benchmark: the team's history with 100,000 jobs ----------------------------------------------------

HISTORY_BENCH = "team history, 100,000 jobs"


@benchmark(HISTORY_BENCH)
def team_history(ctx: Context) -> list[Row]:
    import history  # bench/history.py: seeds its own jobs and members, measures pages in-process

    start_clean(ctx.sandbox)
    return [Row(HISTORY_BENCH, *row) for row in history.run()]


# --- Benchmarks: kept outputs (the batch ZIP, copying beside polling) ------------------------------------

ZIP_BENCH = "batch ZIP download"
COPY_BENCH = "copying outputs beside polling"


@benchmark(ZIP_BENCH)
def batch_zip(ctx: Context) -> list[Row]:
    import outputs  # bench/outputs.py

    start_clean(ctx.sandbox)
    return [Row(ZIP_BENCH, *row) for row in outputs.zip_download(ctx.sandbox.base_url, TMP_DIR)]


@benchmark(COPY_BENCH)
def copying(ctx: Context) -> list[Row]:
    import outputs  # bench/outputs.py

    start_clean(ctx.sandbox)
    return [Row(COPY_BENCH, *row) for row in outputs.copying_beside_polling(LATENCY, TMP_DIR)]


def main(only: list[str]) -> int:
    print(f"DubDash benchmarks on {connection.vendor}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    selected = [(name, function) for name, function in BENCHMARKS
                if not only or any(word.lower() in name.lower() for word in only)]
    if not selected:
        print(f"No benchmark matches {' '.join(only)!r}; there are: " + "; ".join(name for name, _ in BENCHMARKS))
        return 2
    rows: list[Row] = []
    errors: list[str] = []
    with scratch_database(), running_sandbox() as sandbox:
        for name, function in selected:
            print(f"running: {name}", flush=True)
            try:
                rows += function(Context(sandbox=sandbox))
            except BenchError as error:
                errors.append(f"{name}: {error}")
                rows.append(Row(name, "", "results correct", "NO (see below)", "yes", False))
    print()
    print(render_table(rows))
    print()
    for error in errors:
        print(f"ERROR {error}")
    missed = [row for row in rows if row.passed is False]
    if missed:
        print(f"FAIL: {len(missed)} target(s) missed.")
        return 1
    print(f"PASS: all {sum(row.passed is True for row in rows)} targets met.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
