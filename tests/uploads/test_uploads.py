"""Submitting local files through generate-with-media, end to end against the sandbox over real HTTP:
files are checked by content, refused past the size limit while they arrive, streamed to the API with
flat memory, kept while a send waits and deleted once the job is sent; a refused upload leaves nothing
on disk."""

import io
import re
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import MemoryFileUploadHandler
from django.http import HttpRequest
from django.http.multipartparser import MultiPartParser
from django.urls import reverse
from django.utils import timezone

from submissions.chamelaion.client import ChamelaionClient
from submissions.chamelaion.multipart import MultipartStream
from submissions.jobs import services as job_services
from submissions.models import RateBudget, Submission
from submissions.outbox import ratelimit
from submissions.outbox import worker as outbox
from submissions.sandbox import DEMO_TOKEN, SandboxServer
from submissions.uploads import services as upload_services
from submissions.uploads.files import (
    LimitedTemporaryFileUploadHandler,
    describe_size,
    oversized_uploads,
)
from tests.factories import make_submission

pytestmark = pytest.mark.django_db
State = Submission.State

UPLOAD = reverse("submissions:upload")
MEDIA = Path(sys.modules[SandboxServer.__module__].__file__).parent / "media"
SAMPLE_MP4, SAMPLE_WAV, SAMPLE_MP3 = MEDIA / "sample.mp4", MEDIA / "sample.wav", MEDIA / "sample.mp3"
MB = 1024 * 1024
FIELDS = {"target_language": "de", "title": "Episode 1 (German)", "reference_id": ""}


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file())


def stored_uploads(disk: Path) -> list[Path]:
    return files_under(disk / "media")


def temporary_files(disk: Path) -> list[Path]:
    return files_under(disk / "tmp")


def post_upload(client, *, video=SAMPLE_MP4, audio=SAMPLE_WAV, follow=False, **changes):
    """The form as a browser posts it; `video`/`audio` are sample paths, ready files, or None (left out)."""
    data = {**FIELDS, **changes}
    for name, value in (("video", video), ("audio", audio)):
        if isinstance(value, Path):
            value = SimpleUploadedFile(value.name, value.read_bytes())
        if value is not None:
            data[name] = value
    return client.post(UPLOAD, data, follow=follow)


def only_submission() -> Submission:
    (submission,) = Submission.objects.all()
    return submission


def uploaded_inputs(sandbox, job_id: str) -> tuple[str, str]:
    inputs = sandbox.job_inputs(job_id)
    return inputs["video_url"], inputs["audio_url"]


# --- The page ----------------------------------------------------------------------------------------


def test_the_upload_page_needs_a_login(client, disk, sandbox):
    assert client.get(UPLOAD)["Location"].startswith(reverse("login"))
    response = post_upload(client)
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert Submission.objects.count() == 0 and sandbox.jobs() == []
    assert stored_uploads(disk) == [] and temporary_files(disk) == []


def test_the_upload_page_has_the_form(logged_in):
    page = logged_in.get(UPLOAD).content.decode()
    assert 'enctype="multipart/form-data"' in page
    for name in ("video", "audio", "target_language", "title", "reference_id", "disable_active_speaker_detection"):
        assert f'name="{name}"' in page
    assert "An MP4 video, at most 200 MB." in page
    assert 'accept=".mp4,video/mp4"' in page


def test_the_default_limit_and_handlers():
    assert django_settings.UPLOAD_MAX_BYTES == 200 * MB
    # Only the temporary-file handler: no upload is ever held in memory.
    assert django_settings.FILE_UPLOAD_HANDLERS == ["submissions.uploads.files.LimitedTemporaryFileUploadHandler"]


