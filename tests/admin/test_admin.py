import pytest
from django.urls import reverse

from submissions.models import Submission
from tests.factories import make_submission

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_with_rows(admin_client, admin_user, user):
    for n, state in enumerate([Submission.State.QUEUED, Submission.State.SEND_FAILED, Submission.State.COMPLETED]):
        make_submission(
            user if n else admin_user,
            title=f"Episode {n}",
            video_url=f"https://cdn.example.com/ep{n}.mp4",
            audio_url=f"https://cdn.example.com/ep{n}-fr.wav",
            reference_id=f"ep{n}-fr",
            request_id=f"00000000-0000-4000-8000-00000000000{n}" if state != Submission.State.SEND_FAILED else None,
            state=state,
        )
    return admin_client


def changelist(client, **query):
    return client.get(reverse("admin:submissions_submission_changelist"), query)


def test_changelist_columns_filters_and_search(admin_client_with_rows, django_assert_max_num_queries):
    with django_assert_max_num_queries(12):
        page = changelist(admin_client_with_rows).content.decode()
    for column in ("Created by", "Target language", "State", "Reference id", "Request id"):
        assert column in page
    assert "Episode 0" in page and "Episode 2" in page
    assert "By state" in page and "By member" in page and "By created at" in page

    failed = changelist(admin_client_with_rows, state="send_failed").content.decode()
    assert "Episode 1" in failed and "Episode 0" not in failed
    by_request = changelist(admin_client_with_rows, q="00000000-0000-4000-8000-000000000002").content.decode()
    assert "Episode 2" in by_request and "Episode 0" not in by_request
    by_url = changelist(admin_client_with_rows, q="ep0-fr.wav").content.decode()
    assert "Episode 0" in by_url and "Episode 1" not in by_url


def test_upstream_fields_are_read_only(admin_client_with_rows):
    submission = Submission.objects.get(reference_id="ep0-fr")
    page = admin_client_with_rows.get(reverse("admin:submissions_submission_change", args=[submission.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert 'name="request_id"' not in html and 'name="state"' not in html
    assert 'name="video_url"' not in html  # sent: the inputs describe a real job now
    assert "00000000-0000-4000-8000-000000000000" in html


def test_send_again_action_sends_the_failed_ones(admin_client_with_rows, fake_chamelaion):
    response = admin_client_with_rows.post(
        reverse("admin:submissions_submission_changelist"),
        {"action": "send_again", "_selected_action": list(Submission.objects.values_list("pk", flat=True))},
        follow=True,
    )
    assert "Sent or queued 1; still not sent 0." in response.content.decode()
    (job,) = fake_chamelaion.jobs()
    assert Submission.objects.get(reference_id="ep1-fr").request_id == job["id"]


def test_non_staff_cannot_open_the_admin(logged_in):
    response = logged_in.get(reverse("admin:submissions_submission_changelist"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
