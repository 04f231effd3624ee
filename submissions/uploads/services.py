"""Saving a job whose inputs are local files, and deciding whether this request sends it or the worker does."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction

from submissions.core import activity, reference_ids
from submissions.jobs import services as job_services
from submissions.jobs.fingerprints import fingerprint_of
from submissions.models import Submission
from submissions.outbox import sending
from submissions.team import limits

# Larger uploads are left to the worker: relaying hundreds of megabytes could outlast the web server's
# request timeout, and nobody should wait on a spinner for it.
SEND_IN_REQUEST_MAX_BYTES = 20 * 1024 * 1024


def submit_upload(*, user: Any, video: Any, audio: Any, **fields: Any) -> Submission:
    """Save a job whose inputs are local files (create_upload_submission), then send it from this request
    if the files are small enough and the rate budget has room; otherwise the worker sends it. Whatever
    the API answers, the job and its files stay saved."""
    submission = create_upload_submission(user=user, video=video, audio=audio, **fields)
    if video.size + audio.size <= SEND_IN_REQUEST_MAX_BYTES:
        submission = sending.send_if_room(submission=submission)
    return submission


# --- Saving -----------------------------------------------------------------------------------------


def create_upload_submission(*, user: Any, video: Any, audio: Any, **fields: Any) -> Submission:
    """A submission whose inputs are local files, sent with generate-with-media: the files are stored in
    MEDIA_ROOT (a temporary upload is moved there, not copied) together with the row. If the row cannot
    be saved the stored files are deleted again, so a failure leaves nothing behind. `fields` are the
    create_submission fields other than the URLs."""
    reference_id = fields.pop("reference_id", "")
    submission = Submission(
        created_by=user,
        reference_id=reference_id or reference_ids.new_reference_id(),
        inputs_fingerprint=fingerprint_of(fields),  # blank: files have no URL to compare
        **fields,
    )
    with transaction.atomic():  # refuse before storing hundreds of megabytes
        limits.check_monthly_limit(user=user, adding=1)
    try:
        submission.video_upload.save(video.name, video, save=False)
        submission.audio_upload.save(audio.name, audio, save=False)
        with transaction.atomic():
            limits.check_monthly_limit(user=user, adding=1)
            submission.save(force_insert=True)
    except BaseException as exc:
        for stored in (submission.video_upload, submission.audio_upload):
            if stored:
                stored.delete(save=False)
        if isinstance(exc, IntegrityError):  # the same race create_submission guards against
            raise job_services.ReferenceIdTaken(reference_id) from exc
        raise
    activity.record(actor=user, verb=activity.Verb.SUBMITTED, submission=submission, details="Uploaded files")  # activity trail
    return submission
