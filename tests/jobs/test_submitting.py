"""Submitting through the form, end to end against the sandbox over real HTTP: every bad input gets a
field error and keeps what was typed; every upstream failure gets a plain message, keeps what was typed,
and leaves the submission in the history; sending again never creates a second job."""

import socket
import time
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from submissions.models import Submission
from submissions.outbox import worker as outbox
from submissions.sandbox import QUOTA_USED_UP_TOKEN
from tests.factories import make_submission

pytestmark = pytest.mark.django_db
State = Submission.State

NEW = reverse("submissions:new")
VALID = {
    "video_url": "https://cdn.example.com/episode-1.mp4",
    "audio_url": "https://cdn.example.com/episode-1-de.wav",
    "target_language": "de",
    "title": "Episode 1 (German)",
    "reference_id": "",
}


def post_form(client, follow=False, **changes):
    return client.post(NEW, {**VALID, **changes}, follow=follow)


def only_submission() -> Submission:
    (submission,) = Submission.objects.all()
    return submission


def test_every_page_needs_a_login(client):
    for url in (reverse("submissions:history"), NEW, reverse("submissions:detail", args=[1])):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


def test_login_page_logs_in(client, user):
    response = client.post(reverse("login"), {"username": "maria", "password": "dubbing-all-day"})
    assert response.status_code == 302
    assert client.get(reverse("submissions:history")).status_code == 200


def test_form_in_sandbox_mode_shows_the_banner_and_offers_the_samples(logged_in, sandbox):
    page = logged_in.get(NEW).content.decode()
    assert "Sandbox mode." in page
    assert "?sample=1" in page
    prefilled = logged_in.get(NEW + "?sample=1").content.decode()
    assert f'value="{sandbox.sample_video_url}"' in prefilled
    assert f'value="{sandbox.sample_audio_url}"' in prefilled


def test_no_banner_with_a_real_key(logged_in, settings):
    settings.CHAMELAION_API_KEY = "a-real-key"
    response = logged_in.get(NEW)
    page = response.content.decode()
    # The form itself, not a redirect or an error page (where the banner would be missing too).
    assert response.status_code == 200
    assert [template.name for template in response.templates][:1] == ["submissions/jobs/new.html"]
    assert 'name="video_url"' in page and 'name="audio_url"' in page
    assert "Sandbox mode." not in page and "?sample=1" not in page


def test_submit_saves_sends_and_shows_the_request_id(logged_in, user, sandbox):
    response = post_form(logged_in, disable_active_speaker_detection="on")
    submission = only_submission()
    assert response.status_code == 302
    assert response["Location"] == submission.get_absolute_url()
    (job,) = sandbox.jobs()
    assert submission.request_id == job["id"]
    assert submission.reference_id == job["reference_id"]
    assert submission.reference_id.startswith("dubdash-")
    assert submission.state == Submission.State.QUEUED
    assert submission.created_by == user
    assert submission.disable_active_speaker_detection is True
    assert sandbox.job_inputs(job["id"]) == {
        "video_url": VALID["video_url"], "audio_url": VALID["audio_url"],
        "disable_active_speaker_detection": True, "reference_id": submission.reference_id,
    }
    assert (submission.target_language, submission.title) == ("de", "Episode 1 (German)")
    assert submission.sent_at is not None and submission.send_attempts == 1

    detail = logged_in.get(response["Location"]).content.decode()
    assert job["id"] in detail and "Sent to Chamelaion." in detail
    history = logged_in.get(reverse("submissions:history")).content.decode()
    assert job["id"] in history and "Episode 1 (German)" in history and "Queued" in history
    assert "<td>German</td>" in history


def test_own_reference_id_is_sent(logged_in, sandbox):
    post_form(logged_in, reference_id="ep1.de_v2-final")
    assert [job["reference_id"] for job in sandbox.jobs()] == ["ep1.de_v2-final"]


def test_generated_reference_ids_are_unique(logged_in, sandbox):
    post_form(logged_in)
    post_form(logged_in, confirm_duplicate="1")
    references = {job["reference_id"] for job in sandbox.jobs()}
    assert len(references) == 2
    assert references == set(Submission.objects.values_list("reference_id", flat=True))


