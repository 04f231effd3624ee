"""Administration: the job, batch and activity admin (filters, search, actions, no per-row queries),
cancelling a job that still waits to send, and the activity trail."""

import ast
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib import admin as django_admin
from django.contrib.admin.models import CHANGE, LogEntry
from django.core.cache import cache
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from submissions import roles
from submissions.admin.submissions import SubmissionAdmin
from submissions.batches import selectors as batch_selectors
from submissions.batches import services as batch_services
from submissions.core import activity
from submissions.jobs import edit_services
from submissions.jobs import services as job_services
from submissions.jobs.fingerprints import inputs_fingerprint
from submissions.models import Activity, Batch, Submission
from submissions.outbox import selectors as outbox_selectors
from submissions.outbox import sending
from submissions.outbox import worker as outbox
from submissions.tracking import imports
from tests.factories import make_member, make_submission

pytestmark = pytest.mark.django_db
State = Submission.State
Verb = Activity.Verb
CHANGELIST = reverse("admin:submissions_submission_changelist")
BATCHES = reverse("admin:submissions_batch_changelist")
ACTIVITIES = reverse("admin:submissions_activity_changelist")


def titles(client, url=CHANGELIST, **query) -> set[str]:
    """The titles listed on a submission changelist page."""
    response = client.get(url, query)
    assert response.status_code == 200
    return set(re.findall(r'class="field-title_or_id"><a [^>]*>([^<]*)</a>', response.content.decode()))


def run_action(client, action, submissions):
    response = client.post(
        CHANGELIST, {"action": action, "_selected_action": [s.pk for s in submissions]}, follow=True
    )
    assert response.status_code == 200
    return response.content.decode()


def sent_job(fake_chamelaion, user, **fields):
    """A job that really exists on the (fake) Chamelaion account, as DubDash stores it right after sending."""
    job = fake_chamelaion.create_job(video_url=fake_chamelaion.sample_video_url, audio_url=fake_chamelaion.sample_audio_url)
    defaults = {"request_id": job["id"], "state": State.QUEUED, "upstream_status": "queued", "sent_at": timezone.now()}
    return make_submission(user, **{**defaults, **fields})


def due(user, **fields):
    return make_submission(user, next_attempt_at=timezone.now() - timedelta(seconds=1), **fields)


# --- Filters and search -----------------------------------------------------------------------------


@pytest.fixture
def team_jobs(admin_user, user, other_user):
    old_batch = Batch.objects.create(name="Old trailer", created_by=user, created_at=timezone.now() - timedelta(days=400))
    for n in range(31):  # more batches than the filter lists: the old one is only listed once chosen
        Batch.objects.create(name=f"Filler {n}", created_by=user)
    trailer = Batch.objects.create(name="Trailer", created_by=other_user)
    rows = {
        "Maria German": dict(created_by=user, target_language="de", batch=trailer, request_id="aaaa-1111"),
        "Maria French": dict(created_by=user, target_language="fr", state=State.SEND_FAILED, last_error="Refused."),
        "Kenji Japanese": dict(created_by=other_user, target_language="ja", state=State.FAILED,
                               upstream_error_message="video URL is not accessible", batch=old_batch),
        "Imported": dict(created_by=None, is_external=True, target_language="", video_url="", audio_url="",
                         reference_id="outside-ref-7", created_at=timezone.now() - timedelta(days=40)),
    }
    return {title: make_submission(fields.pop("created_by"), title=title, **fields) for title, fields in rows.items()}


ALL = {"Maria German", "Maria French", "Kenji Japanese", "Imported"}


