"""The batch ZIP holds only the jobs the downloader may see. Seeing a batch is not seeing every job in it: a
member on no team sees the batch they made, but not a take of it someone else made, and must not receive
that video (or its row of the manifest) through the batch's ZIP."""

from __future__ import annotations

import csv
import io
import zipfile

import pytest
from django.urls import reverse
from django.utils import timezone

from submissions.models import Batch, Submission
from submissions.outputs import zips
from tests.factories import make_part, make_submission
from tests.outputs.test_zips import keep

pytestmark = pytest.mark.django_db
State = Submission.State


def completed(owner, **fields) -> Submission:
    return make_submission(owner, state=State.COMPLETED, finished_at=timezone.now(), **fields)


@pytest.fixture
def mixed_batch(local_outputs, settings):
    """A batch made by a member on no team: their own French job and German take 1, then a German take 2
    and an Italian job that a team admin made in it. Every one of them kept."""
    settings.OUTPUT_KEEP = True
    people = {part: make_part(part) for part in ("no_role", "viewer", "submitter", "team_admin", "superuser")}
    owner, admin = people["no_role"], people["team_admin"]
    batch = Batch.objects.create(name="Episode 9", created_by=owner)
    fr = completed(owner, title="Own French", target_language="fr", batch=batch)
    de1 = completed(owner, title="Own German", target_language="de", batch=batch)
    it = completed(admin, title="Admin Italian", target_language="it", batch=batch)
    de2 = completed(admin, title="Admin German", target_language="de", batch=batch, take=2, first_take=de1, retry_of=de1)
    videos = {"fr": b"FRENCH-VIDEO" * 50, "de1": b"GERMAN-TAKE-1" * 50, "it": b"ITALIAN-VIDEO" * 50, "de2": b"GERMAN-TAKE-2" * 50}
    for key, submission in {"fr": fr, "de1": de1, "it": it, "de2": de2}.items():
        keep(submission, videos[key])
    return batch, people, {"fr": fr, "de1": de1, "it": it, "de2": de2}, videos


def download(client, user, batch) -> tuple[bytes, zipfile.ZipFile]:
    client.force_login(user)
    response = client.get(reverse("submissions:batch_zip", args=[batch.pk]))
    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    assert int(response["Content-Length"]) == len(body)
    archive = zipfile.ZipFile(io.BytesIO(body))
    assert archive.testzip() is None
    return body, archive


def manifest_titles(archive: zipfile.ZipFile) -> list[str]:
    rows = list(csv.reader(io.StringIO(archive.read("manifest.csv").decode("utf-8-sig"))))
    return [row[1] for row in rows[1:]]


def test_a_member_without_the_team_s_history_gets_only_their_own_jobs_of_their_batch(client, mixed_batch):
    batch, people, _jobs, videos = mixed_batch

    body, archive = download(client, people["no_role"], batch)

    # Their French job; not the admin's Italian job nor the admin's German take 2 (the language's latest take:
    # German is left out, not replaced by the take 1 that take 2 superseded).
    assert archive.namelist() == ["manifest.csv", "Own French_fr_take1.mp4"]
    assert manifest_titles(archive) == ["Own French"]
    for key in ("it", "de2", "de1"):
        assert videos[key] not in body
    assert b"Admin" not in archive.read("manifest.csv")


@pytest.mark.parametrize("part", ["viewer", "submitter", "team_admin", "superuser"])
def test_whoever_sees_the_team_s_history_gets_the_whole_deliverable(client, mixed_batch, part):
    batch, people, _jobs, videos = mixed_batch

    _body, archive = download(client, people[part], batch)

    assert archive.namelist() == [
        "manifest.csv", "Own French_fr_take1.mp4", "Admin German_de_take2.mp4", "Admin Italian_it_take1.mp4",
    ]
    assert archive.read("Admin German_de_take2.mp4") == videos["de2"]
    assert archive.read("Admin Italian_it_take1.mp4") == videos["it"]
    assert manifest_titles(archive) == ["Own French", "Admin German", "Admin Italian"]


def test_batch_jobs_is_the_deliverable_filtered_by_who_asks(mixed_batch):
    batch, people, jobs, _videos = mixed_batch
    assert zips.batch_jobs(batch=batch, user=people["no_role"]) == [jobs["fr"]]
    assert zips.batch_jobs(batch=batch, user=people["viewer"]) == [jobs["fr"], jobs["de2"], jobs["it"]]


def test_someone_else_s_batch_is_still_not_found(client, mixed_batch):
    batch, _people, _jobs, _videos = mixed_batch
    stranger = make_part("no_role", username="stranger")
    client.force_login(stranger)
    assert client.get(reverse("submissions:batch_zip", args=[batch.pk])).status_code == 404
