"""Issue 9, items 4 and 6: sending again and "Retry the failed ones" respect the monthly limit, and a
retry that would pass it changes nothing at all (never half a batch, never a 500)."""

import pytest
from django.urls import reverse

from submissions.models import Activity, Batch, MonthlyLimit, Submission
from submissions.team import limits
from tests.factories import make_submission

pytestmark = pytest.mark.django_db
State = Submission.State


def used(user) -> int:
    return limits.jobs_this_month(user)


def test_send_again_cannot_pass_the_monthly_limit(logged_in, user, fake_chamelaion):
    """The reproduction: limit 7 with 6 used, one job refused (400), one more submitted (7/7); Send again
    on the refused one made it 8/7."""
    MonthlyLimit.objects.create(user=user, jobs_per_month=7)
    for _ in range(6):
        make_submission(user)
    refused = make_submission(user, state=State.SEND_FAILED, last_error="Chamelaion refused the request as invalid")
    make_submission(user)
    assert used(user) == 7

    response = logged_in.post(reverse("submissions:send_again", args=[refused.pk]), follow=True)

    refused.refresh_from_db()
    assert response.status_code == 200
    assert refused.state == State.SEND_FAILED and refused.request_id is None
    assert used(user) == 7 and fake_chamelaion.jobs() == []
    assert "Monthly limit reached: you have used 7 of your 7 jobs this month" in response.content.decode()
    assert not Activity.objects.filter(verb="sent_again").exists()


def test_send_again_from_the_form_cannot_pass_the_monthly_limit(logged_in, user, fake_chamelaion):
    MonthlyLimit.objects.create(user=user, jobs_per_month=1)
    refused = make_submission(user, state=State.SEND_FAILED, last_error="refused")
    make_submission(user)
    data = {"video_url": refused.video_url, "audio_url": refused.audio_url, "resubmit": str(refused.pk)}
    page = logged_in.post(reverse("submissions:new"), data).content.decode()
    refused.refresh_from_db()
    assert refused.state == State.SEND_FAILED and "Monthly limit reached" in page and fake_chamelaion.jobs() == []


def test_send_again_within_the_limit_still_works(logged_in, user, fake_chamelaion):
    MonthlyLimit.objects.create(user=user, jobs_per_month=2)
    refused = make_submission(user, state=State.SEND_FAILED, last_error="refused")
    make_submission(user)
    logged_in.post(reverse("submissions:send_again", args=[refused.pk]))
    refused.refresh_from_db()
    assert refused.state == State.QUEUED and used(user) == 2 and len(fake_chamelaion.jobs()) == 1


def test_a_team_admin_sending_a_members_job_again_is_told_whose_limit_it_is(client, user, cast, fake_chamelaion):
    admin = cast.team_admin
    MonthlyLimit.objects.create(user=user, jobs_per_month=1)
    refused = make_submission(user, state=State.SEND_FAILED, last_error="refused")
    make_submission(user)
    client.force_login(admin)
    page = client.post(reverse("submissions:send_again", args=[refused.pk]), follow=True).content.decode()
    assert "maria has used 1 of their 1 jobs this month" in page and "raise maria&#x27;s limit" in page
    refused.refresh_from_db()
    assert refused.state == State.SEND_FAILED


def test_the_admin_send_again_action_respects_the_monthly_limit(client, user, cast, fake_chamelaion):
    admin = cast.superuser
    MonthlyLimit.objects.create(user=user, jobs_per_month=1)
    refused = make_submission(user, state=State.SEND_FAILED, last_error="refused")
    make_submission(user)
    client.force_login(admin)
    response = client.post(
        reverse("admin:submissions_submission_changelist"),
        {"action": "send_again", "_selected_action": [refused.pk]},
        follow=True,
    )
    refused.refresh_from_db()
    assert refused.state == State.SEND_FAILED and fake_chamelaion.jobs() == []
    assert "Not sent again, over a monthly limit: 1" in response.content.decode()


def batch_with_failures(user) -> tuple[Batch, list[Submission]]:
    batch = Batch.objects.create(name="Episode 4", created_by=user)
    failed = make_submission(user, batch=batch, state=State.FAILED, target_language="de", request_id="r-de")
    unsent = make_submission(user, batch=batch, state=State.SEND_FAILED, target_language="fr", last_error="x")
    missing = make_submission(user, batch=batch, state=State.MISSING, target_language="es", request_id="r-es")
    return batch, [failed, unsent, missing]


def test_retry_the_failed_ones_at_the_monthly_limit_changes_nothing_and_says_why(logged_in, user, fake_chamelaion):
    batch, (_failed, unsent, _missing) = batch_with_failures(user)
    # Counted now: the failed and the missing job (2). The retry needs 3 more: 2 new takes, 1 sent again.
    MonthlyLimit.objects.create(user=user, jobs_per_month=4)

    response = logged_in.post(reverse("submissions:batch_retry_failed", args=[batch.pk]), follow=True)

    page = response.content.decode()
    assert response.status_code == 200 and response.redirect_chain[-1][0] == batch.get_absolute_url()
    assert "Nothing was retried. Monthly limit reached" in page and "this asks for 3 more" in page
    assert Submission.objects.count() == 3  # no new take was created
    unsent.refresh_from_db()
    assert unsent.state == State.SEND_FAILED
    assert not Activity.objects.filter(verb="retried").exists() and fake_chamelaion.jobs() == []


def test_retry_the_failed_ones_just_within_the_limit_retries_all(logged_in, user, fake_chamelaion):
    batch, (failed, unsent, missing) = batch_with_failures(user)
    MonthlyLimit.objects.create(user=user, jobs_per_month=5)
    logged_in.post(reverse("submissions:batch_retry_failed", args=[batch.pk]))
    assert Submission.objects.filter(retry_of__in=[failed, missing]).count() == 2
    unsent.refresh_from_db()
    assert unsent.state != State.SEND_FAILED
    assert used(user) == 5 and len(fake_chamelaion.jobs()) == 3
    assert Activity.objects.filter(verb="retried", batch=batch).count() == 1