# --- Sent ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("audio", [SAMPLE_WAV, SAMPLE_MP3], ids=["wav", "mp3"])
def test_an_upload_is_sent_and_its_files_deleted(logged_in, user, sandbox, disk, audio):
    response = post_upload(logged_in, audio=audio, reference_id="ep1-de", disable_active_speaker_detection="on")
    submission = only_submission()
    assert response.status_code == 302 and response["Location"] == submission.get_absolute_url()

    (job,) = sandbox.jobs()
    assert uploaded_inputs(sandbox, job["id"]) == ("upload:sample.mp4", f"upload:{audio.name}")
    assert sandbox.job_inputs(job["id"])["disable_active_speaker_detection"] is True
    assert sandbox.stats()["uploads"] == 1
    assert (submission.request_id, submission.reference_id) == (job["id"], "ep1-de")
    assert submission.state == State.QUEUED and submission.created_by == user
    assert (submission.target_language, submission.title, submission.video_url) == ("de", "Episode 1 (German)", "")
    assert not submission.video_upload and not submission.audio_upload
    assert stored_uploads(disk) == [] and temporary_files(disk) == []

    detail = logged_in.get(response["Location"]).content.decode()
    assert job["id"] in detail and "Sent to Chamelaion." in detail
    assert "Episode 1 (German)" in logged_in.get(reverse("submissions:history")).content.decode()


def test_a_long_file_name_is_shortened_to_fit(logged_in, sandbox, disk):
    long_name = "Episode 1 " + "x" * 180 + ".mp4"
    post_upload(logged_in, video=SimpleUploadedFile(long_name, SAMPLE_MP4.read_bytes()))
    (job,) = sandbox.jobs()
    video_url, _ = uploaded_inputs(sandbox, job["id"])
    assert video_url.startswith("upload:Episode_1_xxx") and video_url.endswith(".mp4")
    assert only_submission().request_id == job["id"] and stored_uploads(disk) == []


def test_a_refused_send_keeps_the_files_for_send_again(logged_in, sandbox, disk):
    sandbox.faults.script = ["400"]
    page = post_upload(logged_in, follow=True).content.decode()
    submission = only_submission()
    assert "Chamelaion refused the request as invalid" in page and "Send again" in page
    assert submission.state == State.SEND_FAILED and len(stored_uploads(disk)) == 2

    logged_in.post(reverse("submissions:send_again", args=[submission.pk]))
    (job,) = sandbox.jobs()
    submission.refresh_from_db()
    assert submission.request_id == job["id"]
    assert uploaded_inputs(sandbox, job["id"]) == ("upload:sample.mp4", "upload:sample.wav")
    assert stored_uploads(disk) == []


# --- Refused: nothing saved, nothing left on disk ------------------------------------------------------


def text_named(name: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, b"Just some notes about the episode, not a video.\n")


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"video": text_named("episode-1.mp4")}, "This file is not an MP4 video (it looks like plain text)."),
        ({"video": SAMPLE_WAV}, "This file is not an MP4 video (it looks like a WAV audio file)."),
        ({"video": SAMPLE_MP3}, "This file is not an MP4 video (it looks like an MP3 audio file)."),
        (
            {"audio": SimpleUploadedFile("track.wav", SAMPLE_MP4.read_bytes())},
            "This file is not a WAV or MP3 audio file (it looks like an MP4 video).",
        ),
        (
            {"audio": SimpleUploadedFile("track.mp3", b"%PDF-1.7\n" + bytes(100))},
            "This file is not a WAV or MP3 audio file (it looks like a PDF document).",
        ),
        (
            # An AAC stream: a frame sync like MP3's, but not MP3.
            {"audio": SimpleUploadedFile("track.mp3", b"\xff\xf1\x50\x80" + bytes(100))},
            "This file is not a WAV or MP3 audio file (DubDash does not recognise its content).",
        ),
        ({"audio": SimpleUploadedFile("track.wav", b"")}, "The submitted file is empty."),
        ({"video": None}, "This field is required."),
        ({"audio": None}, "This field is required."),
    ],
    ids=[
        "text-as-mp4", "wav-as-video", "mp3-as-video", "mp4-as-audio", "pdf-as-audio", "aac-as-mp3", "empty", "no-video",
        "no-audio",
    ],
)
def test_a_wrong_file_gets_a_clear_field_error_and_leaves_nothing_behind(logged_in, sandbox, disk, files, message):
    response = post_upload(logged_in, **files)
    page = response.content.decode()
    assert response.status_code == 200
    assert message in page and "Nothing was sent" in page
    assert 'value="Episode 1 (German)"' in page  # what was typed is kept
    assert Submission.objects.count() == 0 and sandbox.jobs() == []
    assert stored_uploads(disk) == [] and temporary_files(disk) == []


