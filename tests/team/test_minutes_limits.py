"""Monthly limits in minutes of output, beside jobs: counted from kept copies of the jobs that count, enforced
before anything is sent, set on the Members page and in admin, and shown beside the job counts."""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from submissions import roles
from submissions.core.auth_backends import ModelBackendOneQuery
from submissions.models import MonthlyLimit, OutputCopy, Submission
from submissions.team import limits
from tests.factories import make_member, make_submission
from tests.team.admin_forms import user_form
from tests.team.kept_outputs import completed_with_output, keep

pytestmark = pytest.mark.django_db
State = Submission.State
FORM = {"video_url": "https://cdn.example.com/a.mp4", "audio_url": "https://cdn.example.com/a.wav"}
OWN_MESSAGE = (
    "Monthly limit reached: you have used 12.5 of your 10 minutes this month. Nothing was sent. "
    "A team admin can raise your limit."
)
THEIR_MESSAGE = (
    "Monthly limit reached: maria has used 12.5 of their 10 minutes this month. Nothing was sent. "
    "A team admin can raise maria's limit."
)
LIMIT_ERROR = "Enter a whole number of 0 or more, or leave it blank for no limit."


@pytest.fixture
def team_admin(db):
    return make_member("ana", role=roles.TEAM_ADMIN)


def check(user, *, adding=1, actor=None) -> None:
    with transaction.atomic():  # as every caller does: the limit row is locked
        limits.check_monthly_limit(user=user, adding=adding, actor=actor)


def refusal(user, **kwargs) -> str:
    with pytest.raises(limits.MonthlyLimitReached) as refused:
        check(user, **kwargs)
    return str(refused.value)


# --- Counting -----------------------------------------------------------------------------------------------


def test_minutes_are_the_kept_copies_of_the_jobs_that_count(user, other_user):
    completed_with_output(user, seconds=600)
    completed_with_output(user, seconds=150)
    make_submission(user, state=State.QUEUED)  # no copy (yet): one job, 0 minutes
    keep(make_submission(user, state=State.COMPLETED), seconds=None, state=OutputCopy.State.FAILED)  # not kept
    keep(make_submission(user, state=State.COMPLETED), seconds=300, state=OutputCopy.State.RUNNING)  # not kept yet
    completed_with_output(user, seconds=6000, created_at=limits.month_start() - timedelta(seconds=1))  # last month
    # Not counted, as for jobs (a job never sent has no output: the rule is the jobs' one, whatever the copy).
    keep(make_submission(user, state=State.SEND_FAILED), seconds=6000)
    completed_with_output(other_user, seconds=60)

    use = limits.use_this_month(user)
    assert (use.jobs, use.seconds, use.minutes) == (5, 750.0, 12.5)
    assert use.jobs == limits.jobs_this_month(user)
    assert limits.use_this_month_by_member() == {user.pk: use, other_user.pk: limits.MonthUse(jobs=1, seconds=60.0)}
    assert limits.jobs_this_month_by_member() == {user.pk: 5, other_user.pk: 1}


def test_everyones_use_is_one_query_however_many_jobs(user, other_user, django_assert_num_queries):
    for n in range(6):
        completed_with_output(user if n % 2 else other_user, seconds=30.0 * n)
    with django_assert_num_queries(1):
        by_member = limits.use_this_month_by_member()
    assert by_member[user.pk].seconds == 30.0 * (1 + 3 + 5) and by_member[other_user.pk].jobs == 3


# --- The check ----------------------------------------------------------------------------------------------


def test_minutes_used_up_refuse_new_jobs_in_plain_words(user, team_admin):
    MonthlyLimit.objects.create(user=user, minutes_per_month=10)
    completed_with_output(user, seconds=750)
    assert refusal(user) == OWN_MESSAGE
    assert refusal(user, actor=user) == OWN_MESSAGE
    assert refusal(user, actor=team_admin) == THEIR_MESSAGE


def test_the_minutes_limit_refuses_once_reached_not_before(user):
    MonthlyLimit.objects.create(user=user, minutes_per_month=10)
    job = completed_with_output(user, seconds=599.5)
    check(user, adding=50)  # a job's length is unknown before it is made: only minutes used are compared
    OutputCopy.objects.filter(submission=job).update(duration_seconds=600)
    assert "you have used 10.0 of your 10 minutes this month" in refusal(user)


def test_a_zero_minutes_limit_refuses_everything(user):
    MonthlyLimit.objects.create(user=user, minutes_per_month=0)
    assert "you have used 0.0 of your 0 minutes this month" in refusal(user)


