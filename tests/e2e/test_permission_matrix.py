"""Every role against every view and method: what each may do is checked on the server, and a
forbidden request changes nothing.

Roles: anonymous, no role, Viewer, the Submitter who owns the objects, another Submitter, Team admin,
superuser. Allowed requests answer 200 (or 302 after acting); forbidden ones 403, or 404 where the
object itself must stay hidden; anonymous visitors are sent to the login page."""

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.core.files.base import ContentFile
from django.urls import get_resolver, resolve, reverse
from django.utils import timezone

from submissions.models import Batch, CsvUpload, OutputCopy, Submission
from submissions.sandbox.media import MEDIA_DIR
from tests.factories import make_part, make_submission

SAMPLE = (MEDIA_DIR / "sample.mp4").read_bytes()

pytestmark = pytest.mark.django_db
ACTORS = ["anonymous", "no_role", "viewer", "owner", "other_submitter", "team_admin", "superuser"]
LOGIN = "login"

#                          anonymous no_role viewer owner other team_admin superuser
MATRIX = {
    ("history", "GET"):        (LOGIN, 200, 200, 200, 200, 200, 200),
    ("team_history", "GET"):   (LOGIN, 200, 200, 200, 200, 200, 200),
    ("new", "GET"):            (LOGIN, 403, 403, 200, 200, 200, 200),
    ("new", "POST"):           (LOGIN, 403, 403, 200, 200, 200, 200),
    ("new_batch", "GET"):      (LOGIN, 403, 403, 200, 200, 200, 200),
    ("new_batch", "POST"):     (LOGIN, 403, 403, 200, 200, 200, 200),
    ("csv_upload", "GET"):     (LOGIN, 403, 403, 200, 200, 200, 200),
    ("csv_upload", "POST"):    (LOGIN, 403, 403, 200, 200, 200, 200),
    ("csv_preview", "GET"):    (LOGIN, 403, 403, 200, 404, 404, 404),
    ("csv_preview", "POST"):   (LOGIN, 403, 403, 200, 404, 404, 404),
    ("csv_send", "POST"):      (LOGIN, 403, 403, 302, 404, 404, 404),
    ("upload", "GET"):         (LOGIN, 403, 403, 200, 200, 200, 200),
    ("upload", "POST"):        (LOGIN, 403, 403, 200, 200, 200, 200),
    ("detail", "GET"):         (LOGIN, 404, 200, 200, 200, 200, 200),
    ("send_again", "POST"):    (LOGIN, 404, 403, 302, 403, 302, 302),
    ("cancel", "POST"):        (LOGIN, 404, 403, 302, 403, 302, 302),
    ("refresh", "POST"):       (LOGIN, 404, 302, 302, 302, 302, 302),
    ("batch", "GET"):          (LOGIN, 404, 200, 200, 200, 200, 200),
    ("retry_failed", "POST"):  (LOGIN, 404, 403, 302, 403, 302, 302),
    ("history_export", "GET"): (LOGIN, 200, 200, 200, 200, 200, 200),
    ("batch_export", "GET"):   (LOGIN, 404, 200, 200, 200, 200, 200),
    ("team_members", "GET"):   (LOGIN, 403, 403, 403, 403, 200, 200),
    ("member_update", "POST"): (LOGIN, 403, 403, 403, 403, 302, 302),
    ("member_update_superuser", "POST"): (LOGIN, 403, 403, 403, 403, 403, 302),
    ("team_usage", "GET"):     (LOGIN, 403, 403, 403, 403, 200, 200),
    ("api_key", "GET"):        (LOGIN, 403, 403, 403, 403, 200, 200),
    ("api_key", "POST"):       (LOGIN, 403, 403, 403, 403, 200, 200),
    ("api_key_test", "POST"):  (LOGIN, 403, 403, 403, 403, 200, 200),
    ("output", "GET"):         (LOGIN, 404, 200, 200, 200, 200, 200),
    ("output_retry", "POST"):  (LOGIN, 404, 403, 302, 403, 302, 302),
    # A new take replaces the latest take and costs money: the rule of Send again, on the latest take.
    ("new_take", "GET"):       (LOGIN, 404, 403, 200, 403, 200, 200),
    ("new_take", "POST"):      (LOGIN, 404, 403, 200, 403, 200, 200),
    ("batch_zip", "GET"):      (LOGIN, 404, 200, 200, 200, 200, 200),
    # no_role sees no job, so nothing ticked is found: back to the history with a message.
    ("history_zip", "GET"):    (LOGIN, 302, 200, 200, 200, 200, 200),
}


