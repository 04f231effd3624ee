"""Issue 9, item 3: a reference id of "." or ".." was sent twice.

After a send whose answer was lost, DubDash looks the job up by its reference id in the URL path. urllib3
resolves a "." or ".." segment before sending, so GET /v1/lipsync/requests/.. went out as /v1/lipsync/, a
404: DubDash concluded the job did not exist and sent it again, a second paid job. Dot-only ids are now
refused (by the form, the model's validator and the client, before any request), and every id goes out
as one percent-encoded path segment. Against the sandbox over real HTTP, which records the paths it gets.
"""

import time
from urllib.parse import quote

import pytest
from django.urls import reverse
from django.utils import timezone

from submissions import chamelaion
from submissions.jobs.forms import SubmissionForm
from submissions.models import Submission
from submissions.outbox import worker as outbox
from submissions.sandbox import DEMO_TOKEN
from tests.factories import make_submission

pytestmark = pytest.mark.django_db
State = Submission.State
REQUESTS = "/api/v1/lipsync/requests/"
ONLY_DOTS = "cannot be only dots"
FORM = {
    "video_url": "https://cdn.example.com/episode-1.mp4",
    "audio_url": "https://cdn.example.com/episode-1-de.wav",
    "target_language": "de",
    "title": "Episode 1 (German)",
}


def settle_by_outbox(sandbox) -> None:
    """The outbox's next attempt, once the (test-sized) settle time has passed, with answers no longer lost."""
    sandbox.faults.rate_drop_after_create = 0.0
    time.sleep(0.25)
    Submission.objects.update(next_attempt_at=timezone.now())
    outbox.send_due(seconds=1, wait_for_budget=False)


@pytest.mark.parametrize("reference_id", ["a..b", ".hidden", "..a", "a..", "-x", "_", "v1.2.3"])
def test_a_lost_answer_is_settled_by_a_lookup_that_finds_the_job(logged_in, sandbox, reference_id):
    sandbox.faults.rate_drop_after_create = 1.0  # generation requests only: any lookup before it is answered
    logged_in.post(reverse("submissions:new"), {**FORM, "reference_id": reference_id})
    (submission,) = Submission.objects.all()
    assert submission.request_id is None and submission.send_outcome_unknown

    settle_by_outbox(sandbox)

    (job,) = sandbox.jobs()  # exactly one upstream job
    submission.refresh_from_db()
    assert (submission.request_id, submission.state) == (job["id"], State.QUEUED)
    assert REQUESTS + quote(reference_id, safe="") in sandbox.request_paths()


@pytest.mark.parametrize("reference_id", ["50%off", "a/b", "x?y#z", "épisode 1", "%2E%2E", "..%2F"])
def test_the_client_sends_any_id_as_one_encoded_path_segment(sandbox, reference_id):
    api = chamelaion.ChamelaionClient(base_url=sandbox.base_url, api_key=DEMO_TOKEN, read_timeout=2)
    sandbox.faults.script = ["drop-after-create"]
    with pytest.raises(chamelaion.Unreachable):
        api.generate(video_url=sandbox.sample_video_url, audio_url=sandbox.sample_audio_url, reference_id=reference_id)

    found = api.find_by_reference_id(reference_id)

    (job,) = sandbox.jobs()
    assert found is not None and found.id == job["id"] and found.reference_id == reference_id
    assert sandbox.request_paths()[-1] == REQUESTS + quote(reference_id, safe="")


@pytest.mark.parametrize("reference_id", [".", "..", "..."])
def test_a_dot_only_reference_id_is_refused_by_the_form(reference_id):
    form = SubmissionForm(data={**FORM, "reference_id": reference_id})
    assert not form.is_valid()
    assert ONLY_DOTS in " ".join(form.errors["reference_id"])


def test_a_dot_only_reference_id_is_refused_on_the_page_and_nothing_is_saved(logged_in, sandbox):
    response = logged_in.post(reverse("submissions:new"), {**FORM, "reference_id": ".."})
    assert response.status_code == 200 and ONLY_DOTS in response.content.decode()
    assert not Submission.objects.exists()
    assert sandbox.stats()["requests"] == 0


@pytest.mark.parametrize("reference_id", [".", "..", "...."])
def test_a_dot_only_id_is_refused_by_the_client_before_any_request(sandbox, reference_id):
    api = chamelaion.ChamelaionClient(base_url=sandbox.base_url, api_key=DEMO_TOKEN)
    for call in (
        lambda: api.find_by_reference_id(reference_id),
        lambda: api.get_request(reference_id),
        lambda: api.generate(video_url=sandbox.sample_video_url, audio_url=sandbox.sample_audio_url, reference_id=reference_id),
    ):
        with pytest.raises(chamelaion.UnusableId) as refused:
            call()
        assert isinstance(refused.value, ValueError) and not refused.value.retryable
        assert "cannot be used with Chamelaion" in refused.value.user_message
    assert sandbox.stats()["requests"] == 0 and sandbox.request_paths() == []


def test_a_stored_dot_only_reference_id_is_never_sent_so_never_sent_twice(sandbox, user):
    # Saved before the validator refused it (or written around the form): the outbox must not send it.
    submission = make_submission(user, reference_id="..", state=State.PENDING, next_attempt_at=timezone.now())
    sandbox.faults.rate_drop_after_create = 1.0

    outbox.send_due(seconds=1, wait_for_budget=False)
    settle_by_outbox(sandbox)

    assert len(sandbox.jobs()) <= 1  # the defect: two paid jobs
    assert sandbox.jobs() == [] and sandbox.stats()["requests"] == 0
    submission.refresh_from_db()
    assert submission.state == State.SEND_FAILED
    assert "cannot be used with Chamelaion" in submission.last_error