def test_either_cap_alone_and_neither(user):
    limit = MonthlyLimit.objects.create(user=user, jobs_per_month=None, minutes_per_month=None)
    completed_with_output(user, seconds=6000)
    check(user, adding=1000)  # a row with neither cap limits nothing

    limit.jobs_per_month = 5
    limit.save()
    check(user, adding=4)  # 100 minutes used: no minutes cap, so only jobs count
    assert "you have used 1 of your 5 jobs this month and this asks for 5 more" in refusal(user, adding=5)

    limit.jobs_per_month, limit.minutes_per_month = None, 100
    limit.save()
    assert "you have used 100.0 of your 100 minutes this month" in refusal(user)
    limit.minutes_per_month = 101
    limit.save()
    check(user, adding=1000)  # no jobs cap


def test_with_both_caps_whichever_is_reached_refuses(user):
    limit = MonthlyLimit.objects.create(user=user, jobs_per_month=2, minutes_per_month=10)
    completed_with_output(user, seconds=120)
    check(user)
    completed_with_output(user, seconds=120)
    assert "you have used 2 of your 2 jobs this month." in refusal(user)
    limit.jobs_per_month = 3
    limit.save()
    check(user)
    OutputCopy.objects.update(duration_seconds=375)
    assert refusal(user) == OWN_MESSAGE


def test_the_limit_row_is_locked_and_both_uses_counted_in_one_statement(user):
    MonthlyLimit.objects.create(user=user, jobs_per_month=5, minutes_per_month=10)
    completed_with_output(user, seconds=30)
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        limits.check_monthly_limit(user=user, adding=1)
    statements = [query["sql"] for query in queries.captured_queries if not query["sql"].startswith(("SAVEPOINT", "RELEASE"))]
    assert len(statements) == 1, statements
    (sql,) = statements
    assert "submissions_monthlylimit" in sql and "COUNT(" in sql.upper() and "SUM(" in sql.upper()
    if connection.features.has_select_for_update:
        assert "FOR UPDATE" in sql


def test_the_auth_backends_preloaded_answer_still_skips_or_checks(user, other_user, django_assert_num_queries):
    backend = ModelBackendOneQuery()
    unlimited = backend.get_user(other_user.pk)
    with django_assert_num_queries(0):
        limits.check_monthly_limit(user=unlimited, adding=1)
    MonthlyLimit.objects.create(user=user, minutes_per_month=10)  # a minutes cap alone, no jobs cap
    completed_with_output(user, seconds=750)
    assert refusal(backend.get_user(user.pk)) == OWN_MESSAGE


# --- Every way of sending refuses -----------------------------------------------------------------------


def test_the_new_job_form_says_so_and_keeps_what_was_typed(logged_in, user, fake_chamelaion):
    MonthlyLimit.objects.create(user=user, minutes_per_month=10)
    completed_with_output(user, seconds=750)
    page = logged_in.post(reverse("submissions:new"), {**FORM, "title": "One more"}).content.decode()
    assert OWN_MESSAGE.replace("'", "&#x27;") in page and 'value="One more"' in page
    assert not Submission.objects.filter(title="One more").exists() and fake_chamelaion.jobs() == []


def test_a_batch_is_refused_whole(logged_in, user, fake_chamelaion):
    MonthlyLimit.objects.create(user=user, minutes_per_month=10)
    completed_with_output(user, seconds=750)
    data = {"name": "Ep", "video_url": "https://cdn.example.com/ep.mp4", "rows-TOTAL_FORMS": "2",
            "rows-INITIAL_FORMS": "0", "rows-MIN_NUM_FORMS": "1", "rows-MAX_NUM_FORMS": "100"}
    for n, language in enumerate(["de", "fr"]):
        data[f"rows-{n}-target_language"] = language
        data[f"rows-{n}-audio_url"] = f"https://cdn.example.com/ep-{language}.wav"
    html = logged_in.post(reverse("submissions:new_batch"), data).content.decode()
    assert "you have used 12.5 of your 10 minutes this month" in html
    assert Submission.objects.count() == 1 and fake_chamelaion.jobs() == []


# --- The Members page -------------------------------------------------------------------------------------


def row_of(page: str, person) -> str:
    start = page.index(f'<tr id="member-{person.pk}">')
    return page[start:page.index("</tr>", start)]


def test_the_members_page_shows_jobs_and_minutes_used_with_the_limits(client, team_admin, user, other_user):
    MonthlyLimit.objects.create(user=user, jobs_per_month=5, minutes_per_month=10)
    completed_with_output(user, seconds=600)
    completed_with_output(user, seconds=150)
    make_submission(other_user)
    client.force_login(team_admin)
    page = client.get(reverse("submissions:team_members")).content.decode()
    maria = row_of(page, user)
    assert "2 of 5 jobs" in maria and "12.5 of 10 min" in maria
    assert 'value="5"' in maria and 'value="10"' in maria
    kenji = row_of(page, other_user)
    assert "1 job<" in kenji and "0.0 min" in kenji and " of " not in kenji.split("</td>")[0]