def test_filters_by_state_member_language_batch_error_and_date(admin_client, team_jobs, user, other_user):
    page = admin_client.get(CHANGELIST).content.decode()
    for heading in ("By state", "By member", "By language", "By batch", "By has error", "By created at"):
        assert heading in page
    # The language filter lists the languages used, by name, and jobs without one.
    assert "German (de)" in page and "Japanese (ja)" in page and "Not set" in page and "Spanish (es)" not in page
    trailer, old = Batch.objects.get(name="Trailer"), Batch.objects.get(name="Old trailer")
    assert f'?batch={trailer.pk}"' in page and f'?batch={old.pk}"' not in page  # the newest batches only
    assert titles(admin_client) == ALL

    assert titles(admin_client, state__exact="send_failed") == {"Maria French"}
    assert titles(admin_client, created_by__id__exact=other_user.pk) == {"Kenji Japanese"}
    assert titles(admin_client, created_by__isnull="True") == {"Imported"}
    assert titles(admin_client, language="ja") == {"Kenji Japanese"}
    assert titles(admin_client, language="none") == {"Imported"}
    assert titles(admin_client, batch=trailer.pk) == {"Maria German"}
    chosen = admin_client.get(CHANGELIST, {"batch": old.pk}).content.decode()
    assert f'?batch={old.pk}"' in chosen and "Kenji Japanese" in chosen  # listed once chosen
    assert titles(admin_client, batch="none") == {"Maria French", "Imported"}
    assert titles(admin_client, batch="not-a-number") == set()
    assert titles(admin_client, has_error="yes") == {"Maria French", "Kenji Japanese"}
    assert titles(admin_client, has_error="no") == {"Maria German", "Imported"}
    week_ago = str(timezone.localtime() - timedelta(days=7))
    assert titles(admin_client, created_at__gte=week_ago) == ALL - {"Imported"}
    assert titles(admin_client, is_external__exact="1") == {"Imported"}


def test_columns(admin_client, team_jobs):
    page = admin_client.get(CHANGELIST).content.decode()
    for column in ("Title", "Created by", "Target language", "State", "Batch", "Reference id", "Request id", "Created at"):
        assert f">{column}</a>" in page or f">{column}</span>" in page, column
    assert "German (de)" in page and "Could not be sent" in page and "Trailer" in page


@pytest.mark.parametrize(
    "term, found",
    [
        ("aaaa-1111", {"Maria German"}),  # request id
        ("outside-ref-7", {"Imported"}),  # reference id
        ("episode-1.mp4", ALL - {"Imported"}),  # video URL
        ("episode-1-de.wav", ALL - {"Imported"}),  # audio URL
        ("Kenji", {"Kenji Japanese"}),  # title
        ("nothing-like-this", set()),
    ],
)
def test_search(admin_client, team_jobs, term, found):
    assert titles(admin_client, q=term) == found


def test_the_full_count_is_not_computed(admin_client, team_jobs):
    page = admin_client.get(CHANGELIST, {"q": "Maria"}).content.decode()
    assert "Show all" in page and "4 total" not in page


# --- No per-row queries -------------------------------------------------------------------------------


def _queries(client, url):
    cache.clear()  # both counts with the short-cached reads (banners) included: only the rows differ
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def _rows(django_user_model, count, start):
    """Each row with its own member and batch, so a per-row lookup of either would show."""
    for n in range(start, start + count):
        member = make_member(f"member{n}")
        batch = Batch.objects.create(name=f"Batch {n}", created_by=member)
        job = make_submission(member, title=f"Job {n}", batch=batch, target_language=["de", "fr", "ja"][n % 3])
        activity.record(actor=member, verb=Verb.SUBMITTED, submission=job)


@pytest.mark.parametrize("url", [CHANGELIST, BATCHES, ACTIVITIES])
def test_the_changelists_query_count_does_not_grow_with_the_rows(admin_client, django_user_model, url):
    _rows(django_user_model, 5, start=0)
    few = _queries(admin_client, url)
    _rows(django_user_model, 55, start=5)
    assert len(titles(admin_client)) == 60  # all on one page
    assert _queries(admin_client, url) == few


# --- Actions ----------------------------------------------------------------------------------------


def test_refresh_action_asks_chamelaion_and_skips_what_it_cannot_refresh(admin_client, admin_user, user, fake_chamelaion):
    in_flight = sent_job(fake_chamelaion, user, title="In flight")
    waiting = make_submission(user, title="Waiting")
    done = make_submission(user, title="Done", state=State.COMPLETED, request_id="done-1")
    fake_chamelaion.advance(60)  # Chamelaion finishes it meanwhile

    page = run_action(admin_client, "refresh_status", [in_flight, waiting, done])

    assert "Asked Chamelaion about 1. 1 \N{MULTIPLICATION SIGN} Checked just now: completed." in page
    assert "Skipped 2: not sent yet, already finished" in page
    in_flight.refresh_from_db()
    assert in_flight.state == State.COMPLETED and in_flight.output_url
    entry = Activity.objects.get(verb=Verb.REFRESHED)
    assert entry.actor == admin_user and entry.submission == in_flight and "completed" in entry.details