def test_a_file_over_the_limit_is_refused_with_its_size(logged_in, sandbox, disk, settings):
    settings.UPLOAD_MAX_BYTES = 16 * 1024
    response = post_upload(logged_in)  # a 28,685-byte video and a 48,078-byte WAV
    page = response.content.decode()
    assert response.status_code == 200
    assert "The video is 28.1 KB; the limit is 16 KB." in page
    assert "The audio file is 47 KB; the limit is 16 KB." in page
    assert "This field is required." not in page and "(optional)</span>" not in page.split("Target language")[0]
    assert Submission.objects.count() == 0 and sandbox.jobs() == []
    assert stored_uploads(disk) == [] and temporary_files(disk) == []


def test_only_the_file_over_the_limit_is_refused(logged_in, sandbox, disk, settings):
    settings.UPLOAD_MAX_BYTES = 16 * 1024
    page = post_upload(logged_in, audio=SAMPLE_MP3).content.decode()  # the MP3 is 6,451 bytes
    assert "The video is 28.1 KB; the limit is 16 KB." in page
    assert page.count('class="field-error"') == 1
    assert Submission.objects.count() == 0 and stored_uploads(disk) == [] and temporary_files(disk) == []


def test_the_handler_stops_storing_a_file_the_moment_it_passes_the_limit(settings, disk):
    settings.UPLOAD_MAX_BYTES = 100 * 1024
    request = HttpRequest()
    handler = LimitedTemporaryFileUploadHandler(request)
    handler.new_file("video", "big.mp4", "video/mp4", None)
    chunk = bytes(64 * 1024)
    handler.receive_data_chunk(chunk, 0)
    handler.file.flush()
    assert [p.stat().st_size for p in temporary_files(disk)] == [64 * 1024]

    handler.receive_data_chunk(chunk, 64 * 1024)  # now 128 KB: past the limit
    assert temporary_files(disk) == []  # the partial file is gone at once, not at the end
    for n in range(2, 10):
        assert handler.receive_data_chunk(chunk, n * 64 * 1024) is None  # counted, never stored
    assert temporary_files(disk) == []
    assert handler.file_complete(10 * 64 * 1024) is None
    assert oversized_uploads(request) == {"video": 640 * 1024}


def test_a_reference_id_already_used_is_refused_and_nothing_kept(logged_in, user, sandbox, disk):
    make_submission(user, reference_id="ep-7")
    page = post_upload(logged_in, reference_id="ep-7").content.decode()
    assert "Another submission already uses this reference id" in page
    assert Submission.objects.count() == 1 and sandbox.jobs() == []
    assert stored_uploads(disk) == [] and temporary_files(disk) == []


def test_when_the_row_cannot_be_saved_the_stored_files_are_deleted(user, disk):
    """Two people picking the same reference id at the same moment: the form's check passed for both."""
    make_submission(user, reference_id="ep-7")
    with pytest.raises(job_services.ReferenceIdTaken):
        upload_services.create_upload_submission(
            user=user,
            video=SimpleUploadedFile("v.mp4", SAMPLE_MP4.read_bytes()),
            audio=SimpleUploadedFile("a.wav", SAMPLE_WAV.read_bytes()),
            reference_id="ep-7",
            title="race",
        )
    assert Submission.objects.count() == 1 and stored_uploads(disk) == []