def test_the_members_page_reads_the_same_whatever_the_number_of_jobs(client, team_admin, user, other_user):
    client.force_login(team_admin)
    completed_with_output(user, seconds=60)
    client.get(reverse("submissions:team_members"))  # the session's first request writes more
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("submissions:team_members"))
    for n in range(10):
        completed_with_output(user if n % 2 else other_user, seconds=60)
    with CaptureQueriesContext(connection) as many:
        client.get(reverse("submissions:team_members"))
    assert len(many) == len(few)


def post_member(client, member, **fields):
    data = {f"member-{member.pk}-{name}": value for name, value in {"role": roles.SUBMITTER, **fields}.items()}
    return client.post(reverse("submissions:team_member_update", args=[member.pk]), data, follow=True)


def stored_limit(member) -> tuple | None:
    return MonthlyLimit.objects.filter(user=member).values_list("jobs_per_month", "minutes_per_month").first()


def test_a_team_admin_sets_minutes_jobs_both_or_neither(client, team_admin, user):
    client.force_login(team_admin)
    assert "Saved maria." in post_member(client, user, jobs_per_month="", minutes_per_month="90").content.decode()
    assert stored_limit(user) == (None, 90)
    post_member(client, user, jobs_per_month="40", minutes_per_month="120")
    assert stored_limit(user) == (40, 120)
    post_member(client, user, jobs_per_month="0", minutes_per_month="")  # 0: nothing more this month
    assert stored_limit(user) == (0, None)
    post_member(client, user, jobs_per_month="", minutes_per_month="")
    assert stored_limit(user) is None


@pytest.mark.parametrize(
    ("jobs", "minutes", "message"),
    [
        ("12", "-3", f"Monthly minutes limit: {LIMIT_ERROR}"),
        ("12", "2.5", f"Monthly minutes limit: {LIMIT_ERROR}"),
        ("12", "ten", f"Monthly minutes limit: {LIMIT_ERROR}"),
        ("-1", "30", f"Monthly job limit: {LIMIT_ERROR}"),
        ("12", "1000001", "Monthly minutes limit: Enter at most 1,000,000, or leave it blank for no limit."),
    ],
)
def test_a_wrong_limit_changes_nothing_says_why_and_keeps_what_was_typed(client, team_admin, user, jobs, minutes, message):
    MonthlyLimit.objects.create(user=user, jobs_per_month=7, minutes_per_month=60)
    client.force_login(team_admin)
    response = post_member(client, user, role=roles.VIEWER, jobs_per_month=jobs, minutes_per_month=minutes)
    page = response.content.decode()
    assert response.status_code == 400 and response.redirect_chain == []
    assert f"Nothing changed for maria. {message}" in page
    row = row_of(page, user)
    assert f'value="{jobs}"' in row and f'value="{minutes}"' in row  # as typed
    assert f'<option value="{roles.VIEWER}" selected>' in row
    assert 'aria-invalid="true"' in row
    assert "0 of 7 jobs" in row and "0.0 of 60 min" in row  # what still applies
    assert stored_limit(user) == (7, 60) and [g.name for g in user.groups.all()] == [roles.SUBMITTER]


# --- Django admin ----------------------------------------------------------------------------------------------


def limits_form(member, jobs: str, minutes: str) -> dict:
    return user_form(member, **{"monthly_limit-0-jobs_per_month": jobs, "monthly_limit-0-minutes_per_month": minutes})


@pytest.mark.parametrize("part", ["superuser", "staff_team_admin"])
def test_admin_sets_a_members_limits_on_their_page(client, cast, user, part):
    client.force_login(getattr(cast, part))
    url = reverse("admin:auth_user_change", args=[user.pk])
    page = client.get(url).content.decode()
    assert 'name="monthly_limit-0-minutes_per_month"' in page and 'name="monthly_limit-0-jobs_per_month"' in page

    assert client.post(url, limits_form(user, "", "90")).status_code == 302
    assert stored_limit(user) == (None, 90)
    assert client.post(url, limits_form(user, "25", "")).status_code == 302
    assert stored_limit(user) == (25, None)
    refused = client.post(url, limits_form(user, "25", "-5"))
    assert refused.status_code == 200 and "greater than or equal to 0" in refused.content.decode()
    assert stored_limit(user) == (25, None)
    assert client.post(url, limits_form(user, "", "")).status_code == 302
    assert stored_limit(user) is None  # both blank: no limit, and no row left behind