LONG_URL = "https://cdn.example.com/" + "a" * 2030 + ".mp4"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("video_url", "", "This field is required."),
        ("video_url", "cdn.example.com/episode-1.mp4", "starting with http:// or https://"),
        ("video_url", "ftp://cdn.example.com/episode-1.mp4", "starting with http:// or https://"),
        ("video_url", "/media/episode-1.mp4", "starting with http:// or https://"),
        ("video_url", LONG_URL, "at most 2048 characters"),
        ("audio_url", "javascript:alert(1)", "starting with http:// or https://"),
        ("audio_url", "https://", "starting with http:// or https://"),
        ("reference_id", "episode 1", "letters, digits, dots, underscores and hyphens"),
        ("reference_id", "é-1", "letters, digits, dots, underscores and hyphens"),
        ("reference_id", "r" * 129, "at most 128 characters"),
        ("title", "t" * 201, "at most 200 characters"),
        ("target_language", "xx-nowhere", "Select a valid choice"),
    ],
)
def test_bad_input_gets_a_field_error_and_keeps_what_was_typed(logged_in, sandbox, field, value, message):
    response = post_form(logged_in, **{field: value})
    page = response.content.decode()
    assert response.status_code == 200
    assert message in page
    assert "Nothing was sent" in page
    assert f'value="{VALID["title" if field != "title" else "video_url"]}"' in page
    if field not in ("video_url", "target_language") and value:
        assert value.replace("'", "&#x27;") in page  # what was typed is still in the form
    assert Submission.objects.count() == 0
    assert sandbox.jobs() == []


def test_duplicate_reference_id_is_refused(logged_in, sandbox):
    post_form(logged_in, reference_id="ep-7")
    response = post_form(logged_in, reference_id="ep-7", title="second try")
    assert "Another submission already uses this reference id" in response.content.decode()
    assert 'value="second try"' in response.content.decode()
    assert Submission.objects.count() == 1 and len(sandbox.jobs()) == 1


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}/api"


def test_a_request_refused_as_invalid_comes_back_to_the_form_to_fix(logged_in, sandbox):
    sandbox.faults.script = ["pass", "400"]  # the chosen reference id's lookup, then the POST
    response = post_form(logged_in, reference_id="ep1-de", disable_active_speaker_detection="on")
    page = response.content.decode()
    assert response.status_code == 200
    assert "Chamelaion refused the request as invalid: “invalid request body”" in page
    for typed in ("https://cdn.example.com/episode-1.mp4", "Episode 1 (German)", "ep1-de"):
        assert f'value="{typed}"' in page
    assert 'id="id_disable_active_speaker_detection" checked>' in page
    submission = only_submission()
    assert submission.state == Submission.State.SEND_FAILED and not submission.send_outcome_unknown
    assert f'name="resubmit" value="{submission.pk}"' in page
    history = logged_in.get(reverse("submissions:history")).content.decode()
    assert "Could not be sent" in history and "ep1-de" in history


@pytest.mark.parametrize(
    ("scenario", "message", "outcome_unknown"),
    [
        ("401", "An administrator must fix the key", False),
        ("412", "quota is used up", False),
        ("429", "too many requests right now (rate limit)", False),
        ("500", "Chamelaion had an internal problem", True),
        ("502-html", "Chamelaion had an internal problem", True),
        ("timeout", "may or may not have been created", True),
        ("drop-after-create", "may or may not have been created", True),
        ("not-json", "something DubDash does not understand", True),
        ("unreachable", "could not reach Chamelaion", False),
    ],
)
def test_an_upstream_failure_saves_the_job_explains_and_retries_it(
    logged_in, sandbox, settings, scenario, message, outcome_unknown
):
    if scenario == "401":
        settings.CHAMELAION_API_KEY = "not-a-valid-key"
        settings.CHAMELAION_BASE_URL = sandbox.base_url
    elif scenario == "412":
        settings.CHAMELAION_API_KEY = QUOTA_USED_UP_TOKEN
        settings.CHAMELAION_BASE_URL = sandbox.base_url
    elif scenario == "unreachable":
        settings.CHAMELAION_SANDBOX_URL = closed_port_url()
    else:
        sandbox.faults.hang_seconds = 1.0
        # A chosen reference id is first looked up (is it a stranger's?); the fault is the POST's.
        sandbox.faults.script = ["pass", scenario]

    response = post_form(logged_in, reference_id="ep1-de", disable_active_speaker_detection="on", follow=True)
    page = response.content.decode()

    submission = only_submission()
    assert response.redirect_chain == [(submission.get_absolute_url(), 302)]
    assert "Saved, not sent yet." in page and message in page
    for typed in ("https://cdn.example.com/episode-1.mp4", "Episode 1 (German)", "ep1-de", "German (de)"):
        assert typed in page  # everything typed is kept, on the job's own page
    assert submission.state == Submission.State.PENDING and "Waiting to send" in page
    assert message in submission.last_error
    assert submission.send_outcome_unknown is outcome_unknown
    assert submission.next_attempt_at > timezone.now()
    assert "Waiting to send" in logged_in.get(reverse("submissions:history")).content.decode()
    if scenario in ("401", "412"):
        assert "Sending is paused:" in page and "by itself once that is fixed" in page
    elif scenario == "unreachable":  # nothing was delivered: an outage, not this job's failure
        assert "Sending is paused:" in page and "as soon as Chamelaion can be reached again" in page
        assert submission.failed_deliveries == 0 and submission.first_failed_delivery_at is None
    else:
        assert "DubDash tries again by itself at" in page


