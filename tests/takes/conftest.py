"""Shared by the takes tests: a finished job to make new takes of, and the form as a browser posts it.
Where stored files go is the suite's `disk` fixture (tests/conftest.py)."""

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from submissions.models import Batch, Submission
from submissions.sandbox.media import MEDIA_DIR
from tests.factories import make_submission

SAMPLE_MP4, SAMPLE_WAV = MEDIA_DIR / "sample.mp4", MEDIA_DIR / "sample.wav"
VIDEO = "https://cdn.example.com/episode-1.mp4"
AUDIO = "https://cdn.example.com/episode-1-de.wav"
NEW_AUDIO = "https://cdn.example.com/episode-1-de-v2.wav"


@pytest.fixture
def take_1(user) -> Submission:
    """Take 1 of the German track of a batch: completed."""
    batch = Batch.objects.create(name="Episode 1", created_by=user)
    return make_submission(
        user,
        batch=batch,
        title="Episode 1 (German)",
        video_url=VIDEO,
        audio_url=AUDIO,
        target_language="de",
        disable_active_speaker_detection=True,
        state=Submission.State.COMPLETED,
        request_id="req-take-1",
    )


def new_take_url(job: Submission) -> str:
    return reverse("submissions:new_take", args=[job.pk])


def sample(path: Path, name: str | None = None) -> SimpleUploadedFile:
    return SimpleUploadedFile(name or path.name, path.read_bytes())


def form_data(job: Submission, **changes) -> dict:
    """The form as the page pre-fills it for `job`, with `changes` (a value of None leaves a field out)."""
    data = {
        "title": job.title,
        "video_url": job.video_url,
        "audio_url": job.audio_url,
        "disable_active_speaker_detection": "on" if job.disable_active_speaker_detection else "",
        "reference_id": "",
        **changes,
    }
    return {name: value for name, value in data.items() if value is not None}


def takes(job: Submission) -> list[tuple[int, int | None]]:
    """(take, the take it replaced) for every take of the job's language, oldest first."""
    root = job.takes_root_id
    rows = Submission.objects.filter(pk=root) | Submission.objects.filter(first_take_id=root)
    return [(row.take, row.retry_of.take if row.retry_of else None) for row in rows.select_related("retry_of").order_by("take")]
