"""Problems only an administrator can fix: a rejected API key, a used-up quota, Chamelaion out of reach.

Each is one row (a banner on every page for those who can act on it) raised by the failure that shows it
and cleared by the first call that proves it over. While any is open, sending pauses: one job is tried
every PROBLEM_RECHECK to see whether it is fixed, and no job is given up meanwhile."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db.models import Exists, Q
from django.utils import timezone

from submissions import chamelaion
from submissions.models import Problem

logger = logging.getLogger(__name__)
PROBLEM_RECHECK = timedelta(seconds=30)

PROBLEM_CODES = {
    chamelaion.Unauthorized: Problem.Code.API_KEY_REJECTED,
    chamelaion.QuotaExhausted: Problem.Code.QUOTA_USED_UP,
}
# What a paused job's message promises, by problem.
PAUSED_UNTIL = {
    Problem.Code.API_KEY_REJECTED: "The job is saved and goes out by itself once that is fixed.",
    Problem.Code.QUOTA_USED_UP: "The job is saved and goes out by itself once that is fixed.",
    Problem.Code.UNREACHABLE: (
        "The job is saved and goes out by itself as soon as Chamelaion can be reached again; the time "
        "this takes does not count against it."
    ),
}


def problem_code(error: chamelaion.ChamelaionError) -> Problem.Code | None:
    """The administrators' problem a failure shows, if any: a rejected key, a used-up quota, or Chamelaion
    out of reach with nothing delivered (an outage: no job is to blame, so none is given up)."""
    if isinstance(error, chamelaion.Unreachable) and not error.may_have_reached_server:
        return Problem.Code.UNREACHABLE
    return PROBLEM_CODES.get(type(error))


def record_problem(error: chamelaion.ChamelaionError, *, while_polling: bool) -> Problem.Code | None:
    """Raise (or keep) the administrators' banner for failures only they can fix; others are ignored.
    Returns the problem's code, or None when the failure is not one of those."""
    code = problem_code(error)
    if code is None:
        return None
    # Out of reach, polling fails too: marking it so lets the worker's cheap check per round clear it even
    # when nothing is due to be sent or polled.
    while_polling = while_polling or code == Problem.Code.UNREACHABLE
    problem, created = Problem.objects.get_or_create(
        code=code, defaults={"message": error.user_message, "pauses_polling": while_polling}
    )
    if created:
        logger.error("Problem raised: %s (%s)", problem.get_code_display(), error.detail)
    else:
        problem.pauses_polling = problem.pauses_polling or while_polling
        problem.save(update_fields=["pauses_polling", "last_seen"])
    return code


def clear_problems(*, after_send: bool = False) -> None:
    """A successful call is the proof a problem is over: any successful authenticated call proves the key
    works and Chamelaion is reachable; only a successful generation proves the quota is back, unless the
    quota also blocked reads."""
    if not Problem.objects.exists():
        return
    resolved = Problem.objects.all() if after_send else Problem.objects.filter(
        Q(code__in=[Problem.Code.API_KEY_REJECTED, Problem.Code.UNREACHABLE]) | Q(pauses_polling=True)
    )
    for problem in resolved:
        logger.warning("Problem resolved: %s", problem.get_code_display())
    resolved.delete()


def none_open() -> Q:
    """The condition "no problem is open", for a statement that must only act while sending is not paused."""
    return Q(~Exists(Problem.objects.all()))


def sending_paused() -> bool:
    """An open problem stops every send until it is fixed: nothing a job could do would get through."""
    return Problem.objects.exists()


def probe_due() -> bool:
    """While sending is paused, one submission is tried every PROBLEM_RECHECK to see whether it is fixed."""
    latest = Problem.objects.order_by("-last_seen").values_list("last_seen", flat=True).first()
    return latest is None or timezone.now() - latest >= PROBLEM_RECHECK
