"""Following sent jobs to the end: the worker's refresh rounds.

Two workers may run at once. Each round first *leases* the jobs it will ask about (a conditional UPDATE,
so no job is in two rounds), and every write is guarded so that data fetched earlier never overwrites
data fetched later, and a job never moves backwards (completed stays completed).
"""

from __future__ import annotations

import logging
import uuid
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import DatabaseError, transaction
from django.db.models import Q
from django.utils import timezone

from submissions import chamelaion
from submissions.apikey import clients
from submissions.core import problems, states
from submissions.models import Problem, Submission
from submissions.outputs import services as outputs
from submissions.tracking import snapshots

logger = logging.getLogger(__name__)
State = Submission.State


PAGE_SIZE = chamelaion.LIST_PAGE_LIMIT
LEASE_TIME = timedelta(minutes=2)  # a round that dies leaves its jobs to others after this
ROUND_LIMIT = 5000
REFRESH_NOW_EVERY = timedelta(seconds=5)
CLOCK_SLACK = timedelta(minutes=10)  # DubDash's and Chamelaion's clocks may disagree this much
PROBLEM_RECHECK_SECONDS = problems.PROBLEM_RECHECK.total_seconds()
MISSING_MESSAGE = (
    "Chamelaion has no job with this request id on this account: it may have been deleted, or DubDash's "
    "API key now belongs to another account. DubDash has stopped asking about it."
)

# What storing one job's data can fail with: the database refusing a value (DataError and kin), or its
# driver refusing to encode one (UnicodeEncodeError is a ValueError) or to convert one (OverflowError).
# Replies are cleaned before they get here; this is the guard for whatever cleaning misses, so that it
# costs one job, not the round.
STORE_ERRORS = (DatabaseError, ValueError, OverflowError)

# How far along a state is. A write may keep or raise the rank, never lower it; finished jobs never change.
RANK = {State.QUEUED: 1, State.PROCESSING: 2, State.IN_FLIGHT: 2, State.COMPLETED: 3, State.FAILED: 3, State.MISSING: 3}


@dataclass
class RoundReport:
    jobs: int = 0  # jobs this round asked about
    updated: int = 0
    missing: int = 0
    unstored: int = 0  # jobs whose news could not be stored: back on the schedule, asked about again later
    api_calls: int = 0
    wait: float = 0.0  # extra seconds the worker should wait before the next round
    error: str = ""  # why the round stopped early, in plain words

    @property
    def failed(self) -> bool:
        return bool(self.error)


@dataclass
class _Snapshots:
    fetched_at: datetime
    found: dict[str, chamelaion.LipsyncRequest] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)


# --- The worker's round --------------------------------------------------------------------------


def refresh_round(*, limit: int = ROUND_LIMIT) -> RoundReport:
    """Ask Chamelaion about every job that is due, with as few calls as the list endpoint allows."""
    client = clients.get_client()
    report = RoundReport()
    if Problem.objects.filter(pauses_polling=True).exists() and not _problem_is_over(client, report):
        return report
    token = uuid.uuid4().hex
    jobs = _lease_due_jobs(token=token, limit=limit)
    report.jobs = len(jobs)
    if jobs:
        fetched = _Snapshots(fetched_at=timezone.now())
        try:
            _fetch(client, jobs, fetched)
        except chamelaion.ChamelaionError as error:
            _note_failure(error, report)
        report.updated, report.missing, report.unstored = _store(jobs, fetched)
        _release(token, min_delay=report.wait)
        if not report.failed:
            problems.clear_problems()
    report.api_calls = client.calls
    return report


def _problem_is_over(client: chamelaion.ChamelaionClient, report: RoundReport) -> bool:
    """While the key or quota is broken, one cheap read per round tells whether it has been fixed."""
    try:
        client.list_requests(limit=1)
    except chamelaion.ChamelaionError as error:
        _note_failure(error, report)
        report.api_calls = client.calls
        return False
    problems.clear_problems()
    return True


