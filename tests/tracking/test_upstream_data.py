"""Issue 9, item 2: one bad upstream reply froze status updates for every job polled with it.

A NUL in a status or an error message, or an output link over 2,048 characters, made the refresh round's
single transaction fail on PostgreSQL (DataError): every job of the round stayed leased and failed again
every two minutes, finished jobs stayed "Queued", and Refresh now on the bad job answered 500. These run
the worker and the pages against the sandbox over real HTTP, its `bad_replies` knob spoiling one job's
reply at a time, on SQLite and on PostgreSQL (where NUL is refused).
"""

from datetime import timedelta

import pytest
import requests
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from submissions.chamelaion import replies as chamelaion_replies
from submissions.chamelaion.replies import ERROR_MESSAGE_MAX_LENGTH, TRUNCATED
from submissions.models import Submission
from submissions.tracking import imports
from submissions.tracking import services as tracking
from tests.factories import make_submission

pytestmark = pytest.mark.django_db
State = Submission.State
FAILING_VIDEO = "https://cdn.example.com/fail-episode.mp4"


@pytest.fixture
def sent(sandbox, user):
    """A job in the sandbox and its sent submission, due for polling now."""

    def make(*, video_url=None):
        job = sandbox.create_job(video_url=video_url or sandbox.sample_video_url, audio_url=sandbox.sample_audio_url)
        return make_submission(
            user, request_id=job["id"], state=State.QUEUED, upstream_status="queued",
            sent_at=timezone.now() - timedelta(seconds=30), next_poll_at=timezone.now() - timedelta(seconds=1),
        )

    return make


def refresh(client, job):
    """Refresh now, as the button posts it; a server error is answered as a 500 page, not raised."""
    client.raise_request_exception = False
    return client.post(reverse("submissions:refresh", args=[job.pk]))


def test_one_bad_reply_does_not_freeze_the_round(sandbox, sent):
    good = [sent() for _ in range(3)]
    nul_status, nul_error, long_link = sent(), sent(video_url=FAILING_VIDEO), sent()
    sandbox.faults.bad_replies = {
        nul_status.request_id: "nul-in-status",
        nul_error.request_id: "nul-in-error",
        long_link.request_id: "long-output-url",
    }
    sandbox.advance(60)

    report = tracking.refresh_round()

    assert (report.jobs, report.updated, report.failed) == (6, 6, False)
    for job in good:
        job.refresh_from_db()
        assert job.state == State.COMPLETED and job.output_url.endswith(f"/files/output/{job.request_id}.mp4")
    for job in (nul_status, nul_error, long_link):
        job.refresh_from_db()
    # NUL removed: what is left is what Chamelaion meant.
    assert (nul_status.state, nul_status.upstream_status) == (State.COMPLETED, "completed")
    assert nul_error.state == State.FAILED
    assert nul_error.upstream_error_message == "video URL is not accessible"
    assert "could not download the video" in nul_error.failure_explanation
    # The long link is kept whole, and it plays.
    assert long_link.state == State.COMPLETED and len(long_link.output_url) > 2048
    assert long_link.playable_output_url == long_link.output_url
    assert requests.get(long_link.output_url, timeout=5).status_code == 200
    assert not Submission.objects.exclude(poll_lease="").exists()
    assert not Submission.objects.filter(next_poll_at__isnull=False).exists()  # all finished


def test_refresh_now_on_a_job_with_a_bad_reply_answers_a_page_not_500(sandbox, sent, logged_in):
    job = sent()
    sandbox.faults.bad_replies = {job.request_id: "nul-in-status"}
    sandbox.advance(15)  # processing

    response = refresh(logged_in, job)

    assert response.status_code == 302 and response["Location"] == job.get_absolute_url()
    page = logged_in.get(job.get_absolute_url()).content.decode()
    assert "Checked just now: processing." in page
    job.refresh_from_db()
    assert (job.state, job.upstream_status) == (State.PROCESSING, "processing")


