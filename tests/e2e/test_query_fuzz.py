"""Issue 9: no query string answers 500. Generated values for every parameter of the history (its page, its
live rows and its CSV export) and the usage page, alone and all together, on SQLite and PostgreSQL. A bad
value gets the page with a field error (200) or a 400; nothing else is acceptable."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from submissions import roles
from submissions.models import Batch, Submission
from tests.factories import make_member, make_submission

pytestmark = pytest.mark.django_db

HISTORY = reverse("submissions:history")
EXPORT = reverse("submissions:history_export")
USAGE = reverse("submissions:team_usage")
FUZZ = settings(
    max_examples=200,
    deadline=None,
    database=None,  # nothing written into the working tree; every run draws afresh
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Text a browser or a script could send: any character but lone surrogates (which no URL can carry).
any_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=300)
numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from(["0", "-0", "1e9", "0x10", "\uff11\uff12", "²", "9" * 30, "9" * 5000, " 7 ", "7.0", "NaN", "inf"]),
)
# The whole range, with the widest offsets: 9999-12-31T23:59:59-14:00 is past the end of time in UTC.
offsets = st.sampled_from([None, UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-14))])
moments = st.one_of(
    st.datetimes(min_value=datetime.min, max_value=datetime.max, timezones=offsets),
    st.builds(datetime.replace, st.sampled_from([datetime.min, datetime.max]), tzinfo=offsets),
)
dates = st.one_of(st.dates().map(str), st.sampled_from(["0000-00-00", "9999-12-31", "2026-02-30", "2026-13-01", "-1-01-01"]))
cursors = st.one_of(
    st.tuples(moments.map(datetime.isoformat), numbers).map("_".join),
    st.tuples(any_text, any_text).map("_".join),
    any_text,
)
choices = {
    "scope": st.sampled_from(["mine", "team", "", "all"]),
    "state": st.sampled_from([s.value for s in Submission.State] + ["", "nope"]),
    "language": st.sampled_from(["de", "pt-br", "", "xx", "DE"]),
    "sort": st.sampled_from(["created", "finished", "", "-created_at", "id"]),
}
PARAMETERS = {
    "scope": st.one_of(choices["scope"], any_text),
    "q": any_text,
    "member": st.one_of(numbers, any_text),
    "state": st.one_of(choices["state"], any_text),
    "language": st.one_of(choices["language"], any_text),
    "batch": st.one_of(numbers, any_text),
    "batch_name": any_text,
    "created_from": st.one_of(dates, any_text),
    "created_to": st.one_of(dates, any_text),
    "sort": st.one_of(choices["sort"], any_text),
    "after": cursors,
    "before": cursors,
    "page": st.one_of(numbers, any_text),
}


@pytest.fixture
def team_admin_client(client, user, other_user, django_user_model):
    """A team admin (every filter applies, the member filter included) with a history worth filtering."""
    admin = make_member("ines", role=roles.TEAM_ADMIN)
    batch = Batch.objects.create(name="Episode 4", created_by=user)
    for n, owner in enumerate([user, other_user, admin, user]):
        make_submission(owner, title=f"Episode {n}", target_language="de", batch=batch if n % 2 else None)
    client.force_login(admin)
    return client


def assert_no_server_error(client, url, params, **headers):
    response = client.get(url, params, **headers)  # an exception in the view fails the test here
    assert response.status_code in (200, 400), (url, params, response.status_code)
    return response


@pytest.mark.parametrize("name", sorted(PARAMETERS))
def test_no_value_of_one_history_parameter_answers_500(team_admin_client, name):
    @FUZZ
    @given(value=PARAMETERS[name], team=st.booleans())
    def check(value, team):
        params = {name: value, **({"scope": "team"} if team and name != "scope" else {})}
        page = assert_no_server_error(team_admin_client, HISTORY, params)
        assert page.status_code == 200  # the page always answers, with field errors where needed
        assert_no_server_error(team_admin_client, HISTORY, params, HTTP_HX_REQUEST="true")
        assert_no_server_error(team_admin_client, EXPORT, params)

    check()


@FUZZ
@given(params=st.fixed_dictionaries({}, optional=PARAMETERS))
def test_no_combination_of_history_parameters_answers_500(team_admin_client, params):
    assert assert_no_server_error(team_admin_client, HISTORY, params).status_code == 200
    assert_no_server_error(team_admin_client, EXPORT, params)


@FUZZ
@given(days=st.one_of(numbers, any_text))
def test_no_usage_period_answers_500(team_admin_client, days):
    assert assert_no_server_error(team_admin_client, USAGE, {"days": days}).status_code == 200


@FUZZ
@given(pk=st.integers(min_value=0, max_value=2**80))
def test_no_id_in_a_path_answers_500(team_admin_client, pk):
    for name in ("submissions:detail", "submissions:batch", "submissions:batch_export", "submissions:csv_preview"):
        response = team_admin_client.get(reverse(name, args=[pk]))
        assert response.status_code in (200, 404), (name, pk, response.status_code)
