"""Reads of takes: every job made for one language of one video (the first take and the takes that
replaced it), and which of them is the latest."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import BooleanField, Case, Q, QuerySet, Value, When

from submissions.models import Submission
from submissions.team import permissions

State = Submission.State

# A new take replaces the latest one only once that one has settled. One still waiting or in flight
# would go on being sent, made and paid for, and its video would arrive for a take nobody follows any
# more; one waiting to send can be cancelled first.
SETTLED = (State.COMPLETED, State.FAILED, State.MISSING, State.SEND_FAILED, State.CANCELLED)


def takes_of_chain(*, root_id: int) -> QuerySet[Submission]:
    """The first take (`root_id`) and every later take, newest first. Ordered by take number, not by
    creation time: the number is given under a lock (takes.services.lock_chain), the clock is not."""
    return Submission.objects.filter(Q(pk=root_id) | Q(first_take_id=root_id)).order_by("-take", "-pk")


def takes_of(*, submission: Submission) -> list[Submission]:
    """Every take of this job's language, newest first, each with `is_shown`: whether it is `submission`
    itself (the page being shown), so the list marks it without comparing anything in the template.
    One query; a job that was never retaken is a list of one."""
    root_id = submission.takes_root_id
    if root_id is None:  # not saved: it has no takes yet
        return []
    shown = Case(When(pk=submission.pk, then=Value(True)), default=Value(False), output_field=BooleanField())
    return list(takes_of_chain(root_id=root_id).select_related("created_by").annotate(is_shown=shown))


def latest_take(*, submission: Submission) -> Submission:
    """The take a new one would replace now: the highest numbered of the chain. A read for the page; the
    service reads it again under the chain's lock before saving."""
    root_id = submission.takes_root_id
    latest = takes_of_chain(root_id=root_id).first() if root_id is not None else None
    return latest or submission


def why_no_new_take(*, latest: Submission) -> str:
    """Why no new take can replace `latest` (the latest take) now, in plain words; blank if one can."""
    if latest.send_outcome_unknown:
        # Its last attempt may have reached Chamelaion: replacing it could pay twice for one language.
        return (
            f"Take {latest.take} may have reached Chamelaion (its last attempt got no answer). Send it again first: "
            "DubDash then checks whether Chamelaion already has it, so it is never paid for twice."
        )
    if latest.state in SETTLED:
        return ""
    cancel = " or been cancelled" if latest.is_waiting_to_send else ""
    return (
        f"Take {latest.take} of this language is not finished yet ({latest.status_label.lower()}). A new take "
        f"replaces it, so it can be made once take {latest.take} has finished{cancel}."
    )


def may_make_new_take(*, user: Any, latest: Submission) -> bool:
    """Whether a page offers "New take" of `latest`'s language (`latest` being its latest take) to this user:
    they may replace that take (team.permissions.can_make_new_take) and it has settled. The new-take page
    checks the same."""
    return permissions.can_make_new_take(user, latest) and not why_no_new_take(latest=latest)


@dataclass(frozen=True)
class TakesOnPage:
    """What a job's page shows of the takes of its language, prepared so the template only displays it."""

    takes: list[Submission]  # newest first, each with `is_shown` (takes_of)
    listed: bool  # the list is shown only if the language has more than the one take
    replaced_by: Submission | None  # the take that replaced the job shown, if one did
    latest: Submission | None  # the latest take, if a later one replaced `replaced_by` in turn
    new_take: bool  # "New take" is offered to this user (may_make_new_take)


def takes_on_page(*, submission: Submission, user: Any) -> TakesOnPage:
    """The takes of `submission`'s language for its page: the list, which take replaced it (so an old take
    says at once that it is not the current one, and links to what is), and whether to offer New take.
    The one query of takes_of."""
    takes = takes_of(submission=submission)
    if not takes:
        return TakesOnPage(takes=[], listed=False, replaced_by=None, latest=None, new_take=False)
    latest = takes[0]
    # Every take a later one replaced is in the chain with it (retry_of), so no query for `retried_as`.
    replaced_by = next((take for take in takes if take.retry_of_id == submission.pk), None)
    return TakesOnPage(
        takes=takes,
        listed=len(takes) > 1,
        replaced_by=replaced_by,
        latest=latest if replaced_by is not None and latest.pk != replaced_by.pk else None,
        new_take=may_make_new_take(user=user, latest=latest),
    )