def test_a_long_error_message_is_kept_truncated_and_marked(sandbox, sent, logged_in):
    job = sent(video_url=FAILING_VIDEO)
    sandbox.faults.bad_replies = {job.request_id: "long-error"}
    sandbox.advance(60)

    tracking.refresh_round()

    job.refresh_from_db()
    assert job.state == State.FAILED
    assert job.upstream_error_message.startswith("video URL is not accessible (trace: frame; ")
    assert job.upstream_error_message.endswith(TRUNCATED)
    assert len(job.upstream_error_message) == ERROR_MESSAGE_MAX_LENGTH
    assert TRUNCATED in logged_in.get(job.get_absolute_url()).content.decode()


def test_a_lone_surrogate_in_a_reply_is_replaced(sandbox, sent):
    job = sent(video_url=FAILING_VIDEO)
    sandbox.faults.bad_replies = {job.request_id: "lone-surrogate"}
    sandbox.advance(60)

    report = tracking.refresh_round()

    job.refresh_from_db()
    assert (report.updated, job.state) == (1, State.FAILED)
    assert job.upstream_error_message == "video URL is not accessible \ufffd"


def test_an_over_long_status_is_cut_to_its_column(sandbox, sent):
    job = sent()
    sandbox.faults.bad_replies = {job.request_id: "long-status"}
    sandbox.advance(15)

    tracking.refresh_round()

    job.refresh_from_db()
    assert job.state == State.IN_FLIGHT  # an unknown status: still in flight, shown as it is
    assert len(job.upstream_status) == 64 and job.upstream_status.endswith(TRUNCATED)
    assert job.upstream_status.startswith("processing-zzz")


@pytest.mark.parametrize(
    ("kind", "reason"),
    [("huge-output-url", "characters long, far longer than any real link"), ("non-http-output-url", "not a web address")],
)
def test_an_output_link_that_cannot_be_played_is_not_kept_and_the_page_says_why(sandbox, sent, logged_in, kind, reason):
    job, other = sent(), sent()
    sandbox.faults.bad_replies = {job.request_id: kind}
    sandbox.advance(60)

    tracking.refresh_round()

    job.refresh_from_db()
    other.refresh_from_db()
    assert job.state == other.state == State.COMPLETED
    assert job.output_url == "" and reason in job.last_error
    assert other.output_url and other.last_error == ""
    page = logged_in.get(job.get_absolute_url()).content.decode()
    assert reason in page and 'id="output-video"' not in page and "No output." not in page


def test_an_imported_job_with_an_unusable_reference_id_is_kept_without_it(sandbox, user):
    theirs = sandbox.create_job(video_url=sandbox.sample_video_url, audio_url=sandbox.sample_audio_url, reference_id="x")
    fine = sandbox.create_job(video_url=sandbox.sample_video_url, audio_url=sandbox.sample_audio_url, reference_id="y")
    sandbox.faults.bad_replies = {theirs["id"]: "bad-reference-id"}

    report = imports.import_external_jobs()

    assert report.imported == 2
    assert Submission.objects.get(request_id=theirs["id"]).reference_id is None
    assert Submission.objects.get(request_id=fine["id"]).reference_id == "y"


# --- When cleaning misses something, the database's refusal still costs only that job ---------------


@pytest.fixture
def cleaning_misses(monkeypatch):
    """As if a future field or character slipped past the cleaning: text reaches the database as sent."""
    monkeypatch.setattr(chamelaion_replies, "storable", lambda text: text)
    monkeypatch.setattr(chamelaion_replies, "capped", lambda text, limit: text)


