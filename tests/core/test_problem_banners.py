"""Issue 9, item 7 and the outage: the banners for what only an administrator can fix reach everyone who
can fix it (staff, and whoever manages the API key, staff or not), on every page, and nobody else."""

import pytest
from django.urls import reverse

from submissions import roles
from submissions.models import Problem
from tests.factories import make_member

pytestmark = pytest.mark.django_db
PAGES = ["submissions:history", "submissions:api_key", "submissions:new"]
BANNERS = {
    "api_key_rejected": "API key rejected",
    "quota_used_up": "Plan quota used up",
    "chamelaion_unreachable": "Chamelaion cannot be reached",
}


@pytest.fixture(params=[True, False], ids=["key-in-environment", "sandbox-or-stored-key"])
def key_in_environment(request, settings):
    settings.CHAMELAION_API_KEY = "cml_env_5e8b2d90a1f34c6d8e20" if request.param else ""
    return request.param


@pytest.mark.parametrize("code", list(BANNERS))
def test_a_team_admin_without_staff_status_sees_the_problem_where_they_would_fix_it(
    client, django_user_model, key_in_environment, code
):
    Problem.objects.create(code=code, message="An administrator must act.")
    client.force_login(make_member("ines", role=roles.TEAM_ADMIN))
    for name in PAGES:
        page = client.get(reverse(name)).content.decode()
        assert f"<strong>{BANNERS[code]}</strong>" in page, name
        assert 'class="banner banner-problem" role="alert"' in page


@pytest.mark.parametrize("role", [roles.VIEWER, roles.SUBMITTER])
def test_members_who_cannot_fix_it_are_not_shown_it(client, django_user_model, key_in_environment, role):
    Problem.objects.create(code="api_key_rejected", message="An administrator must act.")
    client.force_login(make_member("maria", role=role))
    assert "banner-problem" not in client.get(reverse("submissions:history")).content.decode()


def test_staff_without_the_key_permission_still_see_it(client, django_user_model, key_in_environment):
    Problem.objects.create(code="quota_used_up", message="An administrator must act.")
    client.force_login(make_member("sam", role=roles.VIEWER, is_staff=True))
    assert "<strong>Plan quota used up</strong>" in client.get(reverse("submissions:history")).content.decode()
