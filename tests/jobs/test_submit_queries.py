"""What one form POST on /submissions/new/ costs in SQL, the page that writes most: a logged-in submitter
posts a valid new job that is sent at once to the loopback sandbox. Everything the request runs counts
(session, user, permissions, messages, transactions), and the job must really have been sent."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from submissions import roles
from submissions.models import MonthlyLimit, RateBudget, Submission
from tests.factories import make_member

# As in production, outside any test transaction: a test transaction would turn every atomic block into a
# SAVEPOINT/RELEASE pair that a real request never sends (its BEGIN and COMMIT are not statements Django
# logs, here or in production).
pytestmark = pytest.mark.django_db(transaction=True)

# Issue 10: at most 10, BEGIN and COMMIT included (SQLite logs them, PostgreSQL does not: both are counted
# here as statements the database answers). They are: the session (1); the user with their permissions and
# monthly limit (1); the duplicate guard (1); a rate-budget slot taken only while no problem is open (1);
# the job and its trail entry in one transaction (4); the API key (1); the request id (1).
MAX_QUERIES = 10
VALID = {
    "video_url": "https://cdn.example.com/episode-1.mp4",
    "audio_url": "https://cdn.example.com/episode-1-de.wav",
    "target_language": "de",
    "title": "Episode 1 (German)",
    "reference_id": "",
}


def submit_counting(client) -> tuple[Submission, list[str], int]:
    with CaptureQueriesContext(connection) as queries:
        response = client.post(reverse("submissions:new"), VALID)
    submission = Submission.objects.get(title=VALID["title"])
    # Not vacuous: the job was saved and sent in this very request, and the browser is sent to its page.
    assert response.status_code == 302
    assert response["Location"] == submission.get_absolute_url()
    assert submission.request_id and submission.state == Submission.State.QUEUED
    return submission, [query["sql"] for query in queries.captured_queries], response.status_code


@pytest.fixture
def a_deployment_that_has_sent_before(client, cast, sandbox):
    """The rate budget's row is made by a deployment's very first send, once: measure the usual submit."""
    client.force_login(cast.submitter)
    client.post(reverse("submissions:new"), {**VALID, "video_url": "https://cdn.example.com/trailer.mp4", "title": "First"})
    assert RateBudget.objects.exists() and Submission.objects.get(title="First").request_id
    return client


def test_one_submit_costs_at_most_max_queries(a_deployment_that_has_sent_before, sandbox):
    submission, queries, _ = submit_counting(a_deployment_that_has_sent_before)
    assert submission.request_id in [job["id"] for job in sandbox.jobs()]
    listed = "\n".join(f"{n}. {sql}" for n, sql in enumerate(queries, 1))
    assert len(queries) <= MAX_QUERIES, f"{len(queries)} queries for one submit:\n{listed}"


def test_the_problems_are_read_once_and_the_claimed_job_is_not_read_back(a_deployment_that_has_sent_before):
    submission, queries, _ = submit_counting(a_deployment_that_has_sent_before)
    problem_reads = [sql for sql in queries if "submissions_problem" in sql]
    job_reads = [sql for sql in queries if sql.startswith("SELECT") and 'FROM "submissions_submission" WHERE' in sql
                 and f'"id" = {submission.pk}' in sql]
    assert len(problem_reads) == 1, problem_reads
    assert job_reads == [], job_reads


def test_a_member_with_a_monthly_limit_costs_one_statement_more(a_deployment_that_has_sent_before, cast, sandbox):
    """Their limit row is locked and their month counted, in one statement: two submits at the same moment
    cannot both slip under the limit."""
    MonthlyLimit.objects.create(user=cast.submitter, jobs_per_month=50)
    _, queries, _ = submit_counting(a_deployment_that_has_sent_before)
    listed = "\n".join(f"{n}. {sql}" for n, sql in enumerate(queries, 1))
    assert len(queries) <= MAX_QUERIES + 1, f"{len(queries)} queries for one submit:\n{listed}"
    assert [sql for sql in queries if "submissions_monthlylimit" in sql and "COUNT(" in sql.upper()], listed


def test_a_refused_submit_takes_no_slot_of_the_shared_budget(client, cast, sandbox, settings):
    """A member whose monthly limit is used up cannot slow everyone else down by submitting again and again:
    the slot is taken in the same transaction as the job, so a refusal gives it back."""
    settings.SEND_RATE_LIMIT_PER_MINUTE = 20  # a burst of 2
    capped = make_member("capped", role=roles.SUBMITTER)
    MonthlyLimit.objects.create(user=capped, jobs_per_month=0)
    client.force_login(capped)
    for n in range(5):
        refused = client.post(reverse("submissions:new"), {**VALID, "video_url": f"https://cdn.example.com/{n}.mp4"})
        assert "Monthly limit reached" in refused.content.decode()
    assert not Submission.objects.filter(created_by=capped).exists()

    client.force_login(cast.submitter)
    submission, _, _ = submit_counting(client)
    assert submission.request_id in [job["id"] for job in sandbox.jobs()]