# --- Waiting: files kept until the worker sends the job --------------------------------------------------


def test_after_a_500_the_job_waits_with_its_files_and_the_worker_sends_them(logged_in, sandbox, disk):
    sandbox.faults.script = ["500"]
    page = post_upload(logged_in, follow=True).content.decode()
    submission = only_submission()
    assert "Saved, not sent yet." in page and "Chamelaion had an internal problem" in page
    assert submission.state == State.PENDING and submission.send_outcome_unknown
    assert sandbox.jobs() == []
    kept = stored_uploads(disk)
    assert [p.name for p in kept] == ["sample.mp4", "sample.wav"] and temporary_files(disk) == []
    assert kept[0].read_bytes() == SAMPLE_MP4.read_bytes()

    Submission.objects.update(next_attempt_at=timezone.now())
    time.sleep(0.25)  # past the (test-sized) settle time
    assert outbox.send_due(seconds=1, wait_for_budget=False) == 1
    (job,) = sandbox.jobs()
    submission.refresh_from_db()
    assert submission.request_id == job["id"] and submission.state == State.QUEUED
    assert uploaded_inputs(sandbox, job["id"]) == ("upload:sample.mp4", "upload:sample.wav")
    assert stored_uploads(disk) == [] and not submission.video_upload


def test_with_the_rate_budget_full_the_worker_sends_the_files_in_its_turn(logged_in, sandbox, disk):
    ratelimit.hold_off(60)
    page = post_upload(logged_in, follow=True).content.decode()
    submission = only_submission()
    assert "Saved and waiting to send" in page
    assert submission.state == State.PENDING and sandbox.jobs() == []
    assert len(stored_uploads(disk)) == 2

    RateBudget.objects.update(theoretical_arrival=timezone.now())  # the minute has passed
    assert outbox.send_due(seconds=1, wait_for_budget=False) == 1
    (job,) = sandbox.jobs()
    submission.refresh_from_db()
    assert submission.request_id == job["id"]
    assert stored_uploads(disk) == []


def test_teammates_see_an_upload_but_only_its_owner_sends_it_again(client, user, other_user, sandbox, disk):
    client.force_login(user)
    sandbox.faults.script = ["500"]
    post_upload(client, title="Maria upload 1")
    mine = only_submission()

    client.force_login(other_user)
    assert client.get(mine.get_absolute_url()).status_code == 200
    assert client.post(reverse("submissions:send_again", args=[mine.pk])).status_code == 403
    assert "Maria upload 1" not in client.get(reverse("submissions:history")).content.decode()  # "Mine"


# --- The streaming encoder -----------------------------------------------------------------------------


def test_the_encoders_length_is_exactly_the_bytes_it_yields_and_parses_back():
    video = io.BytesIO(b"not this" + SAMPLE_MP4.read_bytes())
    video.seek(8)  # sent from where the file is, like requests does
    audio = io.BytesIO(SAMPLE_WAV.read_bytes())
    stream = MultipartStream(
        fields={"reference_id": "épisode-1", "disable_active_speaker_detection": "true"},
        files=[("video", 'cut "final"\r\n.mp4', video), ("audio", "track.wav", audio)],
        chunk_size=4096,
    )
    chunks = list(stream)
    assert sum(len(chunk) for chunk in chunks) == len(stream)
    assert max(len(chunk) for chunk in chunks) <= 4096
    body = b"".join(chunks)
    assert b"".join(stream) == body  # iterable again, from the same places
    assert b'filename="cut %22final%22%0D%0A.mp4"' in body and b"Content-Type: video/mp4" in body

    # Django's own multipart parser reads back every field and every byte.
    meta = {"CONTENT_TYPE": stream.content_type, "CONTENT_LENGTH": str(len(stream))}
    handlers = [MemoryFileUploadHandler()]
    post, files = MultiPartParser(meta, io.BytesIO(body), handlers).parse()
    assert post.dict() == {"reference_id": "épisode-1", "disable_active_speaker_detection": "true"}
    assert files["video"].read() == SAMPLE_MP4.read_bytes()
    assert files["audio"].read() == SAMPLE_WAV.read_bytes()


