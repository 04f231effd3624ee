"""New takes with files: the video and the audio are both links or both files (Chamelaion takes one or the
other); the upload page's checks of content and size apply; a file the earlier take still keeps is copied,
never shared; nothing is left on disk by a take that was not saved."""

import html

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage
from django.core.files.uploadedfile import SimpleUploadedFile

from submissions.models import MonthlyLimit, Submission
from submissions.outbox import ratelimit
from submissions.takes import services as take_services
from tests.factories import make_submission
from tests.takes.conftest import NEW_AUDIO, SAMPLE_MP4, SAMPLE_WAV, form_data, new_take_url, sample

pytestmark = pytest.mark.django_db
State = Submission.State


def stored(disk) -> list[str]:
    return sorted(path.name for path in (disk / "media").rglob("*") if path.is_file())


@pytest.fixture
def unsent_upload(user, disk) -> Submission:
    """Take 1, made from uploaded files and refused by Chamelaion: its files are still kept (for "Send
    again")."""
    job = make_submission(
        user, video_url="", audio_url="", state=State.SEND_FAILED, last_error="refused", target_language="it", title="Ep 2"
    )
    job.video_upload.save("ep2.mp4", ContentFile(SAMPLE_MP4.read_bytes()))
    job.audio_upload.save("ep2-it.wav", ContentFile(SAMPLE_WAV.read_bytes()))
    return job


def test_the_audio_replaced_by_an_upload_sends_both_files(logged_in, take_1, fake_chamelaion, disk):
    data = form_data(take_1, video_url="", audio_url="", video=sample(SAMPLE_MP4), audio=sample(SAMPLE_WAV, "de-v2.wav"))
    response = logged_in.post(new_take_url(take_1), data)
    take_2 = Submission.objects.get(take=2)
    assert response.status_code == 302 and response["Location"] == take_2.get_absolute_url()
    assert (take_2.retry_of, take_2.first_take, take_2.batch_id) == (take_1, take_1, take_1.batch_id)
    assert take_2.target_language == "de"
    assert take_2.video_url == "" and take_2.inputs_fingerprint == ""
    # Sent with generate-with-media, then its files deleted as any upload's.
    assert take_2.request_id and fake_chamelaion.stats()["uploads"] == 1
    assert fake_chamelaion.find(take_2.request_id).audio_url.startswith("upload:de-v2")
    assert not take_2.video_upload and stored(disk) == []


def test_a_kept_video_file_is_copied_for_the_new_take(logged_in, unsent_upload, fake_chamelaion, disk):
    page = html.unescape(logged_in.get(new_take_url(unsent_upload)).content.decode())
    assert "Take 1's video file" in page and "ep2.mp4" in page and 'id="video-gone"' not in page

    ratelimit.hold_off(60)  # waiting to send: its files stay on disk to be looked at
    response = logged_in.post(new_take_url(unsent_upload), form_data(unsent_upload, audio=sample(SAMPLE_WAV, "ep2-it-v2.wav")))
    assert response.status_code == 302
    take_2 = Submission.objects.get(take=2)
    assert take_2.state == State.PENDING and take_2.retry_of == unsent_upload and take_2.target_language == "it"
    assert take_2.video_upload.name != unsent_upload.video_upload.name  # its own copy: each take deletes its own
    assert take_2.video_upload.read() == unsent_upload.video_upload.read() == SAMPLE_MP4.read_bytes()
    assert take_2.audio_upload.name.rsplit("/", 1)[-1].startswith("ep2-it-v2")
    assert len(stored(disk)) == 4


def test_only_the_options_changed_reuses_both_kept_files(logged_in, unsent_upload, fake_chamelaion, disk):
    ratelimit.hold_off(60)
    logged_in.post(new_take_url(unsent_upload), form_data(unsent_upload, disable_active_speaker_detection="on"))
    take_2 = Submission.objects.get(take=2)
    assert take_2.disable_active_speaker_detection and take_2.video_upload and take_2.audio_upload


def test_a_kept_file_deleted_meanwhile_is_asked_for_again(logged_in, unsent_upload, fake_chamelaion, disk):
    unsent_upload.video_upload.storage.delete(unsent_upload.video_upload.name)  # cleaned up since the page was loaded
    response = logged_in.post(new_take_url(unsent_upload), form_data(unsent_upload, title="Typed"))
    page = html.unescape(response.content.decode())
    assert response.status_code == 200 and Submission.objects.count() == 1
    assert "The video file of take 1 is no longer kept by DubDash: give it again." in page and 'value="Typed"' in page
    assert stored(disk) == ["ep2-it.wav"]  # nothing of the take left behind


