"""What every page reads, made cheap without going stale: permissions in one query, and the banners and
the member list kept a few seconds (submissions.shortcache) but forgotten the moment they change."""

import time

import pytest
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import AnonymousUser, Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse, set_script_prefix

from submissions import chamelaion, roles
from submissions.core import problems, shortcache
from submissions.core.auth_backends import ModelBackendOneQuery
from submissions.models import ApiCredential, Problem, Submission
from tests.factories import make_member, make_submission

HISTORY = reverse("submissions:history")
NEW = reverse("submissions:new")


# --- Permissions in one query ---------------------------------------------------------------------------


def test_permissions_in_one_query_are_exactly_djangos(cast, django_user_model, django_assert_num_queries):
    member = cast.submitter
    member.user_permissions.add(Permission.objects.get(codename="view_usage"))  # one of their own, too
    expected = ModelBackend().get_all_permissions(django_user_model.objects.get(pk=member.pk))
    assert "submissions.submit_jobs" in expected and "submissions.view_usage" in expected

    fresh = django_user_model.objects.get(pk=member.pk)
    with django_assert_num_queries(1):
        assert ModelBackendOneQuery().get_all_permissions(fresh) == expected
        assert fresh.has_perm("submissions.submit_jobs") and not fresh.has_perm("submissions.manage_api_key")


def test_superusers_inactive_and_anonymous_users(cast):
    boss = cast.superuser
    assert ModelBackendOneQuery().get_all_permissions(boss) == ModelBackend().get_all_permissions(boss)
    assert len(ModelBackendOneQuery().get_all_permissions(boss)) == Permission.objects.count()

    gone = make_member("gone", role=roles.TEAM_ADMIN, is_active=False)
    assert ModelBackendOneQuery().get_all_permissions(gone) == set()
    assert ModelBackendOneQuery().get_all_permissions(AnonymousUser()) == set()


def test_a_role_changed_by_a_team_admin_applies_on_the_members_next_request(client, cast):
    member = cast.viewer
    client.force_login(member)
    assert client.get(NEW).status_code == 403
    roles.assign(member, roles.SUBMITTER)
    assert client.get(NEW).status_code == 200
    member.groups.clear()
    roles.assign(member, roles.VIEWER)
    assert client.get(NEW).status_code == 403


# --- Banners --------------------------------------------------------------------------------------------


@pytest.fixture
def staff(client, cast):
    client.force_login(cast.staff_team_admin)
    return client


def page(client) -> str:
    """The history page itself, never a login redirect or an error page: on those, a banner being absent
    would prove nothing."""
    response = client.get(HISTORY)
    assert response.status_code == 200, response.status_code
    assert [template.name for template in response.templates][:1] == ["submissions/jobs/history.html"]
    html = response.content.decode()
    assert 'aria-label="Filter the history"' in html
    return html


def test_the_sandbox_banner_follows_a_stored_key_at_once(staff, settings):
    settings.CHAMELAION_API_KEY = ""
    assert "banner-sandbox" in page(staff)
    ApiCredential.objects.create(encrypted_token="not-read-here", last_four="abcd")
    assert "banner-sandbox" not in page(staff)
    ApiCredential.objects.all().delete()
    assert "banner-sandbox" in page(staff)


def test_with_a_key_in_the_environment_there_is_no_sandbox_banner(staff, client, user, settings):
    settings.CHAMELAION_API_KEY = "an-environment-key"
    assert "banner-sandbox" not in page(staff)
    client.force_login(user)
    with CaptureQueriesContext(connection) as queries:
        assert "banner-sandbox" not in page(client)
    assert not any("apicredential" in query["sql"] for query in queries.captured_queries)


def test_a_problem_shows_to_staff_as_soon_as_it_is_raised_and_goes_when_resolved(staff, settings):
    assert "banner-problem" not in page(staff)
    problems.record_problem(chamelaion.Unauthorized("Invalid API key"), while_polling=True)
    assert "banner-problem" in page(staff) and "API key rejected" in page(staff)
    problems.clear_problems()
    assert "banner-problem" not in page(staff)


def test_a_problem_raised_by_another_process_shows_within_the_cache_time(staff, monkeypatch):
    monkeypatch.setattr(shortcache, "SECONDS", 0.5)
    assert "banner-problem" not in page(staff)  # read and kept
    # Another process (the worker) writes: no signal reaches this process's cache.
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Problem._meta.db_table} (code, message, pauses_polling, since, last_seen) "  # noqa: S608 - the model's own table name
            "VALUES (%s, %s, %s, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
            [Problem.Code.QUOTA_USED_UP, "Quota used up", False],
        )
    assert "banner-problem" not in page(staff)  # still the kept answer
    time.sleep(0.6)
    assert "banner-problem" in page(staff) and "Plan quota used up" in page(staff)