def test_refresh_action_reports_a_job_chamelaion_no_longer_has(admin_client, user, fake_chamelaion):
    gone = make_submission(user, title="Gone", state=State.QUEUED, request_id="00000000-0000-4000-8000-00000000dead")
    page = run_action(admin_client, "refresh_status", [gone])
    assert "1 \N{MULTIPLICATION SIGN} Chamelaion has no job with this request id" in page
    gone.refresh_from_db()
    assert gone.state == State.MISSING


def test_send_again_action_sends_the_failed_ones_and_counts_the_skipped(admin_client, admin_user, user, fake_chamelaion):
    failed = make_submission(user, title="Failed", state=State.SEND_FAILED, last_error="Timed out.")
    queued = make_submission(user, title="Queued", state=State.QUEUED, request_id="q-1")
    waiting = make_submission(user, title="Waiting")

    page = run_action(admin_client, "send_again", [failed, queued, waiting])

    assert "Sent or queued 1; still not sent 0. Skipped 2 that were not waiting to be sent again." in page
    (job,) = fake_chamelaion.jobs()
    failed.refresh_from_db()
    assert failed.request_id == job["id"] and failed.state == State.QUEUED
    entry = Activity.objects.get(verb=Verb.SENT_AGAIN)
    assert entry.actor == admin_user and entry.submission == failed


def test_cancel_action_cancels_only_what_waits_to_send(admin_client, admin_user, user, fake_chamelaion):
    waiting = make_submission(user, title="Waiting")
    sending = make_submission(user, title="Sending", state=State.SENDING, last_attempt_at=timezone.now())
    sent = make_submission(user, title="Sent", state=State.QUEUED, request_id="sent-1")
    # Waiting again after a timeout: Chamelaion may have the job, so only settling it can tell.
    uncertain = make_submission(user, title="Uncertain", outcome_unknown_since=timezone.now())

    page = run_action(admin_client, "cancel_waiting", [waiting, sending, sent, uncertain])

    assert "Cancelled 1. Skipped 3 that were not waiting to send" in page
    states = dict(Submission.objects.values_list("title", "state"))
    assert states == {"Waiting": State.CANCELLED, "Sending": State.SENDING, "Sent": State.QUEUED, "Uncertain": State.PENDING}
    entry = Activity.objects.get(verb=Verb.CANCELLED)
    assert entry.actor == admin_user and entry.submission == waiting
    assert fake_chamelaion.jobs() == []


def test_actions_that_change_jobs_need_the_retry_permission(client, cast, user):
    clerk = make_member("clerk", role=roles.VIEWER, is_staff=True)
    clerk.user_permissions.add(*_permissions("view_submission"))
    client.force_login(clerk)
    page = client.get(CHANGELIST).content.decode()
    assert 'value="refresh_status"' in page
    assert 'value="send_again"' not in page and 'value="cancel_waiting"' not in page

    boss = cast.staff_team_admin
    client.force_login(boss)
    waiting = make_submission(user, title="Waiting")
    page = client.get(CHANGELIST).content.decode()
    assert 'value="send_again"' in page and 'value="cancel_waiting"' in page
    assert "Cancelled 1." in run_action(client, "cancel_waiting", [waiting])


def _permissions(*codenames):
    from django.contrib.auth.models import Permission

    return Permission.objects.filter(content_type__app_label="submissions", codename__in=codenames)


# --- Cancel from the job's page -----------------------------------------------------------------------


def test_the_owner_cancels_a_waiting_job_from_its_page(logged_in, user):
    job = make_submission(user, title="Ep 9")
    page = logged_in.get(job.get_absolute_url()).content.decode()
    assert reverse("submissions:cancel", args=[job.pk]) in page and ">Cancel</button>" in page

    response = logged_in.post(reverse("submissions:cancel", args=[job.pk]), follow=True)

    job.refresh_from_db()
    assert job.state == State.CANCELLED and job.next_attempt_at is None
    page = response.content.decode()
    assert "Cancelled: it will not be sent." in page and "badge-cancelled" in page
    assert "It was never sent to Chamelaion." in page
    assert 'hx-trigger="every 3s"' not in page  # finished: the page stops polling
    assert ">Cancel</button>" not in page
    entry = Activity.objects.get(verb=Verb.CANCELLED)
    assert entry.actor == user and entry.submission == job


