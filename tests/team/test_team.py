"""Team admins: members' roles and monthly limits, and the usage page."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from submissions import roles
from submissions.models import Batch, MonthlyLimit, Submission
from submissions.team import limits
from submissions.team import services as team_services
from tests.factories import make_member, make_submission
from tests.team.kept_outputs import keep

pytestmark = pytest.mark.django_db
State = Submission.State


@pytest.fixture
def team_admin(db):
    return make_member("ana", role=roles.TEAM_ADMIN)  # the members page lists her by name


def test_a_member_at_the_monthly_limit_is_told_before_anything_is_sent(logged_in, user, fake_chamelaion):
    MonthlyLimit.objects.create(user=user, jobs_per_month=2)
    make_submission(user)
    make_submission(user, state=State.SEND_FAILED)  # never reached Chamelaion: does not count
    make_submission(user, created_at=timezone.now() - timedelta(days=40))  # last month
    form = {"video_url": "https://cdn.example.com/a.mp4", "audio_url": "https://cdn.example.com/a.wav", "title": "One more"}
    assert logged_in.post(reverse("submissions:new"), form).status_code == 302
    page = logged_in.post(reverse("submissions:new"), {**form, "title": "Too many", "confirm_duplicate": "1"})
    html = page.content.decode()
    assert "Monthly limit reached: you have used 2 of your 2 jobs this month." in html
    assert 'value="Too many"' in html and not Submission.objects.filter(title="Too many").exists()
    assert len(fake_chamelaion.jobs()) == 1


def test_a_batch_over_the_limit_sends_nothing(logged_in, user, fake_chamelaion):
    MonthlyLimit.objects.create(user=user, jobs_per_month=2)
    data = {"name": "Ep", "video_url": "https://cdn.example.com/ep.mp4", "rows-TOTAL_FORMS": "3",
            "rows-INITIAL_FORMS": "0", "rows-MIN_NUM_FORMS": "1", "rows-MAX_NUM_FORMS": "100"}
    for n, language in enumerate(["de", "fr", "es"]):
        data[f"rows-{n}-target_language"] = language
        data[f"rows-{n}-audio_url"] = f"https://cdn.example.com/ep-{language}.wav"
    html = logged_in.post(reverse("submissions:new_batch"), data).content.decode()
    assert "used 0 of your 2 jobs this month and this asks for 3 more" in html
    assert not Batch.objects.exists() and fake_chamelaion.jobs() == []


def test_team_admin_sets_roles_and_limits(client, team_admin, user):
    client.force_login(team_admin)
    page = client.get(reverse("submissions:team_members")).content.decode()
    assert "maria" in page and "ana" in page
    response = client.post(
        reverse("submissions:team_member_update", args=[user.pk]),
        {f"member-{user.pk}-role": "Viewer", f"member-{user.pk}-jobs_per_month": "40"},
        follow=True,
    )
    assert "Saved maria." in response.content.decode()
    user = type(user).objects.get(pk=user.pk)
    assert [g.name for g in user.groups.all()] == ["Viewer"] and not user.has_perm("submissions.submit_jobs")
    assert user.monthly_limit.jobs_per_month == 40
    client.post(reverse("submissions:team_member_update", args=[user.pk]),
                {f"member-{user.pk}-role": "Submitter", f"member-{user.pk}-jobs_per_month": ""})
    assert not MonthlyLimit.objects.filter(user=user).exists()
    bad = client.post(reverse("submissions:team_member_update", args=[user.pk]),
                      {f"member-{user.pk}-role": "Owner", f"member-{user.pk}-jobs_per_month": "-1"}, follow=True)
    assert "Nothing changed for maria." in bad.content.decode()


def test_usage_per_member_language_and_week(client, team_admin, user, other_user):
    now = timezone.now()
    for n in range(3):
        done = make_submission(user, target_language="de", state=State.COMPLETED, created_at=now - timedelta(minutes=10),
                               finished_at=now - timedelta(minutes=10) + timedelta(seconds=60 * (n + 1)))
        if n:  # the first one's output is not kept: 0 minutes
            keep(done, seconds=90.0 * n)  # 1.5 and 3 minutes
    make_submission(other_user, target_language="fr", state=State.FAILED)
    make_submission(other_user, target_language="fr", created_at=now - timedelta(days=100))  # outside 30 days
    client.force_login(team_admin)
    page = client.get(reverse("submissions:team_usage")).content.decode()
    assert "Per member" in page and "Per language" in page and "Per week" in page
    assert "<th scope=\"row\">maria</th><td>3</td><td>4.5 min</td><td>3</td><td>0</td><td>2 min 0 s</td>" in page
    assert "<th scope=\"row\">kenji</th><td>1</td><td>0.0 min</td><td>0</td><td>1</td><td>—</td>" in page
    assert "<th scope=\"row\">German</th><td>3</td><td>4.5 min</td>" in page
    assert "<th scope=\"row\">French</th><td>1</td><td>0.0 min</td>" in page
    year = client.get(reverse("submissions:team_usage"), {"days": "365"}).content.decode()
    assert "<th scope=\"row\">French</th><td>2</td>" in year


def test_team_pages_need_their_permissions(client, user):
    client.force_login(user)
    assert client.get(reverse("submissions:team_members")).status_code == 403
    assert client.get(reverse("submissions:team_usage")).status_code == 403
    assert client.post(reverse("submissions:team_member_update", args=[user.pk]), {}).status_code == 403


# --- One place for each rule -------------------------------------------------------------------------------


def test_the_members_page_counts_this_months_jobs_by_the_limit_rule(client, team_admin, user, other_user):
    for fields in (dict(), dict(state=State.QUEUED), dict(state=State.SEND_FAILED), dict(state=State.CANCELLED),
                   dict(created_at=limits.month_start() - timedelta(seconds=1))):
        make_submission(user, **fields)
    make_submission(other_user, state=State.COMPLETED)
    make_submission(None, is_external=True, request_id="outside-1")  # made outside DubDash: nobody's
    by_member = limits.jobs_this_month_by_member()
    assert by_member == {user.pk: limits.jobs_this_month(user), other_user.pk: limits.jobs_this_month(other_user)}
    assert by_member == {user.pk: 2, other_user.pk: 1}
    assert limits.jobs_this_month(team_admin) == 0 and team_admin.pk not in by_member

    client.force_login(team_admin)
    rows = {row["person"].username: row["used"] for row in client.get(reverse("submissions:team_members")).context["rows"]}
    assert rows == {"ana": 0, "kenji": 1, "maria": 2}


def test_who_may_change_whom_is_checked_by_the_service_alone(client, team_admin, cast, monkeypatch):
    chief = cast.superuser
    with pytest.raises(team_services.MemberOutOfReach, match="may not change the role of superuser"):
        team_services.update_member(
            actor=team_admin, member=chief, role=roles.VIEWER, jobs_per_month=None, minutes_per_month=None
        )
    with pytest.raises(team_services.MemberOutOfReach):
        team_services.ensure_can_change(actor=team_admin, member=chief)

    # The view asks the service, once, whatever the form says: out of reach is a 403, with or without errors.
    asked = []
    real = team_services.can_change_user
    monkeypatch.setattr(team_services, "can_change_user", lambda **kw: asked.append(kw["target"]) or real(**kw))
    client.force_login(team_admin)
    url = reverse("submissions:team_member_update", args=[chief.pk])
    valid = {f"member-{chief.pk}-role": roles.VIEWER, f"member-{chief.pk}-jobs_per_month": ""}
    assert client.post(url, valid).status_code == 403
    assert client.post(url, {**valid, f"member-{chief.pk}-jobs_per_month": "-1"}).status_code == 403
    assert asked == [chief, chief]
    assert not chief.groups.exists()