def _note_failure(error: chamelaion.ChamelaionError, report: RoundReport) -> None:
    report.error = error.user_message
    if isinstance(error, chamelaion.RateLimited):
        report.wait = error.retry_after or snapshots.poll_interval(timedelta(0)).total_seconds()
    elif problems.record_problem(error, while_polling=True) is not None:  # a rejected key, a used-up quota, out of reach
        report.wait = PROBLEM_RECHECK_SECONDS
    logger.warning("Refresh round stopped: %s (%s)", type(error).__name__, error.detail)


def _due() -> Q:
    now = timezone.now()
    return Q(state__in=Submission.UPSTREAM_IN_FLIGHT, request_id__isnull=False) & (
        Q(next_poll_at__lte=now) | Q(next_poll_at__isnull=True)
    )


def _lease_due_jobs(*, token: str, limit: int) -> list[Submission]:
    # The second filter on _due() makes the UPDATE a compare-and-set: a job another round leased
    # meanwhile no longer matches, so it is skipped rather than taken twice.
    due_ids = list(Submission.objects.filter(_due()).order_by("next_poll_at").values_list("pk", flat=True)[:limit])
    if not due_ids:
        return []
    Submission.objects.filter(_due(), pk__in=due_ids).update(poll_lease=token, next_poll_at=timezone.now() + LEASE_TIME)
    return list(Submission.objects.filter(poll_lease=token))


def _fetch(client: chamelaion.ChamelaionClient, jobs: list[Submission], fetched: _Snapshots) -> None:
    """Learn the due jobs' status with as few calls as possible: from the list endpoint (100 jobs a call)
    where that pays, then one by one for whatever the pages did not show (a 404 there: the job is gone)."""
    # Leased jobs were sent, so each has a request id (_due() asks for one).
    started = {job.request_id: job.sent_at or job.created_at for job in jobs if job.request_id is not None}
    if len(started) > 1:  # for a single job, one GET is the cheapest there is
        _scan_list(client, started, fetched)
    for request_id in sorted(started.keys() - fetched.found.keys()):
        try:
            fetched.found[request_id] = client.get_request(request_id)
        except chamelaion.NotFound:
            fetched.missing.add(request_id)
        except chamelaion.MalformedReply as error:  # this job's reply is unreadable; the others may be fine
            logger.warning("Unreadable status for request %s: %s", request_id, error.detail)


def _scan_list(client: chamelaion.ChamelaionClient, started: dict[str, datetime], fetched: _Snapshots) -> None:
    """The list pages through the account's whole history, in an order the contract leaves open. The
    first page shows the order, so the scan starts where the newest jobs are (the end, when the oldest come
    first) and walks towards older ones. It stops once every job is found, once the pages are older than
    any job still missing, or before it costs more than asking one by one would."""

    def collect(page: chamelaion.RequestPage) -> None:
        fetched.found.update((r.id, r) for r in page.requests if r.id in started)

    first = client.list_requests(limit=PAGE_SIZE, offset=0)
    collect(first)
    order = _order(first)
    calls = 1
    for offset, limit in _windows(start=first.size, total=first.total, from_the_end=order == "oldest first"):
        missing = started.keys() - fetched.found.keys()
        if len(missing) <= 1 or calls >= len(started):
            return
        page = client.list_requests(limit=limit, offset=offset)
        calls += 1
        collect(page)
        newest_on_page = max((r.created_at for r in page.requests if r.created_at), default=None)
        oldest_missing = min(started[request_id] for request_id in missing) - CLOCK_SLACK
        if order and newest_on_page and newest_on_page < oldest_missing:
            return  # every page further on is older still


def _order(page: chamelaion.RequestPage) -> str:
    times = [r.created_at for r in page.requests if r.created_at]
    if len(times) > 1 and times == sorted(times) and times[0] != times[-1]:
        return "oldest first"
    if len(times) > 1 and times == sorted(times, reverse=True) and times[0] != times[-1]:
        return "newest first"
    return ""  # unknown: scan from the start, and never stop on age