def test_admin_offers_no_limits_where_the_actor_may_not_change_the_user(client, cast):
    client.force_login(cast.staff_team_admin)
    root = cast.superuser
    page = client.get(reverse("admin:auth_user_change", args=[root.pk])).content.decode()
    assert "monthly_limit-0-minutes_per_month" not in page
    assert "monthly_limit" not in client.get(reverse("admin:auth_user_add")).content.decode()


def test_the_usage_page_counts_minutes_per_week_too_in_a_few_queries(client, team_admin, user, other_user):
    now = timezone.now()
    made = [(now - timedelta(days=8), 90.0)]
    completed_with_output(user, seconds=90, created_at=made[0][0], target_language="de")
    client.force_login(team_admin)
    client.get(reverse("submissions:team_usage"))  # the session's first request writes more
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("submissions:team_usage"))
    for n in range(12):
        created = now - timedelta(days=n)
        completed_with_output(user if n % 2 else other_user, seconds=60, created_at=created, target_language="fr")
        made.append((created, 60.0))
    make_submission(user, created_at=now, target_language="fr")  # no kept copy: 0 minutes
    made.append((now, 0.0))
    with CaptureQueriesContext(connection) as many:
        page = client.get(reverse("submissions:team_usage")).content.decode()
    assert len(many) == len(few)  # aggregates, never a query per row

    weeks: dict = {}
    for created, seconds in made:
        day = timezone.localtime(created).date()
        monday = day - timedelta(days=day.weekday())
        jobs, total = weeks.get(monday, (0, 0.0))
        weeks[monday] = (jobs + 1, total + seconds)
    for monday, (jobs, total) in weeks.items():
        assert f'<th scope="row">Week of {monday:%Y-%m-%d}</th><td>{jobs}</td><td>{total / 60:.1f} min</td>' in page
    assert '<th scope="row">French</th><td>13</td><td>12.0 min</td>' in page
    assert '<th scope="row">German</th><td>1</td><td>1.5 min</td>' in page
    assert '<th scope="row">maria</th><td>8</td><td>7.5 min</td>' in page
    assert '<th scope="row">kenji</th><td>6</td><td>6.0 min</td>' in page


# --- With copying off, minutes cannot be measured ---------------------------------------------------------


def test_with_copying_off_a_new_minutes_limit_is_refused_in_plain_words(client, team_admin, user, settings):
    settings.OUTPUT_KEEP = False
    client.force_login(team_admin)
    response = post_member(client, user, jobs_per_month="5", minutes_per_month="90")
    page = response.content.decode()
    assert response.status_code == 400
    assert f"Nothing changed for maria. Monthly minutes limit: {limits.MINUTES_NOT_MEASURED}" in page
    assert 'value="90"' in row_of(page, user)  # as typed
    assert stored_limit(user) is None


def test_with_copying_off_an_existing_minutes_limit_is_kept_and_shown_as_not_enforced(client, team_admin, user, settings):
    MonthlyLimit.objects.create(user=user, jobs_per_month=7, minutes_per_month=60)
    settings.OUTPUT_KEEP = False
    client.force_login(team_admin)
    page = client.get(reverse("submissions:team_members")).content.decode()
    assert 'id="minutes-not-measured"' in page and "Minutes limits already set are not enforced." in page
    assert "0.0 of 60 min (not enforced)" in row_of(page, user)

    # Changing only the job limit leaves the minutes limit as it was, untouched and not refused.
    page = post_member(client, user, jobs_per_month="9", minutes_per_month="60").content.decode()
    assert "Saved maria." in page and stored_limit(user) == (9, 60)


def test_with_copying_on_nothing_is_said_about_minutes_not_being_measured(client, team_admin, user):
    MonthlyLimit.objects.create(user=user, minutes_per_month=60)
    client.force_login(team_admin)
    page = client.get(reverse("submissions:team_members")).content.decode()
    assert 'id="minutes-not-measured"' not in page and "(not enforced)" not in page


def test_with_copying_off_admin_refuses_a_new_minutes_limit_too(client, cast, settings):
    settings.OUTPUT_KEEP = False
    client.force_login(cast.superuser)
    member = cast.submitter
    data = user_form(member, **{"monthly_limit-0-minutes_per_month": "30", "monthly_limit-0-jobs_per_month": ""})
    response = client.post(reverse("admin:auth_user_change", args=[member.pk]), data)
    assert response.status_code == 200  # the form again, with its error
    assert limits.MINUTES_NOT_MEASURED in response.content.decode()
    assert stored_limit(member) is None