@pytest.mark.parametrize(
    "fields",
    [
        {"state": State.SENDING, "last_attempt_at": timezone.now()},
        {"state": State.QUEUED, "request_id": "sent-2"},
        {"state": State.SEND_FAILED},
        {"outcome_unknown_since": timezone.now()},  # waiting, but a POST may have reached Chamelaion
    ],
)
def test_only_a_job_waiting_to_send_can_be_cancelled(logged_in, user, fields):
    job = make_submission(user, **fields)
    before = Submission.objects.filter(pk=job.pk).values().get()
    page = logged_in.get(job.get_absolute_url()).content.decode()
    assert ">Cancel</button>" not in page

    response = logged_in.post(reverse("submissions:cancel", args=[job.pk]), follow=True)

    assert response.status_code == 200 and "Cancelled: it will not be sent." not in response.content.decode()
    assert Submission.objects.filter(pk=job.pk).values().get() == before
    assert not Activity.objects.filter(verb=Verb.CANCELLED).exists()


def test_another_submitter_may_not_cancel(client, user, other_user):
    job = make_submission(user)
    client.force_login(other_user)
    page = client.get(job.get_absolute_url()).content.decode()
    assert ">Cancel</button>" not in page
    assert client.post(reverse("submissions:cancel", args=[job.pk])).status_code == 403
    assert client.get(reverse("submissions:cancel", args=[job.pk])).status_code == 405
    job.refresh_from_db()
    assert job.state == State.PENDING


def test_a_team_admin_may_cancel_anyones_waiting_job(client, cast, user):
    boss = cast.team_admin
    job = make_submission(user)
    client.force_login(boss)
    client.post(reverse("submissions:cancel", args=[job.pk]))
    job.refresh_from_db()
    assert job.state == State.CANCELLED


def test_cancelled_jobs_are_never_sent_by_the_outbox(user, fake_chamelaion):
    cancelled, waiting = due(user, title="Cancelled"), due(user, title="Waiting")
    assert job_services.cancel(submission=cancelled, user=user)

    assert outbox_selectors.due_for_sending(limit=10) == [waiting]
    assert outbox.send_due(seconds=1, wait_for_budget=False) == 1

    assert len(fake_chamelaion.jobs()) == 1
    cancelled.refresh_from_db()
    assert cancelled.state == State.CANCELLED and cancelled.request_id is None and cancelled.send_attempts == 0
    assert not cancelled.is_in_flight and not sending.claim(cancelled)
    # Cancelling twice, or after the outbox sent it, changes nothing.
    assert not job_services.cancel(submission=cancelled, user=user)
    waiting.refresh_from_db()
    assert not job_services.cancel(submission=waiting, user=user) and waiting.state == State.QUEUED


def test_a_claim_by_the_outbox_wins_over_a_stale_cancel(user):
    job = due(user)
    stale = Submission.objects.get(pk=job.pk)
    assert sending.claim(job)  # the outbox takes it first
    assert not job_services.cancel(submission=stale, user=user)
    assert stale.state == State.SENDING  # reloaded: the caller sees what really happened


def test_a_batch_counts_cancelled_jobs_as_finished(user):
    batch = Batch.objects.create(name="Trailer", created_by=user)
    make_submission(user, batch=batch, state=State.COMPLETED, target_language="de")
    make_submission(user, batch=batch, state=State.CANCELLED, target_language="fr")
    overview = batch_selectors.batch_overview(batch=batch, user=user)
    assert overview.finished == 2 and overview.percent == 100 and not overview.in_flight
    assert (State.CANCELLED, "Cancelled", 1) in overview.states


# --- The activity trail -------------------------------------------------------------------------------


def test_submitting_records_who_submitted(user, fake_chamelaion):
    job = job_services.submit(user=user, video_url=fake_chamelaion.sample_video_url, audio_url=fake_chamelaion.sample_audio_url)
    entry = Activity.objects.get()
    assert (entry.actor, entry.verb, entry.submission, entry.batch) == (user, Verb.SUBMITTED, job, None)


