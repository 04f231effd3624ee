"""Chaos: two real `run_worker` processes and the web path send the same outbox at the same time, against
a sandbox that fails a good part of every call (20 % of creations answer nothing though the job was made,
10 % answer 500, 10 % answer 429, latency at random). One of the tests also SIGKILLs a worker in the middle
of a send and starts it again.

Whatever happens, afterwards: the sandbox holds exactly one job per submission (matched by reference id),
each submission holds that job's request id, and none is left waiting, sending or given up.

The workers are subprocesses on the test database (committed data: transaction=True) and talk to the
in-process sandbox over loopback. Every wait has a deadline; on timeout the test fails with the states
of the rows, the sandbox's counters and the workers' output. The subprocesses are always killed.

At the end, two exact scenarios the random runs rarely hit: an uncertain POST that followed a slow
lookup must be settled from when it was sent, by the same process and after a crash.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.db.models import Count, Q
from django.utils import timezone

from bench.workers import WebPath, Worker, worker_env
from submissions import chamelaion
from submissions.models import Submission
from submissions.outbox import sending

State = Submission.State
ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db(transaction=True)

QUEUED = 60  # saved before the run, waiting in the outbox
FROM_THE_WEB = 40  # submitted by the web path while the workers run
TOTAL = QUEUED + FROM_THE_WEB
WEB_THREADS = 2
WEB_INPUTS = {"video_url": "https://cdn.example.com/ep.mp4", "audio_url": "https://cdn.example.com/ep-de.wav"}
SETTLE_DEADLINE = 75.0  # seconds; a run still unsettled after this has a job stuck for good
NOT_DONE = [State.PENDING, State.SENDING, State.SEND_FAILED]

# One configuration for the whole deployment: the workers (environment) and the web path (settings).
DEPLOYMENT = {
    "CHAMELAION_CONNECT_TIMEOUT": 0.5,
    "CHAMELAION_READ_TIMEOUT": 1.0,  # above the sandbox's slowest answer: a timeout here is not the point
    "CHAMELAION_SETTLE_SECONDS": 1.0,
    "SEND_RETRY_BASE_SECONDS": 0.2,
    "SEND_RETRY_MAX_SECONDS": 2.0,
    "SEND_MAX_ATTEMPTS": 1000,  # never give up: the test is about ending with every job sent once
    "SEND_MAX_AGE_SECONDS": 3600,
    "SEND_RATE_LIMIT_PER_MINUTE": 3000,
    "POLL_MIN_SECONDS": 1,
    "POLL_MAX_SECONDS": 5,
}
SANDBOX_RATE_LIMIT = 6000  # "high enough": the budget is not what this test is about
FAULTS = {"rate_drop_after_create": 0.2, "rate_500": 0.1, "rate_429": 0.1, "latency": 0.005, "latency_jitter": 0.15}


# --- The deployment: worker processes, the web path -------------------------------------------------


# --- Waiting and checking ---------------------------------------------------------------------------


def queue(user, count: int) -> list[str]:
    now = timezone.now()
    Submission.objects.bulk_create(
        Submission(
            created_by=user,
            video_url="https://cdn.example.com/ep.mp4",
            audio_url="https://cdn.example.com/ep-fr.wav",
            reference_id=f"chaos-queued-{n}",
            next_attempt_at=now,
            created_at=now,
        )
        for n in range(count)
    )
    return [f"chaos-queued-{n}" for n in range(count)]


def sent_count() -> int:
    return Submission.objects.filter(request_id__isnull=False).count()


def is_settled(web: WebPath) -> bool:
    return (
        web.created_all
        and Submission.objects.count() == TOTAL
        and not Submission.objects.filter(Q(request_id__isnull=True) | Q(state__in=NOT_DONE)).exists()
    )


def report(sandbox, workers: list[Worker], web: WebPath, why: str) -> str:
    """Everything needed to see why a run did not settle or went wrong."""
    states = dict(Submission.objects.values_list("state").annotate(n=Count("pk")).values_list("state", "n"))
    unsettled = Submission.objects.filter(Q(request_id__isnull=True) | Q(state__in=NOT_DONE)).order_by("pk")[:10]
    lines = [
        why,
        f"submissions: {Submission.objects.count()} of {TOTAL}, {sent_count()} with a request id, by state {states}",
        f"sandbox: {len(sandbox.jobs())} jobs, stats {sandbox.stats()}",
        f"web path: calls {dict(web.calls)}, all created: {web.created_all}, errors: {len(web.errors)}",
        "some unsettled rows:",
    ]
    now = timezone.now()
    lines += [
        f"  {row.reference_id}: {row.state}, attempts {row.send_attempts}, next at "
        f"{(row.next_attempt_at - now).total_seconds() if row.next_attempt_at else None} s, last attempt "
        f"{(now - row.last_attempt_at).total_seconds() if row.last_attempt_at else None} s ago, "
        f"unknown since {row.outcome_unknown_since}, error {row.last_error[:100]!r}"
        for row in unsettled
    ]
    for worker in workers:
        lines.append(f"--- {worker.name} (alive: {worker.alive()}), last lines:")
        lines.extend(worker.output().splitlines()[-25:])
    lines.extend(web.errors[:3])
    return "\n".join(lines)


def wait_until(condition, *, seconds: float, describe, workers: list[Worker]) -> float:
    """Poll `condition` until true; fail with `describe()` at the deadline, or at once if a worker died
    on its own. Returns the seconds it took."""
    started = time.monotonic()
    while not condition():
        for worker in workers:
            if worker.process is not None and not worker.alive():
                pytest.fail(describe(f"worker {worker.name} exited by itself (code {worker.process.returncode})"))
        if time.monotonic() - started > seconds:
            pytest.fail(describe(f"not settled after {seconds:g} s"))
        time.sleep(0.1)
    return time.monotonic() - started


def check_exactly_once(sandbox, workers: list[Worker], web: WebPath) -> None:
    def describe(why: str) -> str:
        return report(sandbox, workers, web, why)

    assert not web.errors, describe("the web path raised:\n" + "\n".join(web.errors))
    jobs = sandbox.jobs()
    per_reference = Counter(job["reference_id"] for job in jobs)
    twice = {reference: n for reference, n in per_reference.items() if n > 1}
    assert not twice, describe(f"jobs created more than once (reference id: jobs): {twice}")
    rows = {row.reference_id: row for row in Submission.objects.all()}
    assert len(rows) == TOTAL
    assert set(per_reference) == set(rows), describe(
        f"sandbox jobs without a submission: {sorted(set(per_reference) - set(rows))[:5]}; "
        f"submissions without a job: {sorted(set(rows) - set(per_reference))[:5]}"
    )
    assert len(jobs) == TOTAL
    wrong = [ref for ref, row in rows.items() if row.request_id != next(j["id"] for j in jobs if j["reference_id"] == ref)]
    assert not wrong, describe(f"submissions holding another job's request id: {wrong[:5]}")
    left = Counter(row.state for row in rows.values() if row.state in [*NOT_DONE, State.MISSING])
    assert not left, describe(f"submissions not settled: {dict(left)}")
    # The chaos really happened: every kind of failure hit the sends.
    stats = sandbox.stats()
    assert stats["dropped"] and stats["status_500"] and stats["status_429"], stats
    assert web.calls["submit"] and web.calls["create_batch"] and web.calls["send_if_room"], web.calls


# --- The scenario -----------------------------------------------------------------------------------


@pytest.fixture
def chaos(sandbox, settings, tmp_path, user):
    """The sandbox misbehaving, DubDash configured like the workers, two workers and the web path ready
    to start. Yields (workers, web); stops everything afterwards, whatever happened."""
    for name, value in DEPLOYMENT.items():
        setattr(settings, name, value)
    sandbox.rate_limit_per_minute = SANDBOX_RATE_LIMIT  # reset() after the test restores the default
    for name, value in FAULTS.items():
        setattr(sandbox.faults, name, value)
    queue(user, QUEUED)
    env = worker_env(connection=connection, sandbox_url=sandbox.base_url, deployment=DEPLOYMENT, WORKER_INTERVAL_SECONDS="0.2")
    workers = [Worker(f"worker-{n}", env, tmp_path) for n in range(2)]
    web = WebPath(user, [f"chaos-web-{n}" for n in range(FROM_THE_WEB)], threads=WEB_THREADS, inputs=WEB_INPUTS)
    try:
        yield workers, web
    finally:
        web.stop.set()
        for worker in workers:
            worker.kill()
        for thread in web.threads:
            thread.join(timeout=30)


def start_all(workers: list[Worker], web: WebPath) -> None:
    for worker in workers:
        worker.start()
    web.start()


def stop_all(workers: list[Worker], web: WebPath, sandbox) -> None:
    """A clean stop (SIGTERM) once settled: the workers must exit 0, having logged no crash."""
    assert web.finish(), "a web thread hung"
    codes = {worker.name: worker.stop() for worker in workers}
    assert set(codes.values()) == {0}, report(sandbox, workers, web, f"workers' exit codes: {codes}")
    for worker in workers:
        assert "Traceback" not in worker.output(), report(sandbox, workers, web, f"{worker.name} crashed")


def kill_in_the_middle_of_a_send(victim: Worker, web: WebPath, workers: list[Worker], describe) -> list[str]:
    """SIGKILL the victim while a worker is sending, then start it again; a few times if need be (the
    other worker may have been the one sending). The web path pauses around the kill. A live process ends
    any send within 2 x (connect + read timeout) = 3 s, so a row still "sending" 3.5 s after the kill,
    claimed before it, was the victim's: its outcome is unknown, to be settled by a lookup. Returns the
    reference ids of the sends the kill interrupted."""

    def a_worker_is_sending() -> bool:
        return Submission.objects.filter(state=State.SENDING).exclude(reference_id__in=web.sending_now()).exists()

    for _ in range(8):
        web.pause.set()
        try:
            time.sleep(0.2)
            wait_until(a_worker_is_sending, seconds=30, workers=workers, describe=describe)
            killed_at = timezone.now()
            victim.kill()
        finally:
            web.pause.clear()
        time.sleep(3.5)
        interrupted = list(
            Submission.objects.filter(state=State.SENDING, last_attempt_at__lte=killed_at).values_list(
                "reference_id", flat=True
            )
        )
        victim.start()
        if interrupted:
            return interrupted
        time.sleep(2)  # the restarted victim gets going before the next try
    return []


def test_two_workers_and_the_web_path_send_every_job_exactly_once_through_chaos(sandbox, chaos):
    workers, web = chaos
    start_all(workers, web)
    took = wait_until(
        lambda: is_settled(web), seconds=SETTLE_DEADLINE, workers=workers,
        describe=lambda why: report(sandbox, workers, web, why),
    )
    stop_all(workers, web, sandbox)
    check_exactly_once(sandbox, workers, web)
    print(f"settled in {took:.1f} s; sandbox {sandbox.stats()}; web path {dict(web.calls)}")


def test_a_worker_killed_in_the_middle_of_a_send_loses_and_duplicates_nothing(sandbox, chaos):
    workers, web = chaos
    victim = workers[0]
    start_all(workers, web)

    def describe(why: str) -> str:
        return report(sandbox, workers, web, why)

    wait_until(lambda: sent_count() >= TOTAL // 4, seconds=SETTLE_DEADLINE, workers=workers, describe=describe)
    # Slower answers while killing: each send then lasts long enough for the kill to land inside one, and
    # the backlog outlasts the attempts (on a fast run the workers could otherwise finish first).
    usual_latency, sandbox.faults.latency = sandbox.faults.latency, 0.4
    try:
        interrupted = kill_in_the_middle_of_a_send(victim, web, workers, describe)
    finally:
        sandbox.faults.latency = usual_latency
    assert interrupted, describe(f"{victim.runs - 1} kills, none interrupted a send: the scenario did not happen")

    took = wait_until(lambda: is_settled(web), seconds=SETTLE_DEADLINE, workers=workers, describe=describe)
    stop_all(workers, web, sandbox)
    check_exactly_once(sandbox, workers, web)
    for reference_id in interrupted:
        row = Submission.objects.get(reference_id=reference_id)
        assert row.request_id and row.send_attempts >= 2, (reference_id, row.state, row.send_attempts)
    print(f"kills: {victim.runs - 1}, interrupted sends {interrupted}; settled {took:.1f} s after the restart; "
          f"sandbox {sandbox.stats()}")


# --- Settling counts from when the POST was sent, not from when the attempt began --------------------


@pytest.mark.django_db
def test_a_post_after_a_slow_lookup_is_settled_from_when_it_was_sent(sandbox, settings, user, monkeypatch):
    """An uncertain POST may still create its job for CHAMELAION_SETTLE_SECONDS after it was sent. The
    attempt that follows an earlier uncertain one first looks the job up, and only then POSTs; if that
    lookup answered slowly, the POST went out well after the attempt began. Counting the settle time from
    the start of the attempt (`last_attempt_at`) would look again too early, find nothing and send a second
    job while the first is still being made upstream. (Found while building these tests, fixed meanwhile
    in deliver(): `posted_at`.)"""

    settings.CHAMELAION_CONNECT_TIMEOUT = 0.5
    settings.CHAMELAION_READ_TIMEOUT = 1.0
    settings.CHAMELAION_SETTLE_SECONDS = 2.0  # here every job appears within 1.5 s of its POST: enough
    settings.SEND_RETRY_BASE_SECONDS = settings.SEND_RETRY_MAX_SECONDS = 0.01
    sandbox.faults.hang_seconds = 1.5  # a "timeout" answer: the client gives up at 1 s, the job is made at 1.5 s
    submission = Submission.objects.create(created_by=user, reference_id="slow-lookup-1", **{
        "video_url": "https://cdn.example.com/ep.mp4", "audio_url": "https://cdn.example.com/ep-de.wav"})

    def attempt() -> Submission:
        wait = (Submission.objects.get(pk=submission.pk).next_attempt_at - timezone.now()).total_seconds()
        time.sleep(max(0.0, wait))
        return sending.send_submission(submission=Submission.objects.get(pk=submission.pk))

    # 1: a 500. No job, but DubDash cannot know that: the next attempt looks first. (The chosen reference
    # id's lookup before a first send passes.)
    sandbox.faults.script = ["pass", "500"]
    assert attempt().send_outcome_unknown

    # 2: the lookup's "not found" takes 0.9 s to arrive (within the read timeout); the POST that follows
    # times out, and the sandbox makes that job 1.5 s after the POST arrived.
    real_lookup = chamelaion.ChamelaionClient.find_by_reference_id
    posted_at = []

    def slow_first_lookup(client, reference_id):
        found = real_lookup(client, reference_id)
        if not posted_at:
            time.sleep(0.9)
            sandbox.faults.script = ["timeout"]  # for the POST that comes next
            posted_at.append(timezone.now())
        return found

    monkeypatch.setattr(chamelaion.ChamelaionClient, "find_by_reference_id", slow_first_lookup)
    second = attempt()
    assert second.send_outcome_unknown and second.request_id is None and posted_at

    # 3: whenever it comes, it must not send a second job.
    third = attempt()
    time.sleep(2.0)  # every POST made so far has created its job by now
    jobs = [job for job in sandbox.jobs() if job["reference_id"] == "slow-lookup-1"]
    third.refresh_from_db()
    assert len(jobs) == 1, (
        f"{len(jobs)} jobs for one submission: attempt 3 began {(third.last_attempt_at - posted_at[0]).total_seconds():.2f} s "
        f"after the uncertain POST of attempt 2 was sent (settle time {settings.CHAMELAION_SETTLE_SECONDS:g} s); "
        f"it held request {third.request_id}, upstream: {[job['id'] for job in jobs]}"
    )
    assert third.request_id == jobs[0]["id"]


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_during_a_post_that_followed_a_slow_lookup_does_not_get_its_job_sent_twice(
    sandbox, settings, user, tmp_path
):
    """The same, when the process dies during that POST. The row then says only that the attempt began at
    `last_attempt_at` (and, from an earlier attempt, an older `outcome_unknown_since`): the POST's own time
    was never stored. Whoever takes the row over after stuck_sending_time() settles from those older times,
    finds nothing yet, and sends a second job while the first is still being made upstream.

    Here: timeouts 0.5 + 1 s, so a send is re-claimed 8 s after it began; every job appears within 7.5 s of
    its POST and the settle time is 7.95 s. The dead worker's lookup took 0.9 s, so its POST's job appears
    8.4 s after the attempt began: after the take-over's lookup (8.0 s), before a settle time counted from
    the POST would end (8.85 s). Production's defaults (5 + 30 s, settle 60 s, re-claimed after 75 s, a
    lookup of up to 35 s) leave the same gap."""
    deployment = {"CHAMELAION_CONNECT_TIMEOUT": 0.5, "CHAMELAION_READ_TIMEOUT": 1.0, "CHAMELAION_SETTLE_SECONDS": 7.95}
    for name, value in deployment.items():
        setattr(settings, name, value)
    now = timezone.now()
    submission = Submission.objects.create(  # attempt 1 was a 500 long ago: attempt 2 looks, then POSTs
        created_by=user, reference_id="killed-mid-post", video_url="https://cdn.example.com/ep.mp4",
        audio_url="https://cdn.example.com/ep-de.wav", send_attempts=1, last_attempt_at=now - timedelta(seconds=9),
        outcome_unknown_since=now - timedelta(seconds=9), next_attempt_at=now,
    )
    env = worker_env(connection=connection, sandbox_url=sandbox.base_url, deployment=DEPLOYMENT, WORKER_INTERVAL_SECONDS="0.2")
    env.update({name: str(value) for name, value in deployment.items()})
    worker = Worker("worker", env, tmp_path)
    sandbox.faults.hang_seconds = 0.9  # the lookup: a slow "not found", within the read timeout
    sandbox.faults.script = ["timeout"]

    def until(condition, what: str, seconds: float = 20.0) -> None:
        deadline = time.monotonic() + seconds
        while not condition():
            if time.monotonic() > deadline:
                pytest.fail(f"{what}: not after {seconds:g} s; sandbox {sandbox.stats()}\n{worker.output()}")
            time.sleep(0.005)

    try:
        worker.start()
        until(lambda: sandbox.stats()["faults"] >= 1, "the worker's lookup")
        sandbox.faults.hang_seconds = 7.5  # its POST: the job is made 7.5 s after it arrived
        sandbox.faults.script = ["timeout"]
        until(lambda: sandbox.stats()["faults"] >= 2, "the worker's POST")
        worker.kill()
    finally:
        worker.kill()
    row = Submission.objects.get(pk=submission.pk)
    assert row.state == State.SENDING and sandbox.stats()["get"] == 1, (row.state, sandbox.stats(), worker.output())

    # Another process takes the row over as soon as it may ("Send again", or a worker: same claim()),
    # and goes on until it is settled.
    began = row.last_attempt_at
    taken_over = None
    deadline = time.monotonic() + 30
    while row.request_id is None and time.monotonic() < deadline:
        row = sending.send_submission(submission=row)
        if taken_over is None and row.last_attempt_at != began:
            taken_over = (row.last_attempt_at - began).total_seconds()
        time.sleep(0.02)
    time.sleep(1.0)  # the dead worker's job has been made by now
    jobs = [job for job in sandbox.jobs() if job["reference_id"] == "killed-mid-post"]
    made = ", ".join(
        f"{job['id'][:8]} at +{(datetime.fromisoformat(job['created_at'].replace('Z', '+00:00')) - began).total_seconds():.2f} s"
        for job in jobs
    )
    assert len(jobs) == 1 and row.request_id == jobs[0]["id"], (
        f"{len(jobs)} jobs upstream for one submission. The killed attempt began at +0; the row was taken over at "
        f"+{taken_over} s; jobs made: {made}; the row holds {row.request_id[:8] if row.request_id else None} "
        f"after {row.send_attempts} attempts"
    )