def test_a_file_that_shrinks_while_being_sent_fails_instead_of_stalling(tmp_path):
    path = tmp_path / "v.mp4"
    path.write_bytes(SAMPLE_MP4.read_bytes())
    with path.open("rb") as video, SAMPLE_WAV.open("rb") as audio:
        stream = MultipartStream(fields={}, files=[("video", "v.mp4", video), ("audio", "a.wav", audio)])
        path.write_bytes(b"short")
        with pytest.raises(OSError, match="shrank"):
            list(stream)


@pytest.fixture
def sandbox_elsewhere():
    """A sandbox in its own process: the in-process one reads whole request bodies into memory, which
    tracemalloc would count against the client."""
    script = Path(sys.modules[SandboxServer.__module__].__file__)
    process = subprocess.Popen(
        [sys.executable, str(script), "--port", "0", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        match = re.search(r"http://127\.0\.0\.1:(\d+)", process.stdout.readline())
        assert match, "the sandbox did not start"
        yield f"http://127.0.0.1:{match.group(1)}/api"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_big_upload_is_streamed_with_flat_memory(tmp_path, sandbox_elsewhere):
    big = tmp_path / "big.mp4"
    with big.open("wb") as file:
        file.write(b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom")
        file.truncate(50 * MB)  # the rest is zeros
    client = ChamelaionClient(base_url=sandbox_elsewhere, api_key=DEMO_TOKEN, read_timeout=60)
    with big.open("rb") as video, SAMPLE_WAV.open("rb") as audio:
        tracemalloc.start()
        try:
            request_id = client.generate_with_media(
                video=video, audio=audio, reference_id="big-1", video_name="big.mp4", audio_name="sample.wav"
            )
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    print(f"peak Python memory while sending a 50 MB upload: {describe_size(peak)}")
    assert peak < 10 * MB
    assert client.get_request("big-1").id == request_id


def test_large_uploads_are_left_to_the_worker_not_the_web_request(logged_in, sandbox, disk, monkeypatch):

    monkeypatch.setattr(upload_services, "SEND_IN_REQUEST_MAX_BYTES", 1024)  # the samples are bigger than this
    response = post_upload(logged_in, follow=True)
    submission = only_submission()
    assert submission.state == Submission.State.PENDING and sandbox.jobs() == []
    assert "Saved and waiting to send" in response.content.decode()
    assert len(stored_uploads(disk)) == 2

    assert outbox.send_due(seconds=2, wait_for_budget=False) == 1
    submission.refresh_from_db()
    assert submission.request_id == sandbox.jobs()[0]["id"] and stored_uploads(disk) == []


def test_the_service_sends_files_up_to_the_size_limit_from_the_request_and_leaves_larger_ones(user, sandbox, disk, monkeypatch):
    """The send-now-or-leave-to-the-worker decision is the service's, measured on both files together."""
    video, audio = SAMPLE_MP4.read_bytes(), SAMPLE_WAV.read_bytes()

    def submit(title):
        return upload_services.submit_upload(
            user=user, video=SimpleUploadedFile("v.mp4", video), audio=SimpleUploadedFile("a.wav", audio), title=title
        )

    monkeypatch.setattr(upload_services, "SEND_IN_REQUEST_MAX_BYTES", len(video) + len(audio))
    at_the_limit = submit("at the limit")
    assert at_the_limit.request_id and at_the_limit.state == State.QUEUED

    monkeypatch.setattr(upload_services, "SEND_IN_REQUEST_MAX_BYTES", len(video) + len(audio) - 1)
    one_byte_over = submit("one byte over")
    assert one_byte_over.state == State.PENDING and one_byte_over.request_id is None
    assert [job["id"] for job in sandbox.jobs()] == [at_the_limit.request_id]
