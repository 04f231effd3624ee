"""The tracking side of the pages: fragments that poll only while something changes, the detail
page's timeline, players and messages, "Refresh now", and the admin import button."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from submissions.models import Submission
from submissions.outputs import services as outputs
from tests.factories import make_submission

pytestmark = pytest.mark.django_db
State = Submission.State
HTMX = {"HTTP_HX_REQUEST": "true"}


def sent_job(sandbox, user, **fields):
    job = sandbox.create_job(video_url=sandbox.sample_video_url, audio_url=sandbox.sample_audio_url)
    defaults = {"request_id": job["id"], "state": State.QUEUED, "upstream_status": "queued",
                "sent_at": timezone.now(), "video_url": sandbox.sample_video_url}
    return make_submission(user, **{**defaults, **fields})


def test_history_rows_poll_while_something_is_in_flight(logged_in, user, sandbox):
    job = sent_job(sandbox, user, title="Ep 1 FR")
    page = logged_in.get(reverse("submissions:history")).content.decode()
    assert 'hx-trigger="every 3s"' in page and "htmx-2.min.js" in page

    fragment = logged_in.get(reverse("submissions:history"), **HTMX).content.decode()
    assert fragment.strip().startswith('<tbody id="history-rows"')
    assert "<html" not in fragment and "Ep 1 FR" in fragment and 'hx-trigger="every 3s"' in fragment

    Submission.objects.filter(pk=job.pk).update(state=State.COMPLETED)
    finished = logged_in.get(reverse("submissions:history"), **HTMX).content.decode()
    assert "hx-trigger" not in finished and "Completed" in finished


def test_history_polling_keeps_the_page_and_the_filters(logged_in, user):
    for _ in range(51):
        make_submission(user, state=State.QUEUED, request_id=None)
    url = reverse("submissions:history") + "?state=queued&after=2999-01-01T00%3A00%3A00%2B00%3A00_1"
    page = logged_in.get(url).content.decode()
    assert 'hx-get="/?state=queued&amp;after=2999-01-01T00%3A00%3A00%2B00%3A00_1"' in page


def test_detail_polls_while_in_flight_and_stops_when_finished(logged_in, user, sandbox):
    job = sent_job(sandbox, user)
    fragment = logged_in.get(job.get_absolute_url(), **HTMX).content.decode()
    assert fragment.strip().startswith('<div id="job-live"')
    assert "<html" not in fragment and 'hx-trigger="every 3s"' in fragment
    assert "Not ready yet." in fragment and "Refresh now" in fragment

    sandbox.advance(60)
    logged_in.post(reverse("submissions:refresh", args=[job.pk]))
    done = logged_in.get(job.get_absolute_url(), **HTMX).content.decode()
    assert "Refresh now" not in done
    # Finished: the page polls on only while DubDash keeps its copy of the output, then stops.
    assert "Keeping a copy" in done and 'hx-trigger="every 3s"' in done
    outputs.copy_due(seconds=10)
    kept = logged_in.get(job.get_absolute_url(), **HTMX).content.decode()
    assert "hx-trigger" not in kept and "Kept by DubDash" in kept


def test_completed_job_shows_timeline_player_download_and_source(logged_in, user, sandbox):
    created = timezone.now() - timedelta(minutes=3)
    job = sent_job(
        sandbox, user, state=State.COMPLETED, created_at=created, sent_at=created + timedelta(seconds=2),
        started_at=created + timedelta(seconds=12), finished_at=created + timedelta(minutes=2, seconds=12),
        output_url="https://cdn.example.com/out/ep1-fr.mp4",
    )
    page = logged_in.get(job.get_absolute_url()).content.decode()
    # No copy yet: the player and the link use Chamelaion's URL, and say so (a cross-origin link cannot
    # force a download, so it does not pretend to).
    assert '<video id="output-video" controls preload="metadata" src="https://cdn.example.com/out/ep1-fr.mp4">' in page
    assert 'href="https://cdn.example.com/out/ep1-fr.mp4">Download the video</a>' in page
    assert "Playing from Chamelaion\u2019s link" in page
    assert f'<video id="source-video" controls preload="metadata" src="{sandbox.sample_video_url}">' in page
    for step, took in (("Sent to Chamelaion", "after 2 s"), ("Started", "after 10 s"), ("Finished", "after 2 min 0 s")):
        assert step in page and took in page


def test_failed_job_explains_in_plain_words(logged_in, user, sandbox):
    job = sent_job(sandbox, user, state=State.FAILED, upstream_error_message="video URL is not accessible")
    page = logged_in.get(job.get_absolute_url()).content.decode()
    assert "Chamelaion could not make this video." in page
    assert "Check that the link is public" in page
    other = sent_job(sandbox, user, state=State.FAILED, upstream_error_message="face not found in <frame>")
    assert "Chamelaion reported: “face not found in &lt;frame&gt;”." in logged_in.get(other.get_absolute_url()).content.decode()


def test_only_http_outputs_become_players(logged_in, user, sandbox):
    job = sent_job(sandbox, user, state=State.COMPLETED, output_url="javascript:alert(1)")
    page = logged_in.get(job.get_absolute_url()).content.decode()
    assert "javascript:alert" not in page and "No output." in page


def test_refresh_now_asks_once_and_then_waits_a_few_seconds(logged_in, user, sandbox):
    job = sent_job(sandbox, user)
    sandbox.advance(15)
    first = logged_in.post(reverse("submissions:refresh", args=[job.pk]), follow=True).content.decode()
    assert "Checked just now: processing." in first
    calls = sandbox.stats()["get"]
    second = logged_in.post(reverse("submissions:refresh", args=[job.pk]), follow=True).content.decode()
    assert "Checked a moment ago." in second
    assert sandbox.stats()["get"] == calls

    Submission.objects.filter(pk=job.pk).update(refresh_requested_at=timezone.now() - timedelta(seconds=6))
    sandbox.advance(60)
    logged_in.post(reverse("submissions:refresh", args=[job.pk]))
    job.refresh_from_db()
    assert job.state == State.COMPLETED and sandbox.stats()["get"] == calls + 1


def test_refresh_now_reports_upstream_failures_plainly(logged_in, user, sandbox):
    job = sent_job(sandbox, user)
    sandbox.faults.script = ["500"]
    page = logged_in.post(reverse("submissions:refresh", args=[job.pk]), follow=True).content.decode()
    assert "Could not check now: Chamelaion had an internal problem." in page


def test_refresh_now_marks_a_vanished_job_missing(logged_in, user, sandbox):
    job = make_submission(user, request_id="00000000-0000-4000-8000-00000000beef", state=State.PROCESSING)
    page = logged_in.post(reverse("submissions:refresh", args=[job.pk]), follow=True).content.decode()
    job.refresh_from_db()
    assert job.state == State.MISSING
    assert "Not found at Chamelaion." in page


def test_refresh_is_post_only_and_for_those_who_can_see_the_job(client, user, other_user, cast, sandbox):
    job = sent_job(sandbox, user)
    client.force_login(user)
    assert client.get(reverse("submissions:refresh", args=[job.pk])).status_code == 405
    client.force_login(other_user)  # a teammate may ask for fresh news: it changes nothing
    assert client.post(reverse("submissions:refresh", args=[job.pk])).status_code == 302
    client.force_login(cast.no_role)
    assert client.post(reverse("submissions:refresh", args=[job.pk])).status_code == 404


def test_imported_job_says_where_it_came_from(admin_client, sandbox):
    job = sandbox.create_job(video_url="https://x.example/v.mp4", audio_url="https://x.example/a.wav")
    response = admin_client.post(reverse("admin:submissions_submission_import"), follow=True)
    assert "imported 1, 0 were already in DubDash" in response.content.decode()
    imported = Submission.objects.get(request_id=job["id"])
    page = admin_client.get(imported.get_absolute_url()).content.decode()
    assert "outside DubDash (imported)" in page and "Not reported by Chamelaion (imported job)." in page


def test_admin_import_button_is_there_and_post_only(admin_client, sandbox):
    changelist = admin_client.get(reverse("admin:submissions_submission_changelist")).content.decode()
    assert "Import jobs made outside DubDash" in changelist
    assert admin_client.get(reverse("admin:submissions_submission_import")).status_code == 405


def test_admin_import_reports_an_unreachable_api(admin_client, sandbox):
    sandbox.faults.script = ["500"]
    response = admin_client.post(reverse("admin:submissions_submission_import"), follow=True)
    assert "Import stopped: Chamelaion had an internal problem." in response.content.decode()