def test_banners_cost_no_query_while_kept(staff):
    page(staff)
    with CaptureQueriesContext(connection) as queries:
        page(staff)
    tables = " ".join(query["sql"] for query in queries.captured_queries)
    assert "submissions_problem" not in tables and "submissions_apicredential" not in tables


# --- The member filter ----------------------------------------------------------------------------------


def test_a_new_member_can_be_picked_in_the_team_filter_at_once(logged_in, user):
    team = logged_in.get(HISTORY + "?scope=team").content.decode()
    assert ">maria</option>" in team and ">zoe</option>" not in team
    zoe = make_member("zoe", role=roles.SUBMITTER)
    make_submission(zoe, title="Zoe's first")
    team = logged_in.get(HISTORY + "?scope=team").content.decode()
    assert f'<option value="{zoe.pk}">zoe</option>' in team
    picked = logged_in.get(HISTORY + f"?scope=team&member={zoe.pk}").content.decode()
    assert "Zoe&#x27;s first" in picked and "Select a valid choice" not in picked
    zoe.is_active = False
    zoe.save()
    assert ">zoe</option>" not in logged_in.get(HISTORY + "?scope=team").content.decode()


# --- Search ---------------------------------------------------------------------------------------------


def test_a_term_every_job_matches_pages_newest_first(logged_in, user):
    for n in range(55):
        make_submission(user, title=f"Episode {n:02d}", video_url=f"https://cdn.example.com/ep{n}.mp4")
    first = logged_in.get(HISTORY + "?q=episode").content.decode()
    assert first.count('class="badge') == 50 and first.index("Episode 54") < first.index("Episode 53")
    assert "Episode 04" not in first and "Older →" in first
    by_url = logged_in.get(HISTORY + "?q=.MP4").content.decode()
    assert by_url.count('class="badge') == 50 and "Episode 54" in by_url


def test_the_history_rows_are_read_without_model_instances(logged_in, user):
    """50 rows are read as plain values: no per-row query, and the page shows what the models would."""
    batch_job = make_submission(user, title="In a batch", state=Submission.State.IN_FLIGHT, upstream_status="rendering")
    from submissions.models import Batch

    batch = Batch.objects.create(name="Pilot <b>", created_by=user)
    Submission.objects.filter(pk=batch_job.pk).update(batch=batch)
    external = make_submission(None, title="Made elsewhere", request_id="ext-1", state=Submission.State.COMPLETED)
    html = logged_in.get(HISTORY + "?scope=team").content.decode()
    assert "Rendering" in html  # an unknown upstream status, as the badge says it
    assert "Pilot &lt;b&gt;" in html and f'href="{batch.get_absolute_url()}"' in html
    assert f'id="submission-{external.pk}"' in html and "<em>outside DubDash</em>" in html


def test_addresses_reversed_once_still_follow_the_script_prefix(logged_in, user):
    job = make_submission(user, title="Prefixed")
    plain = logged_in.get(HISTORY).content.decode()
    assert f'href="{NEW}"' in plain and f'href="{job.get_absolute_url()}"' in plain
    set_script_prefix("/dub/")  # DubDash served under a path of a shared host (as a WSGI server sets it)
    try:
        prefixed = logged_in.get(HISTORY).content.decode()
    finally:
        set_script_prefix("/")
    assert f'href="/dub{NEW}"' in prefixed and f'href="/dub{job.get_absolute_url()}"' in prefixed
    assert f'href="{NEW}"' not in prefixed


@pytest.mark.skipif(connection.vendor != "postgresql", reason="trigram indexes exist on PostgreSQL only")
def test_search_uses_trigram_indexes_with_a_short_pending_list(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, c.reloptions, am.amname FROM pg_class c JOIN pg_am am ON am.oid = c.relam "
            "WHERE c.relname LIKE 'submission_search_%%' ORDER BY c.relname"
        )
        indexes = cursor.fetchall()
    assert [name for name, _, _ in indexes] == [
        "submission_search_audio_url", "submission_search_reference_id", "submission_search_request_id",
        "submission_search_title", "submission_search_video_url",
    ]
    assert all(method == "gin" and options == ["gin_pending_list_limit=64"] for _, options, method in indexes)