def test_a_batch_is_one_entry_not_one_per_row(user, fake_chamelaion):
    rows = [{"video_url": "https://cdn.example.com/v.mp4", "audio_url": f"https://cdn.example.com/{n}.wav",
             "target_language": language} for n, language in enumerate(["de", "fr", "ja"])]
    batch = batch_services.create_batch(user=user, name="Trailer", rows=rows)
    entry = Activity.objects.get()
    assert (entry.actor, entry.verb, entry.batch, entry.submission) == (user, Verb.SUBMITTED, batch, None)
    assert entry.details == "Batch of 3 jobs"


def test_sending_again_records_who_and_which_inputs_changed(user, fake_chamelaion):
    job = make_submission(user, title="Old", state=State.SEND_FAILED, last_error="Refused.")
    job_services.send_again(submission=job, user=user, changes={"title": "New", "video_url": job.video_url})
    entry = Activity.objects.get()
    assert (entry.actor, entry.verb, entry.submission) == (user, Verb.SENT_AGAIN, job)
    assert entry.details == "Edited title"  # names only, never the values


def test_retrying_a_batch_is_one_entry(user, fake_chamelaion):
    batch = Batch.objects.create(name="Trailer", created_by=user)
    make_submission(user, batch=batch, state=State.SEND_FAILED, target_language="de")
    make_submission(user, batch=batch, state=State.FAILED, request_id="failed-1", target_language="fr")
    make_submission(user, batch=batch, state=State.COMPLETED, request_id="done-1", target_language="ja")

    assert batch_services.retry_failed(batch=batch, user=user) == 2

    entry = Activity.objects.get()
    assert (entry.actor, entry.verb, entry.batch) == (user, Verb.RETRIED, batch)
    assert entry.details == "2 failed jobs sent again"


def test_importing_records_an_entry_without_actor(admin_client, admin_user, fake_chamelaion):
    fake_chamelaion.create_job(video_url=fake_chamelaion.sample_video_url, audio_url=fake_chamelaion.sample_audio_url)
    imports.import_external_jobs()
    entry = Activity.objects.get()
    assert (entry.actor, entry.verb) == (None, Verb.IMPORTED)
    assert entry.details == "Looked at 1 jobs on the account, imported 1"

    admin_client.post(reverse("admin:submissions_submission_import"))  # the admin button says who pressed it
    latest = Activity.objects.first()
    expected = (admin_user, Verb.IMPORTED, "Looked at 1 jobs on the account, imported 0")
    assert (latest.actor, latest.verb, latest.details) == expected


def test_record_keeps_details_short_and_on_one_line(user):
    from django.contrib.auth.models import AnonymousUser

    entry = activity.record(actor=AnonymousUser(), verb=Verb.CHANGED, details="two\nlines " + "x" * 600)
    assert entry.actor is None and "\n" not in entry.details
    assert len(entry.details) == Activity.DETAILS_MAX_LENGTH and entry.details.endswith("…")
    job = make_submission(user, batch=Batch.objects.create(name="B", created_by=user))
    assert activity.record(actor=user, verb=Verb.CANCELLED, submission=job).batch == job.batch


# --- Admin edits: LogEntry, the trail on the job's page -----------------------------------------------


def _change_form(job, **changes):
    data = {
        "created_by": job.created_by_id,
        "title": job.title,
        "target_language": job.target_language,
        "video_url": job.video_url,
        "audio_url": job.audio_url,
        "reference_id": job.reference_id,
    }
    return {**data, **changes}


def test_an_admin_edit_is_logged_with_the_fields_it_changed(admin_client, admin_user, user):
    job = make_submission(user, title="Ep 1", target_language="de")
    url = reverse("admin:submissions_submission_change", args=[job.pk])

    response = admin_client.post(url, _change_form(job, title="Episode 1", target_language="fr"))

    assert response.status_code == 302
    job.refresh_from_db()
    assert (job.title, job.target_language, job.state) == ("Episode 1", "fr", State.PENDING)
    log = LogEntry.objects.get(object_id=str(job.pk), action_flag=CHANGE)
    assert log.user == admin_user
    assert log.get_change_message() == "Changed Title and Target language."
    entry = Activity.objects.get(verb=Verb.CHANGED)
    assert entry.actor == admin_user and entry.details == "In admin: Changed Title and Target language."