def test_a_lost_response_is_settled_by_the_outbox_without_a_second_job(logged_in, sandbox):
    sandbox.faults.script = ["pass", "drop-after-create"]  # the chosen reference id's lookup, then the POST
    post_form(logged_in, reference_id="ep1-de")
    submission = only_submission()
    assert len(sandbox.jobs()) == 1 and submission.request_id is None

    Submission.objects.update(next_attempt_at=timezone.now())
    time.sleep(0.25)  # past the (test-sized) settle time
    assert outbox.send_due(seconds=1, wait_for_budget=False) == 1
    (job,) = sandbox.jobs()
    submission.refresh_from_db()
    assert submission.request_id == job["id"]
    assert submission.state == Submission.State.QUEUED
    assert submission.send_attempts == 2


def test_after_a_timeout_dubdash_waits_for_the_job_to_settle_instead_of_resending(logged_in, sandbox, settings):
    settings.CHAMELAION_READ_TIMEOUT = 0.3
    settings.CHAMELAION_SETTLE_SECONDS = 1.5
    sandbox.faults.hang_seconds = 1.0  # the job is created 1 s after the POST, long after the client gave up
    sandbox.faults.script = ["timeout"]
    post_form(logged_in)
    submission = only_submission()
    assert submission.next_attempt_at >= submission.outcome_unknown_since + timedelta(seconds=1.5)

    Submission.objects.update(next_attempt_at=timezone.now())  # even if someone forced it early
    outbox.send_due(seconds=1, wait_for_budget=False)
    submission.refresh_from_db()
    assert "has not confirmed whether the earlier attempt arrived" in submission.last_error
    assert sandbox.jobs() == []  # the first POST is still hanging upstream
    assert submission.state == Submission.State.PENDING and submission.send_outcome_unknown

    time.sleep(1.6)
    Submission.objects.update(next_attempt_at=timezone.now())
    outbox.send_due(seconds=1, wait_for_budget=False)
    (job,) = sandbox.jobs()
    submission.refresh_from_db()
    assert submission.request_id == job["id"] and submission.state == Submission.State.QUEUED


def test_edits_apply_when_sending_again_after_a_definite_failure(logged_in, sandbox):
    sandbox.faults.script = ["pass", "400"]  # the chosen reference id's lookup, then the POST
    post_form(logged_in, reference_id="ep1-de")
    submission = only_submission()
    response = post_form(
        logged_in, reference_id="ep1-de-v2", title="Episode 1 (German, take 2)", resubmit=submission.pk
    )
    assert response.status_code == 302
    (job,) = sandbox.jobs()
    submission.refresh_from_db()
    assert (submission.reference_id, submission.title) == ("ep1-de-v2", "Episode 1 (German, take 2)")
    assert job["reference_id"] == "ep1-de-v2" and submission.request_id == job["id"]


