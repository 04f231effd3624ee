"""Sending again a job that could not be sent checks its member's monthly limit, in jobs and in minutes, as
every other way of sending does: the Send again button (submissions:send_again), the service
(jobs.services.send_again, both its paths) and "Retry the failed ones" (batches.services.retry_failed).

A job left "sending" by a process that died is the other path of send_again: it was counted when it was made
(SENDING is not among NOT_COUNTED), and the worker resumes it on its own, so resuming it is not a new job
and is not checked again (the tests below say so; see the last one for a gap in the counting)."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from submissions.jobs import services as job_services
from submissions.models import Activity, Batch, MonthlyLimit, Submission, stuck_sending_time
from submissions.team import limits
from tests.factories import make_submission
from tests.team.kept_outputs import completed_with_output

pytestmark = pytest.mark.django_db
State = Submission.State

# Each way a member's month can be used up: (limit row fields, the refusal's own words, "their" words).
USED_UP = {
    "jobs": (
        {"jobs_per_month": 1},
        "Monthly limit reached: you have used 1 of your 1 jobs this month. Nothing was sent. A team admin can raise your limit.",
        "Monthly limit reached: maria has used 1 of their 1 jobs this month. Nothing was sent. "
        "A team admin can raise maria's limit.",
    ),
    "minutes": (
        {"minutes_per_month": 10},
        "Monthly limit reached: you have used 12.5 of your 10 minutes this month. Nothing was sent. "
        "A team admin can raise your limit.",
        "Monthly limit reached: maria has used 12.5 of their 10 minutes this month. Nothing was sent. "
        "A team admin can raise maria's limit.",
    ),
}


def used_up(user, kind: str) -> None:
    """`user`'s month used up: one job made (12.5 minutes of output kept) under a limit of `kind`."""
    fields, _, _ = USED_UP[kind]
    MonthlyLimit.objects.create(user=user, **fields)
    completed_with_output(user, seconds=750)


def could_not_be_sent(user, **fields) -> Submission:
    return make_submission(user, state=State.SEND_FAILED, last_error="Chamelaion refused the request as invalid",
                           send_attempts=3, failed_deliveries=1, **fields)


def as_html(message: str) -> str:
    return message.replace("'", "&#x27;")


def assert_untouched(job: Submission) -> None:
    before = {f.attname: getattr(job, f.attname) for f in Submission._meta.concrete_fields}
    job.refresh_from_db()
    assert {f.attname: getattr(job, f.attname) for f in Submission._meta.concrete_fields} == before
    assert not Activity.objects.filter(verb__in=[Activity.Verb.SENT_AGAIN, Activity.Verb.RETRIED]).exists()


# --- The Send again button ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(USED_UP))
def test_send_again_is_refused_when_the_members_month_is_used_up(logged_in, user, fake_chamelaion, kind):
    used_up(user, kind)
    job = could_not_be_sent(user)
    counted = limits.use_this_month(user)

    response = logged_in.post(reverse("submissions:send_again", args=[job.pk]), follow=True)

    assert response.status_code == 200 and response.redirect_chain[-1][0] == job.get_absolute_url()
    assert as_html(USED_UP[kind][1]) in response.content.decode()
    assert_untouched(job)
    assert fake_chamelaion.jobs() == [] and limits.use_this_month(user) == counted


@pytest.mark.parametrize("kind", list(USED_UP))
def test_a_team_admin_sending_a_members_job_again_is_told_it_is_the_members_limit(client, cast, user, fake_chamelaion, kind):
    used_up(user, kind)
    job = could_not_be_sent(user)
    client.force_login(cast.team_admin)
    page = client.post(reverse("submissions:send_again", args=[job.pk]), follow=True).content.decode()
    assert as_html(USED_UP[kind][2]) in page
    assert_untouched(job)
    assert fake_chamelaion.jobs() == []


def test_the_team_admins_own_limit_is_not_the_one_checked(client, cast, user, fake_chamelaion):
    """The job stays its submitter's: their month counts, not the one of whoever pressed the button."""
    MonthlyLimit.objects.create(user=cast.team_admin, jobs_per_month=0, minutes_per_month=0)
    job = could_not_be_sent(user)
    client.force_login(cast.team_admin)
    client.post(reverse("submissions:send_again", args=[job.pk]))
    job.refresh_from_db()
    assert job.state == State.QUEUED and len(fake_chamelaion.jobs()) == 1


def test_send_again_within_both_limits_sends(logged_in, user, fake_chamelaion):
    MonthlyLimit.objects.create(user=user, jobs_per_month=2, minutes_per_month=13)
    completed_with_output(user, seconds=750)  # 12.5 of 13 minutes, 1 of 2 jobs
    job = could_not_be_sent(user)
    logged_in.post(reverse("submissions:send_again", args=[job.pk]))
    job.refresh_from_db()
    assert job.state == State.QUEUED and len(fake_chamelaion.jobs()) == 1
    assert limits.use_this_month(user).jobs == 2  # it counts again now that it reached Chamelaion


