"""Refresh now answers with a typed result (an outcome and the sentence to show), not prose: the job's
page shows the sentence, and admin's action counts outcomes without reading sentences. Against the fake
Chamelaion (tests/fakes.py): HTTP is not what these test."""

from datetime import timedelta

import pytest
from django.db import DataError
from django.urls import reverse
from django.utils import timezone

from submissions.models import Activity, Submission
from submissions.tracking import refresh
from submissions.tracking import services as tracking
from tests.factories import make_submission

pytestmark = pytest.mark.django_db
State = Submission.State
Outcome = refresh.RefreshOutcome


def sent_job(account, user, **fields):
    job = account.create_job(video_url=account.sample_video_url, audio_url=account.sample_audio_url)
    return make_submission(user, request_id=job["id"], state=State.QUEUED, upstream_status="queued",
                           sent_at=timezone.now(), **fields)


def test_every_outcome_is_typed_with_its_sentence(fake_chamelaion, cast, monkeypatch):
    member = cast.submitter
    results = {
        "waiting": refresh.refresh_now(submission=make_submission(member)),
        "finished": refresh.refresh_now(submission=make_submission(member, state=State.COMPLETED, request_id="done-1")),
        "missing": refresh.refresh_now(submission=make_submission(member, state=State.QUEUED, request_id="gone-1")),
    }
    job = sent_job(fake_chamelaion, member)
    fake_chamelaion.advance(60)
    results["checked"] = refresh.refresh_now(submission=job)
    other = sent_job(fake_chamelaion, member)
    results["checked again at once"] = refresh.refresh_now(submission=other)
    results["too soon"] = refresh.refresh_now(submission=other)
    third = sent_job(fake_chamelaion, member)
    fake_chamelaion.faults.script = ["500"]
    results["could not ask"] = refresh.refresh_now(submission=third)
    Submission.objects.filter(pk=third.pk).update(refresh_requested_at=timezone.now() - timedelta(seconds=6))

    def refuse(*args, **kwargs):
        raise DataError("value too long")

    monkeypatch.setattr(refresh, "apply_snapshot", refuse)
    results["not stored"] = refresh.refresh_now(submission=third)

    outcomes = {name: result.outcome for name, result in results.items()}
    assert outcomes == {
        "waiting": Outcome.NOT_SENT_YET,
        "finished": Outcome.FINISHED,
        "missing": Outcome.MISSING,
        "checked": Outcome.CHECKED,
        "checked again at once": Outcome.CHECKED,
        "too soon": Outcome.TOO_SOON,
        "could not ask": Outcome.COULD_NOT_ASK,
        "not stored": Outcome.NOT_STORED,
    }
    assert results["checked"].message == "Checked just now: completed."
    assert results["missing"].message == tracking.MISSING_MESSAGE
    assert results["could not ask"].message.startswith("Could not check now: Chamelaion had an internal problem.")
    assert results["too soon"].message == "Checked a moment ago. Try again in a few seconds."
    assert "could not store" in results["not stored"].message
    with pytest.raises(AttributeError):
        results["checked"].outcome = Outcome.MISSING  # frozen: a result is a value


def test_the_job_page_shows_the_sentence(client, fake_chamelaion, cast):
    job = sent_job(fake_chamelaion, cast.submitter)
    fake_chamelaion.advance(15)
    client.force_login(cast.submitter)
    page = client.post(reverse("submissions:refresh", args=[job.pk]), follow=True).content.decode()
    assert "Checked just now: processing." in page and "RefreshResult" not in page and "RefreshOutcome" not in page


def test_admin_counts_outcomes_from_the_results_not_from_their_sentences(admin_client, fake_chamelaion, cast, monkeypatch):
    member = cast.submitter
    jobs = [sent_job(fake_chamelaion, member, title=f"Job {n}") for n in range(3)]
    # Two different sentences for one outcome, and a sentence shared with no other: counted by the results.
    answers = iter([
        refresh.RefreshResult(Outcome.COULD_NOT_ASK, "Could not check now: first reason."),
        refresh.RefreshResult(Outcome.CHECKED, "Checked just now: processing."),
        refresh.RefreshResult(Outcome.COULD_NOT_ASK, "Could not check now: first reason."),
    ])
    monkeypatch.setattr(refresh, "refresh_now", lambda *, submission, client: next(answers))

    report = refresh.refresh_selected(submissions=Submission.objects.all(), actor=None, limit=50)
    assert (report.selected, report.asked, report.skipped) == (3, 3, 0)
    assert report.count(Outcome.COULD_NOT_ASK) == 2 and report.count(Outcome.CHECKED) == 1
    assert report.count(Outcome.MISSING) == 0

    answers = iter([refresh.RefreshResult(Outcome.CHECKED, "Checked just now: completed.")] * 3)
    response = admin_client.post(reverse("admin:submissions_submission_changelist"),
                                 {"action": "refresh_status", "_selected_action": [job.pk for job in jobs]}, follow=True)
    assert "Asked Chamelaion about 3. 3 \N{MULTIPLICATION SIGN} Checked just now: completed." in response.content.decode()
    # The service that asked notes each job in the trail, not the admin.
    by_admin = Activity.objects.filter(verb=Activity.Verb.REFRESHED, actor__is_superuser=True)
    assert by_admin.count() == 3 and {entry.details for entry in by_admin} == {"Checked just now: completed."}