def test_a_kept_file_deleted_just_before_its_size_is_read_is_asked_for_again(
    logged_in, unsent_upload, fake_chamelaion, disk, monkeypatch
):
    """The clean-up deletes the kept video after the form found it, just as the service reads its size (to
    know whether the take can be sent within the request): the form asks for it again, never a 500."""
    kept = unsent_upload.video_upload.name
    real_size = FileSystemStorage.size  # where uploads are kept (STORAGES["default"])

    def size(self, name):
        if name == kept and self.exists(name):
            self.delete(name)  # uploads.cleanup, between the form's check and this read
        return real_size(self, name)

    monkeypatch.setattr(FileSystemStorage, "size", size)
    response = logged_in.post(new_take_url(unsent_upload), form_data(unsent_upload, title="Typed"))
    page = html.unescape(response.content.decode())
    assert response.status_code == 200 and Submission.objects.count() == 1
    assert "The video file of take 1 is no longer kept by DubDash: give it again." in page and 'value="Typed"' in page
    assert stored(disk) == ["ep2-it.wav"] and fake_chamelaion.jobs() == []  # nothing saved, copied or sent


def test_a_kept_file_deleted_once_copied_does_not_stop_the_take(logged_in, unsent_upload, fake_chamelaion, disk, monkeypatch):
    """Deleted just after the new take copied it: the take has its own copy, and is saved and sent with it."""
    real_save = take_services.save_take_with_files

    def save_then_clean_up(**fields):
        take = real_save(**fields)
        unsent_upload.video_upload.storage.delete(unsent_upload.video_upload.name)  # uploads.cleanup, meanwhile
        return take

    monkeypatch.setattr(take_services, "save_take_with_files", save_then_clean_up)
    response = logged_in.post(new_take_url(unsent_upload), form_data(unsent_upload))
    take_2 = Submission.objects.get(take=2)
    assert response.status_code == 302 and response["Location"] == take_2.get_absolute_url()
    assert take_2.request_id and fake_chamelaion.stats()["uploads"] == 1  # sent within the request, as small files are
    assert fake_chamelaion.find(take_2.request_id).video_url.startswith("upload:ep2")


def test_a_link_and_a_file_together_are_refused(logged_in, take_1, disk):
    response = logged_in.post(new_take_url(take_1), form_data(take_1, audio=sample(SAMPLE_WAV)))
    page = html.unescape(response.content.decode())
    assert "Give the audio track as a link or as a file, not both" in page
    assert Submission.objects.count() == 1 and stored(disk) == []


def test_one_link_and_one_file_are_refused(logged_in, take_1, disk):
    response = logged_in.post(new_take_url(take_1), form_data(take_1, audio_url="", audio=sample(SAMPLE_WAV), title="Kept"))
    page = html.unescape(response.content.decode())
    assert "either both as links or both as files, not one of each" in page and 'value="Kept"' in page
    assert Submission.objects.count() == 1 and stored(disk) == []


def test_the_upload_pages_content_check_applies(logged_in, take_1, disk):
    text = SimpleUploadedFile("notes.wav", b"These are my notes, not audio at all.\n")
    data = form_data(take_1, video_url="", audio_url="", video=sample(SAMPLE_MP4), audio=text)
    page = html.unescape(logged_in.post(new_take_url(take_1), data).content.decode())
    assert "This file is not a WAV or MP3 audio file (it looks like plain text)." in page
    assert "has to be chosen again: a browser does not keep files in a form" in page
    assert Submission.objects.count() == 1 and stored(disk) == []


def test_the_upload_size_limit_applies(logged_in, take_1, disk, settings):
    settings.UPLOAD_MAX_BYTES = 1024
    data = form_data(take_1, video_url="", audio_url="", video=sample(SAMPLE_MP4), audio=sample(SAMPLE_WAV))
    page = html.unescape(logged_in.post(new_take_url(take_1), data).content.decode())
    assert "; the limit is 1 KB." in page and "The audio file is" in page and "The video is" in page
    assert Submission.objects.count() == 1 and stored(disk) == []


def test_the_monthly_limit_stores_no_file(logged_in, user, take_1, fake_chamelaion, disk):
    MonthlyLimit.objects.create(user=user, jobs_per_month=1)
    data = form_data(take_1, video_url="", audio_url="", video=sample(SAMPLE_MP4), audio=sample(SAMPLE_WAV))
    page = html.unescape(logged_in.post(new_take_url(take_1), data).content.decode())
    assert "Monthly limit reached" in page and Submission.objects.count() == 1 and stored(disk) == []


def test_a_sent_upload_taken_again_with_links(logged_in, user, fake_chamelaion):
    sent_upload = make_submission(user, video_url="", audio_url="", state=State.COMPLETED, target_language="fr")
    data = {"video_url": "https://cdn.example.com/ep-3.mp4", "audio_url": NEW_AUDIO}
    assert logged_in.post(new_take_url(sent_upload), data).status_code == 302
    take_2 = Submission.objects.get(take=2)
    assert take_2.video_url == "https://cdn.example.com/ep-3.mp4" and take_2.target_language == "fr" and take_2.request_id