def test_send_again_button_after_retries_ran_out(logged_in, sandbox, settings):
    settings.SEND_MAX_ATTEMPTS = 1
    sandbox.faults.script = ["500"]
    post_form(logged_in)
    submission = only_submission()
    assert submission.state == Submission.State.SEND_FAILED
    detail = logged_in.get(submission.get_absolute_url()).content.decode()
    assert "Send again" in detail and "internal problem" in detail and "stopped retrying after 1 attempts" in detail

    time.sleep(0.25)
    response = logged_in.post(reverse("submissions:send_again", args=[submission.pk]), follow=True)
    (job,) = sandbox.jobs()
    submission.refresh_from_db()
    assert submission.request_id == job["id"]
    assert "Sent to Chamelaion." in response.content.decode()

    # Sending a job that was sent is refused, not repeated.
    logged_in.post(reverse("submissions:send_again", args=[submission.pk]))
    assert len(sandbox.jobs()) == 1


@pytest.mark.parametrize("job_already_created", [True, False])
def test_a_send_interrupted_by_a_crash_is_settled_by_reference_id(logged_in, user, sandbox, job_already_created):
    submission = make_submission(
        user, reference_id="crashed-1", state=Submission.State.SENDING,
        last_attempt_at=timezone.now() - timedelta(hours=1),
    )
    if job_already_created:
        sandbox.create_job(video_url=VALID["video_url"], audio_url=VALID["audio_url"], reference_id="crashed-1")
    assert "Send again" in logged_in.get(submission.get_absolute_url()).content.decode()

    logged_in.post(reverse("submissions:send_again", args=[submission.pk]))
    (job,) = sandbox.jobs()
    submission.refresh_from_db()
    assert submission.request_id == job["id"] and submission.state == Submission.State.QUEUED


def test_a_send_in_progress_cannot_be_sent_again(logged_in, user, sandbox):
    submission = make_submission(
        user, reference_id="busy-1", state=Submission.State.SENDING, last_attempt_at=timezone.now()
    )
    assert "Send again" not in logged_in.get(submission.get_absolute_url()).content.decode()
    logged_in.post(reverse("submissions:send_again", args=[submission.pk]))
    assert sandbox.jobs() == []


def test_teammates_see_each_others_jobs_but_only_the_owner_sends_them_again(client, user, other_user, sandbox):
    client.force_login(user)
    sandbox.faults.script = ["400"]
    post_form(client)
    mine = only_submission()

    client.force_login(other_user)
    page = client.get(mine.get_absolute_url())
    assert page.status_code == 200
    assert "Only maria or a team admin can send it again." in page.content.decode()
    assert f'action="/submissions/{mine.pk}/send-again/"' not in page.content.decode()
    assert client.post(reverse("submissions:send_again", args=[mine.pk])).status_code == 403
    assert VALID["title"] not in client.get(reverse("submissions:history")).content.decode()  # "Mine"
    assert VALID["title"] in client.get(reverse("submissions:history"), {"scope": "team"}).content.decode()
    # Naming someone else's submission in the form makes a new one of your own, never resends theirs.
    post_form(client, resubmit=mine.pk, title="kenji's own", confirm_duplicate="1")
    mine.refresh_from_db()
    assert mine.state == Submission.State.SEND_FAILED and mine.send_attempts == 1
    assert Submission.objects.filter(created_by=other_user, title="kenji's own").exists()


def test_without_a_role_nobody_else_s_jobs_are_visible(client, user, cast, sandbox):
    mine = make_submission(user, title="Maria's job")
    client.force_login(cast.no_role)
    assert client.get(mine.get_absolute_url()).status_code == 404
    assert client.get(reverse("submissions:new")).status_code == 403
    assert "Maria's job" not in client.get(reverse("submissions:history"), {"scope": "team"}).content.decode()


def link(page: str, text: str) -> str:
    import html
    import re

    match = re.search(r'<a href="([^"]+)">' + re.escape(text) + "</a>", page)
    assert match, f"no link {text!r}"
    return reverse("submissions:history") + html.unescape(match.group(1))


