"""Two workers at once: each job is updated, none is written backwards, no job is in two rounds.

The threaded tests use committed data (transaction=True) and real HTTP against the sandbox; each
thread closes its own database connection when it ends.
"""

import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from submissions import chamelaion
from submissions.models import Submission
from submissions.tracking import services as tracking
from tests.factories import make_submission

State = Submission.State
RANK = {
    State.QUEUED: 1,
    State.PROCESSING: 2,
    State.IN_FLIGHT: 2,
    State.COMPLETED: 3,
    State.FAILED: 3,
    State.MISSING: 3,
}
JOBS = 200
THREAD_TIMEOUT = 10  # seconds; a thread still running after this is a hang, and fails the test


def start_thread(target, errors: list) -> threading.Thread:
    """Run `target` in a thread that records any exception with its traceback (the test asserts there
    were none) and always closes its own database connection."""

    def run():
        try:
            target()
        except BaseException:  # reported by the test, with its traceback
            errors.append(traceback.format_exc())
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def join_all(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join(THREAD_TIMEOUT)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"


def sent_jobs(sandbox, user, count: int, *, batches: int = 1, apart: float = 0.0) -> dict[str, Submission]:
    """Jobs created in the sandbox in `batches`, `apart` simulated seconds from each other, and
    DubDash's rows for them: queued and due."""
    now = timezone.now()
    rows = {}
    for batch in range(batches):
        if batch:
            sandbox.advance(apart)
        for _ in range(count // batches):
            job = sandbox.create_job(video_url=sandbox.sample_video_url, audio_url=sandbox.sample_audio_url)
            rows[job["id"]] = make_submission(
                user,
                request_id=job["id"],
                state=State.QUEUED,
                upstream_status="queued",
                sent_at=now,
                next_poll_at=now - timedelta(seconds=1),
            )
    return rows


# --- Two workers over jobs that move on while they poll -------------------------------------------


@dataclass
class Round:
    worker: int
    started: float
    ended: float
    report: tracking.RoundReport


@dataclass
class Samples:
    count: int = 0
    seen_states: set = field(default_factory=set)
    most_leases_at_once: int = 0  # how many rounds held jobs at the same moment
    violations: list = field(default_factory=list)


def work(number: int, stop: threading.Event, rounds: list[Round]) -> None:
    while not stop.is_set():
        started = time.monotonic()
        # A round takes at most a quarter of the jobs, so both workers hold leases at the same time
        # (with no limit the first round to come takes every due job, and the other finds none).
        report = tracking.refresh_round(limit=JOBS // 4)
        rounds.append(Round(number, started, time.monotonic(), report))
        stop.wait(0.01)


def sample(stop: threading.Event, samples: Samples) -> None:
    """Read every row again and again; between two reads no row may lose rank, and no row's
    last_synced_at may go back in time."""
    previous: dict[int, tuple[str, datetime | None]] = {}
    while not stop.is_set():
        rows = list(Submission.objects.values_list("pk", "state", "last_synced_at", "poll_lease"))
        current = {pk: (state, synced) for pk, state, synced, _ in rows}
        samples.count += 1
        samples.most_leases_at_once = max(samples.most_leases_at_once, len({lease for *_, lease in rows if lease}))
        for pk, (state, synced) in current.items():
            samples.seen_states.add(state)
            if pk not in previous:
                continue
            old_state, old_synced = previous[pk]
            if RANK[state] < RANK[old_state]:
                samples.violations.append(f"row {pk} went back from {old_state} to {state}")
            if old_synced is not None and (synced is None or synced < old_synced):
                samples.violations.append(f"row {pk}: last_synced_at went back from {old_synced} to {synced}")
        previous = current
        time.sleep(0.005)


def overlapping(rounds: list[Round]) -> bool:
    """Did a round of one worker run while a round of the other was running?"""
    first = [r for r in rounds if r.worker == 0 and r.report.jobs]
    second = [r for r in rounds if r.worker == 1 and r.report.jobs]
    return any(a.started < b.ended and b.started < a.ended for a in first for b in second)


@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_update_every_job_and_never_write_backwards(sandbox, user, settings):
    settings.POLL_MIN_SECONDS = settings.POLL_MAX_SECONDS = 0.05  # jobs are due again almost at once
    # Created over 10 simulated seconds, so that jobs change state all through the run, not all at once.
    rows = sent_jobs(sandbox, user, JOBS, batches=10, apart=1)
    # Uneven answer times, as over a real network: a round that fetched first may store last.
    sandbox.faults.latency, sandbox.faults.latency_jitter = 0.002, 0.03
    stop, errors = threading.Event(), []
    rounds: list[Round] = []
    samples = Samples()
    threads = [start_thread(lambda n=n: work(n, stop, rounds), errors) for n in range(2)]
    threads.append(start_thread(lambda: sample(stop, samples), errors))

    # The sandbox's jobs take 30 simulated seconds: queued for 10, processing until 30, then completed.
    # 1 s every 0.1 s walks them all through every stage in about 3.2 s while the workers poll: long enough
    # for several rounds per stage on a loaded machine too (at 1.6 s, a busy full run saw 530 of the 600).
    for _ in range(32):
        sandbox.advance(1)
        time.sleep(0.1)
    deadline = time.monotonic() + 5
    while Submission.objects.exclude(state=State.COMPLETED).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.1)  # a few more samples of the final state
    stop.set()
    join_all(threads)

    assert not errors, "\n".join(errors)
    assert not [r.report.error for r in rounds if r.report.failed]
    # Every job completed, with what the sandbox says, and nothing left leased.
    upstream = {job["id"]: job for job in sandbox.jobs()}
    stored = list(Submission.objects.all())
    assert len(stored) == JOBS
    for row in stored:
        assert row.state == State.COMPLETED, row.request_id
        assert row.upstream_status == "completed"
        assert row.output_url == upstream[row.request_id]["output_url"]
        assert row.last_synced_at is not None
        assert row.poll_lease == "" and row.next_poll_at is None
    # Never backwards, and the sampler saw the jobs go through every stage (so it could have seen it).
    assert samples.violations == []
    assert samples.count >= 20
    assert {State.QUEUED, State.PROCESSING, State.COMPLETED} <= samples.seen_states
    # The two workers really ran at the same time, each holding its own jobs, and both did work.
    assert {r.worker for r in rounds if r.report.updated} == {0, 1}
    assert overlapping(rounds)
    assert samples.most_leases_at_once >= 2
    # Asking job by job would cost one call per job per round; the list endpoint makes it far fewer.
    calls = sum(r.report.api_calls for r in rounds)
    jobs_asked = sum(r.report.jobs for r in rounds)
    assert calls == sandbox.stats()["requests"]
    assert jobs_asked >= 3 * JOBS  # every job was asked about at several stages
    assert calls * 10 <= jobs_asked, (calls, jobs_asked)
    assert set(rows) == set(upstream)


# --- The guarded write ----------------------------------------------------------------------------


def snapshot(request_id: str, status: str, at: datetime, **fields) -> chamelaion.LipsyncRequest:
    return chamelaion.LipsyncRequest(id=request_id, status=status, created_at=at - timedelta(minutes=5), **fields)


STORED_FIELDS = ("state", "upstream_status", "started_at", "finished_at", "output_url", "upstream_error_message",
                 "last_synced_at", "next_poll_at", "poll_lease")


def stored(submission: Submission) -> dict:
    return Submission.objects.values(*STORED_FIELDS).get(pk=submission.pk)


@pytest.mark.django_db
def test_the_guarded_write_refuses_stale_or_backward_data_and_never_changes_a_finished_job(user):
    job = make_submission(user, request_id=str(uuid.uuid4()), state=State.QUEUED, upstream_status="queued",
                          sent_at=timezone.now(), next_poll_at=timezone.now())
    t1 = timezone.now() - timedelta(seconds=60)
    t0, t2, t3, t4 = (t1 + timedelta(seconds=seconds) for seconds in (-10, 10, 20, 30))
    started = t1 - timedelta(seconds=1)

    assert tracking.apply_snapshot(job, snapshot(job.request_id, "processing", t2, started_at=started), fetched_at=t2)
    after_processing = stored(job)
    assert (after_processing["state"], after_processing["last_synced_at"]) == (State.PROCESSING, t2)

    # Fetched at t1, before the stored t2: older news, and backwards too.
    assert not tracking.apply_snapshot(job, snapshot(job.request_id, "queued", t1), fetched_at=t1)
    # Same rank but fetched before the stored last_synced_at: refused as well.
    other_start = t0 - timedelta(seconds=5)
    assert not tracking.apply_snapshot(job, snapshot(job.request_id, "processing", t0, started_at=other_start),
                                       fetched_at=t0)
    # Fresher, but backwards: a job never goes from processing back to queued.
    assert not tracking.apply_snapshot(job, snapshot(job.request_id, "queued", t3), fetched_at=t3)
    assert stored(job) == after_processing
    assert job.state == State.PROCESSING and job.last_synced_at == t2  # the instance was reloaded too

    done = snapshot(job.request_id, "completed", t3, started_at=started, finished_at=t3,
                    output_url="https://cdn.example.com/out.mp4")
    assert tracking.apply_snapshot(job, done, fetched_at=t3)
    completed = stored(job)
    assert (completed["state"], completed["output_url"]) == (State.COMPLETED, "https://cdn.example.com/out.mp4")
    assert completed["next_poll_at"] is None  # no longer polled

    # A completed job never changes, whatever arrives later and however fresh.
    for status, extra in [
        ("processing", {"started_at": started}),
        ("queued", {}),
        ("failed", {"error_message": "lip sync failed"}),
        ("completed", {"output_url": "https://cdn.example.com/other.mp4", "finished_at": t4}),
        ("rendering", {}),
    ]:
        assert not tracking.apply_snapshot(job, snapshot(job.request_id, status, t4, **extra), fetched_at=t4), status
        assert stored(job) == completed, status


# --- Leasing -------------------------------------------------------------------------------------


def due_and_not_due(user, *, due: int) -> set[int]:
    """`due` jobs due now, plus jobs that must never be leased: due later, finished, or not sent."""
    now = timezone.now()
    due_ids = {
        make_submission(user, request_id=str(uuid.uuid4()), state=state, next_poll_at=now - timedelta(seconds=1)).pk
        for state in [State.QUEUED, State.PROCESSING, State.IN_FLIGHT] * (due // 3) + [State.QUEUED] * (due % 3)
    }
    make_submission(user, request_id=str(uuid.uuid4()), state=State.QUEUED, next_poll_at=now + timedelta(minutes=1))
    make_submission(user, request_id=str(uuid.uuid4()), state=State.COMPLETED, next_poll_at=None)
    make_submission(user, request_id=str(uuid.uuid4()), state=State.FAILED, next_poll_at=now - timedelta(seconds=1))
    make_submission(user, state=State.PENDING)
    return due_ids


def lease_in_two_threads(*, both_read_first: bool = False) -> tuple[list[tuple[str, set[int]]], int]:
    """Two rounds lease at the same moment (a barrier). With `both_read_first`, each round also waits,
    before its first UPDATE, until the other has got there too: the worst interleaving, where both
    have read which jobs are due and each believes all of them are its to take.
    Returns each round's lease token and the ids it leased, and how many rounds did wait there."""
    start = threading.Barrier(2, timeout=5)
    both_read = threading.Barrier(2, timeout=5)
    results: list[tuple[str, set[int]]] = []
    waited: list[int] = []
    errors: list = []
    this_thread = threading.local()

    def hold_first_update(execute, sql, params, many, context):
        if both_read_first and not getattr(this_thread, "held", False) and sql.lstrip().upper().startswith("UPDATE"):
            this_thread.held = True
            both_read.wait()
            waited.append(threading.get_ident())
        return execute(sql, params, many, context)

    def lease():
        token = uuid.uuid4().hex
        start.wait()
        with connection.execute_wrapper(hold_first_update):  # this thread's connection only
            leased = tracking._lease_due_jobs(token=token, limit=tracking.ROUND_LIMIT)
        results.append((token, {job.pk for job in leased}))

    join_all([start_thread(lease, errors) for _ in range(2)])
    assert not errors, "\n".join(errors)
    return results, len(waited)


def assert_disjoint_and_complete(results: list[tuple[str, set[int]]], due: set[int]) -> None:
    (token_a, leased_a), (token_b, leased_b) = results
    assert leased_a.isdisjoint(leased_b), f"{len(leased_a & leased_b)} jobs leased by both rounds"
    assert leased_a | leased_b == due
    assert set(Submission.objects.filter(poll_lease=token_a).values_list("pk", flat=True)) == leased_a
    assert set(Submission.objects.filter(poll_lease=token_b).values_list("pk", flat=True)) == leased_b
    assert not Submission.objects.exclude(pk__in=due).exclude(poll_lease="").exists()


@pytest.mark.django_db(transaction=True)
def test_two_rounds_leasing_at_the_same_moment_never_lease_the_same_job(user):
    for _ in range(5):  # a race: run it a few times
        Submission.objects.all().delete()
        due = due_and_not_due(user, due=150)
        results, _ = lease_in_two_threads()
        assert_disjoint_and_complete(results, due)


@pytest.mark.django_db(transaction=True)
def test_two_rounds_that_both_read_every_due_job_still_lease_each_only_once(user):
    due = due_and_not_due(user, due=150)
    results, waited = lease_in_two_threads(both_read_first=True)
    assert waited == 2  # both had read which jobs are due before either wrote anything
    assert_disjoint_and_complete(results, due)