def test_the_job_page_in_admin_lists_its_activity_newest_first(admin_client, user):
    job = make_submission(user, title="Ep 1")
    activity.record(actor=user, verb=Verb.SUBMITTED, submission=job)
    later = activity.record(actor=None, verb=Verb.REFRESHED, submission=job, details="Checked just now: queued.")
    Activity.objects.filter(pk=later.pk).update(at=timezone.now() + timedelta(minutes=1))
    activity.record(actor=user, verb=Verb.SUBMITTED, submission=make_submission(user, title="Another job"))

    page = admin_client.get(reverse("admin:submissions_submission_change", args=[job.pk])).content.decode()

    trail = page[page.index('class="activity-trail"'):]
    trail = trail[: trail.index("</ul>")]
    assert trail.count("<li>") == 2
    assert trail.index("DubDash · Refreshed — Checked just now: queued.") < trail.index("maria · Submitted")


def test_an_edit_never_overwrites_what_the_worker_wrote_meanwhile(admin_user, user):
    """The change form loads a job, the worker moves it on, then the form is saved."""
    model_admin = SubmissionAdmin(Submission, django_admin.site)
    request = RequestFactory().post("/")
    request.user = admin_user

    def save(job, **changes):
        form_class = model_admin.get_form(request, job, change=True)
        form = form_class(_change_form(job, **changes), instance=job)
        assert form.is_valid(), form.errors
        model_admin.save_model(request, form.save(commit=False), form, change=True)

    sent = make_submission(user, title="Ep 1", state=State.QUEUED, request_id="q-1")
    Submission.objects.filter(pk=sent.pk).update(state=State.COMPLETED, output_url="https://cdn.example.com/out.mp4")
    save(sent, title="Episode 1")
    sent.refresh_from_db()
    assert (sent.title, sent.state, sent.output_url) == ("Episode 1", State.COMPLETED, "https://cdn.example.com/out.mp4")

    waiting = make_submission(user, title="Ep 2")
    sending.claim(Submission.objects.get(pk=waiting.pk))  # the outbox starts sending it
    save(waiting, video_url="https://cdn.example.com/other.mp4")
    assert getattr(request, "_submission_not_saved", False)
    waiting.refresh_from_db()
    assert waiting.video_url == "https://cdn.example.com/episode-1.mp4" and waiting.state == State.SENDING


def test_inputs_of_a_waiting_job_can_be_edited_in_admin(admin_client, user):
    assert admin_client.get(reverse("admin:submissions_submission_add")).status_code == 200
    job = make_submission(user)
    url = reverse("admin:submissions_submission_change", args=[job.pk])
    assert 'name="video_url"' in admin_client.get(url).content.decode()
    admin_client.post(url, _change_form(job, video_url="https://cdn.example.com/fixed.mp4"))
    job.refresh_from_db()
    assert job.video_url == "https://cdn.example.com/fixed.mp4"
    assert job.inputs_fingerprint == inputs_fingerprint(job.video_url, job.audio_url, False)


# --- Batch and activity admin ---------------------------------------------------------------------------


def test_the_batch_list_counts_jobs_and_links_to_them(admin_client, user):
    trailer = Batch.objects.create(name="Trailer", created_by=user)
    Batch.objects.create(name="Empty one", created_by=user)
    for language in ("de", "fr", "ja"):
        make_submission(user, batch=trailer, target_language=language, title=f"Trailer {language}")
    page = admin_client.get(BATCHES).content.decode()
    link = f'<a href="{CHANGELIST}?batch={trailer.pk}">3</a>'
    assert link in page and "Empty one" in page
    assert titles(admin_client, batch=trailer.pk) == {"Trailer de", "Trailer fr", "Trailer ja"}
    found = admin_client.get(BATCHES, {"q": "trail"}).content.decode()
    assert "Trailer" in found and "Empty one" not in found
    assert admin_client.get(reverse("admin:submissions_batch_add")).status_code == 403
    change = admin_client.get(reverse("admin:submissions_batch_change", args=[trailer.pk])).content.decode()
    assert link in change


