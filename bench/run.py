"""DubDash's benchmarks: `make bench` (or `.venv/bin/python bench/run.py`).

Prints one table and exits non-zero when a target is missed or a benchmark finds wrong results.

Every benchmark is a function registered with @benchmark("name"): it receives a Context (the running
sandbox) and returns Rows. Adding a benchmark means writing one more such function; the set-up, the
table and the exit code are shared.

The benchmarks run in a throw-away database (a temporary SQLite file, or, when the caller set
DATABASE_URL, e.g. `scripts/with-postgres .venv/bin/python bench/run.py`, a scratch database created
next to it and dropped afterwards) and against an in-process sandbox, never against the real API.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import time
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
    os.environ.setdefault("DEBUG", "true")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{TMP_DIR / 'bench.sqlite3'}")
    os.environ.setdefault("LOG_LEVEL", "WARNING")  # the table is the output, not the worker's log lines
    os.environ["CHAMELAION_API_KEY"] = ""  # sandbox mode


configure_environment()

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from submissions import services, tracking  # noqa: E402
from submissions.models import Submission  # noqa: E402
from submissions.sandbox import SandboxServer  # noqa: E402

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
            state=State.QUEUED if in_flight else services.state_for(job["status"]),
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
        expected_state = services.state_for(job["status"])
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
        return "  ".join(value.ljust(width) for value, width in zip(values, widths)).rstrip()

    return "\n".join([line(header), line(tuple("-" * w for w in widths)), *map(line, cells)])


def main() -> int:
    print(f"DubDash benchmarks on {connection.vendor}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    rows: list[Row] = []
    errors: list[str] = []
    with scratch_database(), running_sandbox() as sandbox:
        for name, function in BENCHMARKS:
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
    sys.exit(main())
