"""A send left behind by a process that died ("stuck sending") is one rule, written once: the query
(models.stuck_sending) that the outbox's claim, its queue and admin's "Send again" use, and the model's
property, which applies the same cut-off to one instance."""

import ast
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from submissions.models import Submission, stuck_sending, stuck_sending_time
from submissions.outbox import selectors, sending
from tests.factories import make_submission

pytestmark = pytest.mark.django_db
State = Submission.State
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def rows(cast):
    now, stuck_after = timezone.now(), stuck_sending_time()
    made = {
        "long stuck": dict(state=State.SENDING, last_attempt_at=now - stuck_after - timedelta(minutes=5)),
        "just stuck": dict(state=State.SENDING, last_attempt_at=now - stuck_after - timedelta(seconds=2)),
        "still sending": dict(state=State.SENDING, last_attempt_at=now - stuck_after + timedelta(seconds=30)),
        "sending, never attempted": dict(state=State.SENDING, last_attempt_at=None),
        "old but waiting": dict(state=State.PENDING, last_attempt_at=now - timedelta(hours=1)),
        "could not be sent": dict(state=State.SEND_FAILED, last_attempt_at=now - timedelta(hours=1)),
    }
    return {title: make_submission(cast.submitter, title=title, **fields) for title, fields in made.items()}


def test_the_query_and_the_property_agree(rows):
    by_query = set(Submission.objects.filter(stuck_sending()).values_list("title", flat=True))
    by_property = {title for title, row in rows.items() if row.is_stuck_sending}
    assert by_query == by_property == {"long stuck", "just stuck"}


def test_the_queue_and_send_again_use_the_rule(rows):
    due = {row.title for row in selectors.due_for_sending(limit=10)}
    assert {"long stuck", "just stuck"} <= due and "still sending" not in due
    again = set(selectors.sendable_again(Submission.objects.all()).values_list("title", flat=True))
    assert again == {"long stuck", "just stuck", "could not be sent"}
    assert again == {title for title, row in rows.items() if row.can_send_again}


def test_the_claim_takes_over_only_a_stuck_send(rows):
    assert sending.claim(rows["long stuck"]) and not sending.claim(rows["still sending"])


def test_nothing_else_computes_the_cut_off():
    """Only models.py calls stuck_sending_time(): everyone else asks stuck_sending() (or the property)."""
    callers = set()
    for path in (ROOT / "submissions").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "stuck_sending_time":
                callers.add(path.relative_to(ROOT).as_posix())
    assert callers == {"submissions/models.py"}
