"""The "ask before sending a duplicate" decision is written once (submissions.jobs.duplicates): a typed
answer, earlier submissions per job and repeats within the request, that the single form, batches and
CSV files only show in their own words."""

import pytest
from django.urls import reverse

from submissions.jobs import duplicates
from submissions.jobs.duplicates import Duplicates, Repeat, SentBefore
from submissions.models import Batch, Submission
from tests.batches.posting import NEW_BATCH, batch_post, csv_text, job, preview_of, send
from tests.factories import make_submission

pytestmark = pytest.mark.django_db
State = Submission.State
VIDEO = "https://cdn.example.com/show/episode-1.mp4"
AUDIO = "https://cdn.example.com/show/episode-1-de.wav"


def inputs(video=VIDEO, audio=AUDIO, **more):
    return {"video_url": video, "audio_url": audio, **more}


def test_the_answer_names_earlier_jobs_and_repeats_by_position(user):
    older = make_submission(user, video_url=VIDEO, audio_url=AUDIO, title="older")
    newer = make_submission(user, video_url=VIDEO + "#t=1", audio_url=AUDIO, title="newer")
    make_submission(user, video_url=VIDEO, audio_url=AUDIO, state=State.SEND_FAILED)  # never made: not counted
    other = inputs(video="https://cdn.example.com/show/episode-2.mp4")
    jobs = [other, inputs(), inputs(title="again"), inputs(disable_active_speaker_detection=True)]

    found = duplicates.duplicates_to_confirm(jobs=jobs, confirmed=False)

    assert found
    assert found.sent_before == [SentBefore(1, [newer, older]), SentBefore(2, [newer, older])]
    assert found.repeats == [Repeat(1, [2]), Repeat(2, [1])]
    assert found.labelled(["a", "b", "c", "d"]) == ([("b", [newer, older]), ("c", [newer, older])], [("b", ["c"]), ("c", ["b"])])


def test_nothing_to_ask_once_confirmed_or_for_new_inputs(user, django_assert_num_queries):
    make_submission(user, video_url=VIDEO, audio_url=AUDIO)
    with django_assert_num_queries(0):
        assert not duplicates.duplicates_to_confirm(jobs=[inputs(), inputs()], confirmed=True)
        assert not duplicates.duplicates_to_confirm(jobs=[], confirmed=False)
    with django_assert_num_queries(1):
        never_sent = inputs(video="https://cdn.example.com/new.mp4")
        assert duplicates.duplicates_to_confirm(jobs=[never_sent], confirmed=False) == Duplicates()


def test_earlier_jobs_are_capped_per_job(user):
    made = [make_submission(user, video_url=VIDEO, audio_url=AUDIO, title=f"take {n}") for n in range(7)]
    assert len(duplicates.duplicates_to_confirm(jobs=[inputs()], confirmed=False).sent_before[0].earlier) == 3
    five = duplicates.duplicates_to_confirm(jobs=[inputs()], confirmed=False, per_job=5).sent_before[0].earlier
    assert {job.pk for job in five} <= {job.pk for job in made} and len(five) == 5


@pytest.fixture
def everything_was_sent_before(monkeypatch, user):
    """The selector answers "sent before" for every job, whatever its inputs: a view that still decides by
    itself would not ask."""
    earlier = make_submission(user, video_url="https://cdn.example.com/unrelated.mp4", title="The earlier one")

    def answer(*, jobs, confirmed, per_job=duplicates.EARLIER_PER_JOB):
        return Duplicates() if confirmed else Duplicates(sent_before=[SentBefore(n, [earlier]) for n in range(len(jobs))])

    monkeypatch.setattr(duplicates, "duplicates_to_confirm", answer)
    return earlier


def test_the_single_form_asks_what_the_selector_says(logged_in, everything_was_sent_before):
    new = {"video_url": "https://cdn.example.com/never-sent.mp4", "audio_url": AUDIO}
    response = logged_in.post(reverse("submissions:new"), new)
    page = response.content.decode()
    assert response.status_code == 200 and "This exact video, audio and options were sent before" in page
    assert "The earlier one" in page and Submission.objects.count() == 1


def test_a_batch_asks_what_the_selector_says(logged_in, everything_was_sent_before):
    response = logged_in.post(NEW_BATCH, batch_post(["de", "fr"]))
    page = response.content.decode()
    assert response.status_code == 200 and 'name="confirm_duplicates" value="1"' in page
    assert "Some of these were sent before." in page
    assert page.count(f'href="{everything_was_sent_before.get_absolute_url()}"') == 2 and Batch.objects.count() == 0


def test_a_csv_file_asks_what_the_selector_says(logged_in, everything_was_sent_before):
    stored, page = preview_of(logged_in, csv_text([job(1, reference_id=""), job(2, reference_id="")]))
    assert "2 rows were sent before" in page
    assert page.count(f'href="{everything_was_sent_before.get_absolute_url()}"') == 2
    refused = send(logged_in, stored)
    assert refused.status_code == 302 and Batch.objects.count() == 0
    assert "2 rows were sent before. Tick the box to send them anyway." in [str(m) for m in refused.wsgi_request._messages]
