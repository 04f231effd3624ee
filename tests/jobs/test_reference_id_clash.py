"""Issue 9: a reference id a person chose that a job made outside DubDash already uses (same account) is
refused before the first send, with a clear message, instead of that stranger being adopted as ours."""

import time

import pytest
from django.urls import reverse

from submissions.core import reference_ids
from submissions.models import Submission
from submissions.outbox import worker as outbox
from tests.factories import make_submission

pytestmark = pytest.mark.django_db
State = Submission.State
NEW = reverse("submissions:new")
FORM = {"video_url": "https://cdn.example.com/episode-1.mp4", "audio_url": "https://cdn.example.com/episode-1-de.wav"}
# The inputs of a job someone made outside DubDash, on the same account.
ELSEWHERE = {"video_url": "https://elsewhere.example.com/x.mp4", "audio_url": "https://elsewhere.example.com/x.wav"}


def test_a_chosen_reference_id_used_outside_dubdash_is_refused_not_adopted(logged_in, sandbox):
    stranger = sandbox.create_job(**ELSEWHERE, reference_id="ep1-de")

    page = logged_in.post(NEW, {**FORM, "reference_id": "ep1-de", "title": "Episode 1"}).content.decode()

    submission = Submission.objects.get()
    assert submission.state == State.SEND_FAILED and submission.request_id is None
    assert submission.request_id != stranger["id"]
    assert "A job made outside DubDash on the same Chamelaion account already uses the reference id “ep1-de”" in page
    assert 'value="Episode 1"' in page and f'name="resubmit" value="{submission.pk}"' in page  # fix it here
    assert len(sandbox.jobs()) == 1  # nothing was sent

    logged_in.post(NEW, {**FORM, "reference_id": "ep1-de-take-2", "title": "Episode 1", "resubmit": str(submission.pk)})
    submission.refresh_from_db()
    assert submission.state == State.QUEUED and submission.reference_id == "ep1-de-take-2"
    assert len(sandbox.jobs()) == 2


def test_the_worker_refuses_it_too(user, sandbox):
    sandbox.create_job(**ELSEWHERE, reference_id="ep7-fr")
    waiting = make_submission(user, reference_id="ep7-fr")
    assert outbox.send_due(seconds=1, wait_for_budget=False) == 1
    waiting.refresh_from_db()
    assert waiting.state == State.SEND_FAILED and "already uses the reference id “ep7-fr”" in waiting.last_error
    assert len(sandbox.jobs()) == 1


def test_an_id_dubdash_made_is_not_looked_up_first(logged_in, sandbox):
    lookups = sandbox.stats()["get"]
    logged_in.post(NEW, FORM)
    submission = Submission.objects.get()
    assert not reference_ids.chose_reference_id(submission.reference_id)
    assert submission.state == State.QUEUED and sandbox.stats()["get"] == lookups


def test_a_chosen_id_nobody_uses_is_looked_up_once_then_sent(logged_in, sandbox):
    lookups = sandbox.stats()["get"]
    logged_in.post(NEW, {**FORM, "reference_id": "ep1-de"})
    assert Submission.objects.get().state == State.QUEUED and sandbox.stats()["get"] == lookups + 1


def test_our_own_uncertain_send_is_still_adopted_not_refused(logged_in, sandbox):
    sandbox.faults.script = ["pass", "drop-after-create"]  # the lookup passes; the POST's answer is lost
    logged_in.post(NEW, {**FORM, "reference_id": "ep1-de"})
    submission = Submission.objects.get()
    assert submission.state == State.PENDING and submission.send_outcome_unknown
    Submission.objects.update(next_attempt_at=submission.outcome_unknown_since)
    time.sleep(0.25)  # past the (test-sized) settle time
    outbox.send_due(seconds=1, wait_for_budget=False)
    submission.refresh_from_db()
    (job,) = sandbox.jobs()
    assert submission.state == State.QUEUED and submission.request_id == job["id"]


def test_leaving_the_reference_id_blank_after_a_clash_sends_it_with_one_dubdash_makes(logged_in, sandbox):
    """Found in review: the message says "or leave it blank", and blank kept the clashing id for ever."""
    sandbox.create_job(**ELSEWHERE, reference_id="ep1-de")
    logged_in.post(NEW, {**FORM, "reference_id": "ep1-de"})
    submission = Submission.objects.get()
    assert submission.state == State.SEND_FAILED

    logged_in.post(NEW, {**FORM, "reference_id": "", "resubmit": str(submission.pk)})
    submission.refresh_from_db()
    assert submission.state == State.QUEUED and not reference_ids.chose_reference_id(submission.reference_id)
    assert len(sandbox.jobs()) == 2


def test_a_blank_reference_id_when_sending_again_keeps_an_id_dubdash_made(logged_in, user, sandbox):
    refused = make_submission(user, state=State.SEND_FAILED, last_error="refused")
    made = refused.reference_id
    logged_in.post(NEW, {**FORM, "reference_id": "", "resubmit": str(refused.pk)})
    refused.refresh_from_db()
    assert refused.reference_id == made and refused.state == State.QUEUED


def test_an_id_shaped_like_dubdash_own_cannot_be_chosen(logged_in, sandbox):
    """Found in review: it would skip the lookup that protects a chosen id from a stranger's job."""
    page = logged_in.post(NEW, {**FORM, "reference_id": reference_ids.new_reference_id()}).content.decode()
    assert "are DubDash&#x27;s own. Choose another." in page and Submission.objects.count() == 0
