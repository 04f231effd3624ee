"""The auth backend loads a request's user, their permissions and whether a monthly limit applies in one
statement, and nothing of it outlives the request."""

import pytest
from django.contrib.auth import get_user_model

from submissions import roles
from submissions.core.auth_backends import ModelBackendOneQuery
from submissions.models import MonthlyLimit
from submissions.team import limits
from tests.factories import make_member

pytestmark = pytest.mark.django_db
BACKEND = ModelBackendOneQuery()


def test_one_statement_brings_the_user_their_permissions_and_their_limit(django_assert_num_queries):
    maria = make_member("maria", role=roles.SUBMITTER)
    MonthlyLimit.objects.create(user=maria, jobs_per_month=7)
    with django_assert_num_queries(1):
        loaded = BACKEND.get_user(maria.pk)
        assert loaded.get_username() == "maria"
        assert loaded.has_perm(roles.SUBMIT_JOBS) and not loaded.has_perm(roles.MANAGE_MEMBERS)
        assert loaded.monthly_limit.jobs_per_month == 7
    assert loaded.get_all_permissions() == set(roles.PERMISSIONS[roles.SUBMITTER])


def test_a_member_without_a_limit_is_never_asked_about_one(django_assert_num_queries):
    kenji = BACKEND.get_user(make_member("kenji", role=roles.SUBMITTER).pk)
    with django_assert_num_queries(0):
        limits.check_monthly_limit(user=kenji, adding=1)
    with pytest.raises(MonthlyLimit.DoesNotExist):
        kenji.monthly_limit  # noqa: B018 - the cached answer: no limit


def test_a_limit_or_a_role_given_since_applies_from_the_next_load():
    ana = make_member("ana", role=roles.VIEWER)
    before = BACKEND.get_user(ana.pk)
    roles.assign(ana, roles.SUBMITTER)
    MonthlyLimit.objects.create(user=ana, jobs_per_month=0)
    assert not before.has_perm(roles.SUBMIT_JOBS)  # the load is one request's view
    after = BACKEND.get_user(ana.pk)
    assert after.has_perm(roles.SUBMIT_JOBS)
    with pytest.raises(limits.MonthlyLimitReached):
        limits.check_monthly_limit(user=after, adding=1)


def test_no_role_no_permissions_and_an_inactive_or_unknown_user_is_nobody():
    nobody = make_member("nobody")
    assert BACKEND.get_user(nobody.pk).get_all_permissions() == set()
    gone = make_member("gone", role=roles.TEAM_ADMIN, is_active=False)
    assert BACKEND.get_user(gone.pk) is None
    assert BACKEND.get_user(10**9) is None
    assert BACKEND.get_user("not-a-number") is None


def test_a_superuser_has_every_permission():
    root = make_member("root", is_staff=True, is_superuser=True)
    loaded = BACKEND.get_user(root.pk)
    assert loaded.has_perm(roles.MANAGE_API_KEY)
    assert len(loaded.get_all_permissions()) == get_user_model()._meta.apps.get_model("auth", "Permission").objects.count()


def test_the_loaded_user_is_the_same_as_the_orm_would_load():
    maria = make_member("maria", role=roles.SUBMITTER, email="maria@example.com", first_name="María")
    loaded = BACKEND.get_user(maria.pk)
    fresh = get_user_model().objects.get(pk=maria.pk)
    for field in get_user_model()._meta.concrete_fields:
        assert getattr(loaded, field.attname) == getattr(fresh, field.attname), field.name
    assert loaded.check_password("dubbing-all-day")


@pytest.mark.parametrize("user_id", [10**30, 2**63, -(2**63) - 1, "1e3", "  ", None])
def test_a_session_naming_an_impossible_user_is_nobody(user_id):
    make_member("maria", role=roles.SUBMITTER)
    assert BACKEND.get_user(user_id) is None


def test_sessions_keep_working_across_the_move_of_the_backend(client):
    """Every session stores the backend's dotted path: it is the one sessions from before the layout's
    rebuild hold, so nobody is logged out by an upgrade."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY

    maria = make_member("maria", role=roles.SUBMITTER)
    client.force_login(maria)
    assert client.session[BACKEND_SESSION_KEY] == "submissions.auth_backends.ModelBackendOneQuery"
    assert "submissions.auth_backends.ModelBackendOneQuery" in settings.AUTHENTICATION_BACKENDS
    assert client.get("/").status_code == 200


def test_a_user_object_that_once_cached_no_limit_is_still_held_to_a_limit_set_since():
    """Only the auth backend's own load of this request is trusted to say "no limit"; any other user object
    (a worker's, kept for hours) is asked again."""
    ana = make_member("ana", role=roles.SUBMITTER)
    with pytest.raises(MonthlyLimit.DoesNotExist):
        ana.monthly_limit  # noqa: B018 - caches "no limit" on this object
    MonthlyLimit.objects.create(user=ana, jobs_per_month=0)
    with pytest.raises(limits.MonthlyLimitReached):
        limits.check_monthly_limit(user=ana, adding=1)