def test_history_is_own_newest_first_and_paginated_by_50(logged_in, user, other_user):
    for n in range(51):
        make_submission(user, title=f"Mine {n:02d}")
    make_submission(other_user, title="Theirs")
    first = logged_in.get(reverse("submissions:history")).content.decode()
    assert first.count('class="badge') == 50 and "← Newer" not in first
    assert first.index("Mine 50") < first.index("Mine 49") and "Mine 00" not in first
    second = logged_in.get(link(first, "Older →")).content.decode()
    assert second.count('class="badge') == 1 and "Mine 00" in second and "Older →" not in second
    assert "Theirs" not in first + second
    back = logged_in.get(link(second, "← Newer")).content.decode()
    assert back.count('class="badge') == 50 and "Mine 50" in back and "Mine 01" in back


def test_history_query_count_does_not_grow_with_rows(logged_in, user):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries_for_history() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert logged_in.get(reverse("submissions:history")).status_code == 200
        return len(captured)

    for _ in range(3):
        make_submission(user)
        make_submission(user, state=State.QUEUED, request_id=f"req-{Submission.objects.count()}")
    queries_for_history()  # the first view also creates the rate budget's row, once
    few = queries_for_history()
    for _ in range(25):
        make_submission(user)
        make_submission(user, state=State.QUEUED, request_id=f"req-{Submission.objects.count()}")
    assert queries_for_history() == few <= 8


def test_what_users_type_is_escaped(logged_in, sandbox):
    post_form(logged_in, title='<script>alert("x")</script>')
    page = logged_in.get(reverse("submissions:history")).content.decode()
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page


def test_a_job_found_by_reference_id_is_stored_as_chamelaion_reports_it(logged_in, user, sandbox):
    submission = make_submission(
        user, reference_id="late-1", state=Submission.State.SENDING,
        last_attempt_at=timezone.now() - timedelta(hours=1),
    )
    job = sandbox.create_job(video_url=VALID["video_url"], audio_url=VALID["audio_url"], reference_id="late-1")
    sandbox.advance(60)  # it finished while DubDash was down

    logged_in.post(reverse("submissions:send_again", args=[submission.pk]))
    submission.refresh_from_db()
    assert submission.request_id == job["id"]
    assert submission.state == Submission.State.COMPLETED
    assert submission.upstream_status == "completed"
    assert submission.output_url.endswith(f"/files/output/{job['id']}.mp4")
    assert submission.started_at < submission.finished_at
    assert submission.last_synced_at is not None
    assert len(sandbox.jobs()) == 1


@pytest.mark.parametrize(
    ("term", "found"),
    [("pilot", "Pilot (German)"), ("REF-77", "Ref job"), ("4000-8000-00000000abcd", "Request job"),
     ("cdn.example.com/trailer", "Url job"), ("nothing-like-this", None)],
)
def test_search_covers_title_reference_id_request_id_and_urls(logged_in, user, term, found):
    make_submission(user, title="Pilot (German)")
    make_submission(user, title="Ref job", reference_id="ref-77-de")
    make_submission(user, title="Request job", request_id="00000000-0000-4000-8000-00000000abcd")
    make_submission(user, title="Url job", video_url="https://cdn.example.com/trailer.mp4")
    page = logged_in.get(reverse("submissions:history"), {"q": term}).content.decode()
    titles = [t for t in ("Pilot (German)", "Ref job", "Request job", "Url job") if t in page]
    assert titles == ([found] if found else [])
    if not found:
        assert "Nothing matches these filters." in page


def test_history_filters_by_state_language_and_dates_and_explains_bad_values(logged_in, user):
    make_submission(user, title="Old German", target_language="de", state=State.COMPLETED,
                    created_at=timezone.now() - timedelta(days=10))
    make_submission(user, title="New French", target_language="fr", state=State.FAILED)
    page = logged_in.get(reverse("submissions:history"), {"language": "de"}).content.decode()
    assert "Old German" in page and "New French" not in page
    page = logged_in.get(reverse("submissions:history"), {"state": "failed"}).content.decode()
    assert "New French" in page and "Old German" not in page
    since = (timezone.now() - timedelta(days=2)).date().isoformat()
    page = logged_in.get(reverse("submissions:history"), {"created_from": since}).content.decode()
    assert "New French" in page and "Old German" not in page
    bad = logged_in.get(reverse("submissions:history"), {"created_from": "yesterday-ish", "language": "de"}).content.decode()
    assert "Enter a valid date." in bad and "Old German" in bad and "New French" not in bad  # the good filter still applies
    assert 'value="yesterday-ish"' in bad