@pytest.mark.parametrize("kind", list(USED_UP))
def test_send_again_from_the_form_with_edits_is_refused_too(logged_in, user, fake_chamelaion, kind):
    used_up(user, kind)
    job = could_not_be_sent(user)
    data = {"video_url": "https://cdn.example.com/fixed.mp4", "audio_url": job.audio_url, "resubmit": str(job.pk)}
    page = logged_in.post(reverse("submissions:new"), data).content.decode()
    assert as_html(USED_UP[kind][1]) in page and 'value="https://cdn.example.com/fixed.mp4"' in page
    assert_untouched(job)
    assert fake_chamelaion.jobs() == []


# --- The service --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(USED_UP))
@pytest.mark.parametrize("changes", [None, {"title": "Fixed", "video_url": "https://cdn.example.com/fixed.mp4"}])
def test_the_service_refuses_and_changes_nothing(user, cast, fake_chamelaion, kind, changes):
    used_up(user, kind)
    job = could_not_be_sent(user)
    with pytest.raises(limits.MonthlyLimitReached) as refused:
        job_services.send_again(submission=job, changes=changes, user=user)
    assert str(refused.value) == USED_UP[kind][1]
    assert_untouched(job)
    with pytest.raises(limits.MonthlyLimitReached) as refused:
        job_services.send_again(submission=job, changes=changes, user=cast.team_admin)
    assert str(refused.value) == USED_UP[kind][2]
    assert_untouched(job)
    assert fake_chamelaion.jobs() == []


def test_the_admin_action_refuses_over_the_minutes_limit(client, cast, user, fake_chamelaion):
    used_up(user, "minutes")
    job = could_not_be_sent(user)
    client.force_login(cast.superuser)
    response = client.post(reverse("admin:submissions_submission_changelist"),
                           {"action": "send_again", "_selected_action": [job.pk]}, follow=True)
    assert "Not sent again, over a monthly limit: 1" in response.content.decode()
    assert_untouched(job)
    assert fake_chamelaion.jobs() == []


# --- The interrupted send: already counted ------------------------------------------------------------------


def stuck(user) -> Submission:
    return make_submission(user, state=State.SENDING, send_attempts=1,
                           last_attempt_at=timezone.now() - stuck_sending_time() - timedelta(minutes=5))


@pytest.mark.parametrize("kind", list(USED_UP))
def test_an_interrupted_send_already_counts_and_resuming_it_is_not_a_new_job(logged_in, user, fake_chamelaion, kind):
    """The member's month is used up by this very job (jobs) or by what came before (minutes): Send again
    resumes it, which the worker would do anyway, and the month's count does not grow."""
    fields, _, _ = USED_UP[kind]
    MonthlyLimit.objects.create(user=user, **fields)
    job = stuck(user)
    if kind == "minutes":
        completed_with_output(user, seconds=750)
        MonthlyLimit.objects.filter(user=user).update(jobs_per_month=None)
    counted = limits.use_this_month(user)
    assert counted.jobs >= 1  # the stuck job is among them

    logged_in.post(reverse("submissions:send_again", args=[job.pk]))

    job.refresh_from_db()
    assert job.state == State.QUEUED and len(fake_chamelaion.jobs()) == 1
    assert limits.use_this_month(user) == counted


def test_the_worker_resumes_an_interrupted_send_whatever_the_limit(user, fake_chamelaion):
    """Why the button does not check it: a refusal there would not stop the send, the worker's outbox
    claims every stuck send in its turn (outbox.selectors.due_for_sending)."""
    MonthlyLimit.objects.create(user=user, jobs_per_month=0, minutes_per_month=0)
    job = stuck(user)
    call_command("run_worker", once=True)
    job.refresh_from_db()
    assert job.state == State.QUEUED and len(fake_chamelaion.jobs()) == 1


# --- Retry the failed ones ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(USED_UP))
def test_retry_the_failed_ones_is_refused_whole(logged_in, user, fake_chamelaion, kind):
    used_up(user, kind)
    batch = Batch.objects.create(name="Episode 4", created_by=user)
    unsent = could_not_be_sent(user, batch=batch, target_language="fr")
    make_submission(user, batch=batch, state=State.FAILED, target_language="de", request_id="r-de")

    response = logged_in.post(reverse("submissions:batch_retry_failed", args=[batch.pk]), follow=True)

    page = response.content.decode()
    assert "Nothing was retried." in page and "Monthly limit reached: you have used" in page
    assert Submission.objects.filter(batch=batch).count() == 2  # no new take
    assert_untouched(unsent)
    assert fake_chamelaion.jobs() == []


# --- A job counts in the month it is sent again -----------------------------------------------------------


def test_jobs_of_last_month_sent_again_count_this_month(logged_in, user, fake_chamelaion):
    MonthlyLimit.objects.create(user=user, jobs_per_month=1)
    last_month = limits.month_start() - timedelta(days=3)
    first, second = (could_not_be_sent(user, created_at=last_month) for _ in range(2))
    logged_in.post(reverse("submissions:send_again", args=[first.pk]))
    logged_in.post(reverse("submissions:send_again", args=[second.pk]))
    assert len(fake_chamelaion.jobs()) == 1  # the second is over the limit of 1 job this month
