"""The inputs fingerprint is computed in one place (submissions.jobs.fingerprints) and stored by every
service that saves a job or changes its inputs; Submission.save() computes nothing."""

import ast
from pathlib import Path

import pytest
from django.contrib import admin as django_admin
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import RequestFactory

from submissions.admin.submissions import SubmissionAdmin
from submissions.batches import services as batch_services
from submissions.jobs import services as job_services
from submissions.jobs.fingerprints import fingerprint_of, inputs_fingerprint
from submissions.models import Submission
from submissions.uploads import services as upload_services
from tests.factories import make_submission

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]
VIDEO = "https://cdn.example.com/show/episode-1.mp4"
AUDIO = "https://cdn.example.com/show/episode-1-de.wav"
SAME = inputs_fingerprint(VIDEO, AUDIO, False)


@pytest.fixture
def nothing_sent(monkeypatch):
    """These tests are about what is saved: sending is left to the worker (no HTTP)."""
    monkeypatch.setattr(job_services, "send_if_room", lambda *, submission: submission)
    monkeypatch.setattr(batch_services, "send_while_room", lambda submissions: None)


def test_saving_a_submission_computes_no_fingerprint(user):
    """The rule is not in save(): a row saved directly keeps what it was given."""
    job = Submission.objects.create(created_by=user, video_url=VIDEO, audio_url=AUDIO, reference_id="direct-1")
    assert job.inputs_fingerprint == ""
    job.save()
    job.refresh_from_db()
    assert job.inputs_fingerprint == ""


def test_fingerprint_of_fields_is_the_fingerprint_of_the_inputs():
    assert fingerprint_of({"video_url": VIDEO, "audio_url": AUDIO}) == SAME
    assert fingerprint_of({"video_url": VIDEO, "audio_url": AUDIO, "disable_active_speaker_detection": True}) != SAME
    assert fingerprint_of({"video_url": VIDEO + "#t=3", "audio_url": AUDIO, "title": "ignored"}) == SAME
    assert fingerprint_of({"title": "an upload: no URLs"}) == ""


def test_the_single_form_s_service_stores_it(user, nothing_sent):
    job = job_services.submit(user=user, video_url=VIDEO, audio_url=AUDIO)
    assert Submission.objects.get(pk=job.pk).inputs_fingerprint == SAME


def test_a_batch_stores_one_per_job(user, nothing_sent):
    rows = [
        {"video_url": VIDEO, "audio_url": AUDIO, "target_language": "de"},
        {"video_url": VIDEO, "audio_url": AUDIO.replace("-de", "-fr"), "target_language": "fr",
         "disable_active_speaker_detection": True},
    ]
    batch = batch_services.create_batch(user=user, name="Episode 1", rows=rows)
    stored = list(batch.submissions.order_by("pk").values_list("inputs_fingerprint", flat=True))
    assert stored == [SAME, inputs_fingerprint(VIDEO, AUDIO.replace("-de", "-fr"), True)]


def test_sending_again_with_edited_inputs_stores_the_new_one(user, nothing_sent):
    failed = make_submission(user, video_url=VIDEO, audio_url=AUDIO, state=Submission.State.SEND_FAILED)
    assert failed.inputs_fingerprint == SAME
    other = "https://cdn.example.com/show/episode-2.mp4"
    job_services.send_again(submission=failed, changes={"video_url": other}, user=user)
    failed.refresh_from_db()
    assert (failed.video_url, failed.inputs_fingerprint) == (other, inputs_fingerprint(other, AUDIO, False))


def test_a_job_added_in_admin_gets_it(admin_user, user):
    request = RequestFactory().post("/")
    request.user = admin_user
    job = Submission(created_by=user, video_url=VIDEO, audio_url=AUDIO, reference_id="added-by-hand")
    SubmissionAdmin(Submission, django_admin.site).save_model(request, job, form=None, change=False)
    assert Submission.objects.get(reference_id="added-by-hand").inputs_fingerprint == SAME


def test_an_upload_has_none(user, settings, tmp_path, monkeypatch):
    """Files have no URL to compare: blank, as fingerprint_of says for inputs without URLs."""
    settings.MEDIA_ROOT = tmp_path
    monkeypatch.setattr(upload_services, "SEND_IN_REQUEST_MAX_BYTES", 0)  # left to the worker: no HTTP
    job = upload_services.submit_upload(
        user=user, video=SimpleUploadedFile("v.mp4", b"video"), audio=SimpleUploadedFile("a.wav", b"audio"), title="x"
    )
    assert job.state == Submission.State.PENDING and Submission.objects.get(pk=job.pk).inputs_fingerprint == ""


def test_only_the_fingerprints_module_computes_it():
    """Nothing else hashes inputs or calls the hash itself: everything goes through fingerprint_of."""
    callers = []
    for path in (ROOT / "submissions").rglob("*.py"):
        relative = path.relative_to(ROOT).as_posix()
        if relative in ("submissions/jobs/fingerprints.py", "submissions/migrations/0014_recompute_fingerprints.py"):
            continue
        if relative == "submissions/chamelaion/downloads.py":  # the checksum of a kept output's bytes, not of inputs
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                if name in ("inputs_fingerprint", "sha256"):
                    callers.append(f"{relative}:{node.lineno} {name}")
    assert callers == []