@pytest.fixture
def world(django_user_model, sandbox):
    people = {name: make_part(part, username=name, password="x") for name, part in [
        ("no_role", "no_role"), ("viewer", "viewer"), ("owner", "submitter"), ("other_submitter", "submitter"),
        ("team_admin", "team_admin"),
    ]}
    people["superuser"] = make_part("superuser", username="root", password="x")
    owner = people["owner"]
    batch = Batch.objects.create(name="Episode 1", created_by=owner)
    failed = make_submission(owner, batch=batch, state=Submission.State.SEND_FAILED, last_error="x")
    waiting = make_submission(owner, next_attempt_at=timezone.now() + timedelta(hours=1))
    upload = CsvUpload.objects.create(created_by=owner, filename="a.csv", content="video_url,audio_url\n", batch_name="A")
    kept = make_submission(owner, batch=batch, state=Submission.State.COMPLETED, output_url="https://cdn.example.com/o.mp4")
    copy = OutputCopy(submission=kept, state=OutputCopy.State.DONE, size=len(SAMPLE), sha256="0" * 64)
    copy.file.save("kept.mp4", ContentFile(SAMPLE), save=True)
    lost = make_submission(owner, state=Submission.State.COMPLETED, output_url="https://cdn.example.com/gone.mp4")
    OutputCopy.objects.create(submission=lost, state=OutputCopy.State.FAILED, last_error="HTTP 404", next_attempt_at=None)
    urls = {
        "history": reverse("submissions:history"),
        "team_history": reverse("submissions:history") + "?scope=team",
        "new": reverse("submissions:new"),
        "new_batch": reverse("submissions:new_batch"),
        "csv_upload": reverse("submissions:csv_upload"),
        "csv_preview": reverse("submissions:csv_preview", args=[upload.pk]),
        "csv_send": reverse("submissions:csv_send", args=[upload.pk]),
        "upload": reverse("submissions:upload"),
        "detail": failed.get_absolute_url(),
        "send_again": reverse("submissions:send_again", args=[failed.pk]),
        "cancel": reverse("submissions:cancel", args=[waiting.pk]),
        "refresh": reverse("submissions:refresh", args=[failed.pk]),
        "batch": batch.get_absolute_url(),
        "retry_failed": reverse("submissions:batch_retry_failed", args=[batch.pk]),
        "history_export": reverse("submissions:history_export"),
        "batch_export": reverse("submissions:batch_export", args=[batch.pk]),
        "team_members": reverse("submissions:team_members"),
        "member_update": reverse("submissions:team_member_update", args=[owner.pk]),
        "member_update_superuser": reverse("submissions:team_member_update", args=[people["superuser"].pk]),
        "team_usage": reverse("submissions:team_usage"),
        "api_key": reverse("submissions:api_key"),
        "api_key_test": reverse("submissions:api_key_test"),
        "output": reverse("submissions:output", args=[kept.pk]),
        "output_retry": reverse("submissions:output_retry", args=[lost.pk]),
        "new_take": reverse("submissions:new_take", args=[failed.pk]),
        "batch_zip": reverse("submissions:batch_zip", args=[batch.pk]),
        "history_zip": reverse("submissions:history_zip") + f"?job={kept.pk}",
    }
    return people, urls, failed, waiting


@pytest.mark.parametrize(("view", "method"), list(MATRIX))
@pytest.mark.parametrize("actor", ACTORS)
def test_the_permission_matrix(client, world, actor, view, method):
    people, urls, failed, waiting = world
    if actor != "anonymous":
        client.force_login(people[actor])
    before = _stored(failed, waiting, people)
    response = client.get(urls[view]) if method == "GET" else client.post(urls[view], {})
    expected = MATRIX[(view, method)][ACTORS.index(actor)]

    if expected == LOGIN:
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    else:
        assert response.status_code == expected, f"{actor} {method} {view}"
    if method == "POST" and expected in (LOGIN, 403, 404):
        assert _stored(failed, waiting, people) == before  # nothing changed


def test_every_page_of_the_app_has_its_rows_in_the_matrix(world):
    """A view added without a row here fails this test."""
    _people, urls, _failed, _waiting = world
    covered = {resolve(urlsplit(url).path).url_name for view, _method in MATRIX for url in [urls[view]]}
    every = {name for name in get_resolver().namespace_dict["submissions"][1].reverse_dict if isinstance(name, str)}
    assert every - covered == set()


def _stored(failed, waiting, people) -> tuple:
    """What a forbidden request must leave as it was."""
    failed.refresh_from_db()
    waiting.refresh_from_db()
    copies = sorted(OutputCopy.objects.values_list("pk", "state", "attempts"))
    return Submission.objects.count(), Batch.objects.count(), failed.send_attempts, waiting.state, copies, _privileges(people)


def _privileges(people) -> list[tuple]:
    """Everyone's superuser and staff flags, password and groups, as stored."""
    users = type(people["superuser"]).objects.filter(pk__in=[p.pk for p in people.values()]).prefetch_related("groups")
    return sorted((u.username, u.is_superuser, u.is_staff, u.password, sorted(g.name for g in u.groups.all())) for u in users)


@pytest.mark.parametrize("actor", ACTORS[1:])
def test_buttons_a_user_may_not_use_are_not_shown(client, world, actor):
    people, urls, _failed, waiting = world
    client.force_login(people[actor])
    nav = client.get(urls["history"]).content.decode()
    may_submit = actor in ("owner", "other_submitter", "team_admin", "superuser")
    assert (urls["new"] in nav) is may_submit
    assert (urls["team_members"] in nav) is (actor in ("team_admin", "superuser"))
    assert (urls["team_usage"] in nav) is (actor in ("team_admin", "superuser"))
    if actor != "no_role":
        detail = client.get(urls["detail"]).content.decode()
        assert (f'action="{urls["send_again"]}"' in detail) is (actor in ("owner", "team_admin", "superuser"))
        pending = client.get(waiting.get_absolute_url()).content.decode()
        assert (f'action="{urls["cancel"]}"' in pending) is (actor in ("owner", "team_admin", "superuser"))
        batch = client.get(urls["batch"]).content.decode()
        assert (f'action="{urls["retry_failed"]}"' in batch) is (actor in ("owner", "team_admin", "superuser"))
        # New take, on the job's page and on its row of the batch page: whoever may make it (the matrix's rule).
        may_retake = actor in ("owner", "team_admin", "superuser")
        assert (f'href="{urls["new_take"]}"' in detail) is may_retake
        assert (f'href="{urls["new_take"]}"' in batch) is may_retake