@pytest.mark.parametrize("kind", ["lone-surrogate", "nul-in-error", "long-status"])
def test_a_write_the_database_refuses_costs_only_that_job(sandbox, sent, cleaning_misses, kind):
    # The driver refuses a lone surrogate and NUL before sending; the server refuses a value longer than
    # its column, which aborts the whole transaction: only a savepoint lets the others be written.
    if kind != "lone-surrogate" and connection.vendor != "postgresql":
        pytest.skip("SQLite stores NUL and over-long values")
    good = [sent() for _ in range(3)]
    bad = sent(video_url=FAILING_VIDEO)
    sandbox.faults.bad_replies = {bad.request_id: kind}  # no database encodes a lone surrogate
    sandbox.advance(60)
    before = timezone.now()

    report = tracking.refresh_round()

    assert (report.jobs, report.updated, report.unstored, report.failed) == (4, 3, 1, False)
    for job in good:
        job.refresh_from_db()
        assert job.state == State.COMPLETED
    bad.refresh_from_db()
    assert bad.state == State.QUEUED and bad.poll_lease == ""  # released, not left leased
    assert before < bad.next_poll_at < timezone.now() + timedelta(minutes=1)  # back on the schedule


def test_refresh_now_when_the_database_refuses_the_answer_says_so(sandbox, sent, logged_in, cleaning_misses):
    job = sent(video_url=FAILING_VIDEO)
    sandbox.faults.bad_replies = {job.request_id: "lone-surrogate"}
    sandbox.advance(60)

    response = refresh(logged_in, job)

    assert response.status_code == 302
    page = logged_in.get(job.get_absolute_url()).content.decode()
    assert "could not store what it said about this job" in page
    job.refresh_from_db()
    assert job.state == State.QUEUED


def test_an_import_the_database_refuses_in_part_keeps_the_rest(sandbox, cleaning_misses):
    refused, kept = (sandbox.create_job(video_url=FAILING_VIDEO, audio_url=sandbox.sample_audio_url) for _ in range(2))
    sandbox.advance(60)
    sandbox.faults.bad_replies = {refused["id"]: "lone-surrogate"}

    report = imports.import_external_jobs()

    assert report.imported == 1
    assert list(Submission.objects.values_list("request_id", flat=True)) == [kept["id"]]


def test_the_caps_are_the_columns_sizes():
    field = Submission._meta.get_field
    assert field("request_id").max_length == chamelaion_replies.REQUEST_ID_MAX_LENGTH
    assert field("reference_id").max_length == chamelaion_replies.REFERENCE_ID_MAX_LENGTH
    assert field("upstream_status").max_length == chamelaion_replies.STATUS_MAX_LENGTH
    assert field("output_url").get_internal_type() == "TextField"  # room for any link up to the 64 KiB cap
    assert field("upstream_error_message").get_internal_type() == "TextField"


@pytest.mark.parametrize("kind", ["naive-created-at", "created-past-the-end-of-time"])
def test_a_reply_with_an_unusable_time_costs_that_job_only(sandbox, sent, kind):
    """Found in review: a time without an offset failed every round (it cannot be compared with the
    others), and 9999-12-31T23:59:59-14:00 overflowed when stored."""
    good = [sent() for _ in range(3)]
    bad = sent()
    sandbox.faults.bad_replies = {bad.request_id: kind}
    sandbox.advance(60)

    report = tracking.refresh_round()

    assert not report.failed and report.updated == 3
    for job in good:
        job.refresh_from_db()
        assert job.state == State.COMPLETED
    bad.refresh_from_db()
    assert bad.state == State.QUEUED and bad.poll_lease == "" and bad.next_poll_at is not None  # asked again later


def test_the_worker_says_how_many_jobs_it_could_not_store(sandbox, sent, cleaning_misses, capsys):
    from django.core.management import call_command

    sent(), sent()
    bad = sent(video_url=FAILING_VIDEO)
    sandbox.faults.bad_replies = {bad.request_id: "lone-surrogate"}  # no database encodes it
    sandbox.advance(60)
    call_command("run_worker", once=True)
    assert "3 jobs, 2 updated, 0 missing, 1 API calls; 1 not stored (asked about again later)" in capsys.readouterr().out