def _windows(*, start: int, total: int, from_the_end: bool) -> list[tuple[int, int]]:
    """(offset, limit) of the pages after the first, in scanning order; full pages where possible."""
    if not from_the_end:
        return [(offset, min(PAGE_SIZE, total - offset)) for offset in range(start, total, PAGE_SIZE)]
    return [(max(start, end - PAGE_SIZE), end - max(start, end - PAGE_SIZE)) for end in range(total, start, -PAGE_SIZE)]


def _store(jobs: list[Submission], fetched: _Snapshots) -> tuple[int, int, int]:
    """(updated, missing, unstored). One commit for the whole round, not one per job, and no savepoint per
    job either (two more statements for each job, on every round). Should one job's write fail anyway, the
    round is written again with a savepoint per job: the job that fails is logged and left leased, so
    _release puts it back on the schedule, and every other job's news is committed."""
    try:
        with transaction.atomic():
            return _write(jobs, fetched, one_by_one=False)
    except STORE_ERRORS as error:
        logger.warning("Storing a refresh round failed (%s); storing it again job by job", type(error).__name__)
    with transaction.atomic():
        return _write(jobs, fetched, one_by_one=True)


def _write(jobs: list[Submission], fetched: _Snapshots, *, one_by_one: bool) -> tuple[int, int, int]:
    # Writing again after a rollback is safe: every write is a conditional UPDATE decided by what is in
    # the database, not by the instances (whose fields a rolled-back write may already have changed).
    updated = missing = unstored = 0
    for job in jobs:
        try:
            with transaction.atomic() if one_by_one else nullcontext():
                if job.request_id in fetched.found:
                    updated += apply_snapshot(job, fetched.found[job.request_id], fetched_at=fetched.fetched_at)
                elif job.request_id in fetched.missing:
                    missing += mark_missing(job, fetched_at=fetched.fetched_at)
        except STORE_ERRORS:
            if not one_by_one:
                raise
            logger.exception("Could not store the status of submission %s (request %s)", job.pk, job.request_id)
            unstored += 1
    return updated, missing, unstored


def _release(token: str, *, min_delay: float) -> None:
    """Jobs this round could not settle go back on the schedule (not before `min_delay` seconds)."""
    now = timezone.now()
    leftovers = Submission.objects.filter(poll_lease=token)
    with transaction.atomic():
        for job in leftovers.only("pk", "sent_at", "created_at"):
            delay = max(_next_poll(job, now) - now, timedelta(seconds=min_delay))
            Submission.objects.filter(pk=job.pk, poll_lease=token).update(poll_lease="", next_poll_at=now + delay)


def _next_poll(job: Submission, now: datetime) -> datetime:
    return now + snapshots.poll_interval(now - (job.sent_at or job.created_at))


# --- Writes that never go backwards ---------------------------------------------------------------


def apply_snapshot(submission: Submission, request: chamelaion.LipsyncRequest, *, fetched_at: datetime) -> bool:
    """Store what Chamelaion said at `fetched_at`, unless something fresher or further along is stored."""
    fields = snapshots.upstream_fields(request)
    new_state = fields["state"]
    fields.update(
        last_synced_at=fetched_at,
        poll_lease="",
        next_poll_at=_next_poll(submission, fetched_at) if new_state in Submission.UPSTREAM_IN_FLIGHT else None,
    )
    moved = states.transition(
        submission,
        expected=[state for state in Submission.UPSTREAM_IN_FLIGHT if RANK[state] <= RANK[new_state]],
        guard=Q(last_synced_at__isnull=True) | Q(last_synced_at__lte=fetched_at),
        **fields,
    )
    if moved and new_state == State.COMPLETED:
        outputs.enqueue(submission=submission)  # in the same transaction: a completed job always gets its copy
    return moved


def mark_missing(submission: Submission, *, fetched_at: datetime) -> bool:
    return states.transition(
        submission,
        expected=Submission.UPSTREAM_IN_FLIGHT,
        guard=Q(last_synced_at__isnull=True) | Q(last_synced_at__lte=fetched_at),
        state=State.MISSING,
        last_error=MISSING_MESSAGE,
        last_synced_at=fetched_at,
        next_poll_at=None,
        poll_lease="",
    )