def test_the_activity_admin_is_read_only_with_filters_and_search(admin_client, user, other_user):
    job = make_submission(user, title="Ep 1", reference_id="ep1-ref")
    mine = activity.record(actor=user, verb=Verb.SUBMITTED, submission=job)
    activity.record(actor=other_user, verb=Verb.CANCELLED, submission=make_submission(other_user, title="Ep 2"))
    activity.record(actor=None, verb=Verb.IMPORTED, details="Looked at 3 jobs on the account, imported 3")

    def shown(**query):
        page = admin_client.get(ACTIVITIES, query).content.decode()
        return set(re.findall(r'class="field-verb">([^<]*)<', page))

    assert shown() == {"Submitted", "Cancelled", "Imported"}
    assert shown(verb__exact="cancelled") == {"Cancelled"}
    assert shown(actor__id__exact=user.pk) == {"Submitted"}
    assert shown(actor__isnull="True") == {"Imported"}
    assert shown(at__gte=str(timezone.localtime() - timedelta(days=1))) == {"Submitted", "Cancelled", "Imported"}
    assert shown(q="ep1-ref") == {"Submitted"}
    assert shown(q="kenji") == {"Cancelled"}
    assert shown(q="imported 3") == {"Imported"}

    assert admin_client.get(reverse("admin:submissions_activity_add")).status_code == 403
    change = reverse("admin:submissions_activity_change", args=[mine.pk])
    assert admin_client.get(change).status_code == 200  # viewable
    admin_client.post(change, {"verb": "cancelled", "details": "rewritten"})
    mine.refresh_from_db()
    assert mine.verb == Verb.SUBMITTED
    assert admin_client.get(reverse("admin:submissions_activity_delete", args=[mine.pk])).status_code == 403


# --- The services write, the admin only calls them -----------------------------------------------------------


def test_the_admin_writes_nothing_itself():
    """No UPDATE, no transition, no save and no trail entry in the admin modules: the services do those."""
    writes = {"record", "transition", "update", "save", "create", "delete"}
    found = []
    for path in sorted((Path(__file__).resolve().parents[2] / "submissions" / "admin").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in writes:
                receiver = ast.unparse(node.func.value)
                if receiver not in ("super()",):  # Django's own ModelAdmin steps (LogEntry) are not ours to move
                    found.append(f"{path.name}:{node.lineno} {receiver}.{node.func.attr}")
    assert found == []


def test_an_edit_in_admin_is_one_service_call_with_its_trail_entry(admin_user, user):
    job = make_submission(user, title="Ep 1")
    assert edit_services.edit_job(submission=job, changes={"title": "Episode 1"}, actor=admin_user, summary="In admin: x")
    assert Submission.objects.get(pk=job.pk).title == "Episode 1"
    assert Activity.objects.get(verb=Verb.CHANGED).details == "In admin: x"

    sending.claim(Submission.objects.get(pk=job.pk))  # the outbox starts sending it: inputs are fixed now
    job.video_url = "https://cdn.example.com/other.mp4"
    assert not edit_services.edit_job(submission=job, changes={"video_url": job.video_url}, actor=admin_user, summary="y")
    assert job.video_url == "https://cdn.example.com/episode-1.mp4" and job.state == State.SENDING  # as it is now
    assert Activity.objects.filter(verb=Verb.CHANGED).count() == 1  # nothing noted for what did not happen


def test_a_job_added_in_admin_is_noted_by_the_service(admin_client, admin_user, user):
    response = admin_client.post(reverse("admin:submissions_submission_add"), {
        "created_by": user.pk, "title": "Added by hand", "target_language": "de",
        "video_url": "https://cdn.example.com/a.mp4", "audio_url": "https://cdn.example.com/a.wav", "reference_id": "by-hand-1",
    })
    assert response.status_code == 302
    job = Submission.objects.get(title="Added by hand")
    assert job.inputs_fingerprint == inputs_fingerprint(job.video_url, job.audio_url, False)
    entry = Activity.objects.get(verb=Verb.SUBMITTED)
    assert entry.actor == admin_user and entry.submission == job and entry.details == "Added in admin; sent by the outbox"
