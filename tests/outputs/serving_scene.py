"""The scene the serving tests share (test_serving.py, test_serving_ranges.py): a completed job, its copy
kept in the outputs storage as the worker keeps it, and asking DubDash for its video."""

from __future__ import annotations

import hashlib

from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils import timezone

from submissions.models import OutputCopy, Submission
from submissions.outputs.storage import outputs_storage
from submissions.sandbox.media import MEDIA_DIR
from tests.factories import make_submission

SAMPLE = (MEDIA_DIR / "sample.mp4").read_bytes()
SIZE = len(SAMPLE)
CHAMELAION_URL = "https://cdn.chamelaion.example/outputs/job-1.mp4"
State = OutputCopy.State


def completed(user, **fields) -> Submission:
    fields = {"state": Submission.State.COMPLETED, "output_url": CHAMELAION_URL, "finished_at": timezone.now(), **fields}
    return make_submission(user, **fields)


def keep(job: Submission, data: bytes = SAMPLE, **fields) -> OutputCopy:
    """A kept copy, written into the outputs storage as the worker writes it."""
    name = outputs_storage().save(f"outputs/tests/{job.reference_id}.mp4", ContentFile(data))
    defaults = {"state": State.DONE, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "kept_at": timezone.now()}
    return OutputCopy.objects.create(submission=job, file=name, **{**defaults, **fields})


def url_of(job: Submission, **query: str) -> str:
    url = reverse("submissions:output", args=[job.pk])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def get(client, user, job, **headers):
    client.force_login(user)
    return client.get(url_of(job), headers=headers)
