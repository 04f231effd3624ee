"""Uploaded files of jobs that will never be sent: deleted some days after the job ended "could not be sent"
or was cancelled (UPLOAD_KEEP_DAYS), so that they can still be sent again meanwhile. Run by the worker once
a day and by `manage.py clean_uploads`."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from submissions.models import Submission

logger = logging.getLogger(__name__)


@dataclass
class CleanUpReport:
    jobs: int = 0
    files: list[str] = field(default_factory=list)


def delete_unsent_uploads(*, older_than_days: int) -> CleanUpReport:
    """Delete the uploads of jobs that could not be sent or were cancelled, whose last attempt (or, never
    attempted, whose saving) is older than `older_than_days`; each file is logged."""
    before = timezone.now() - timedelta(days=older_than_days)
    ended = Q(last_attempt_at__lt=before) | Q(last_attempt_at__isnull=True, created_at__lt=before)
    report = CleanUpReport()
    # Not a job whose last attempt may have reached Chamelaion: Send again settles it by reference id first.
    stale = Submission.objects.filter(
        ended, outcome_unknown_since__isnull=True, state__in=[Submission.State.SEND_FAILED, Submission.State.CANCELLED]
    ).exclude(
        video_upload=""
    )
    for submission in stale.only("pk", "video_upload", "audio_upload"):
        names = [f.name for f in (submission.video_upload, submission.audio_upload) if f]
        # Someone may have pressed Send again since the list was read: the row lets go of its files only if
        # it still qualifies (one conditional UPDATE), and only then are they deleted. The row first, so no
        # row is ever left naming a file that is gone.
        if not stale.filter(pk=submission.pk).update(video_upload="", audio_upload=""):
            continue
        for name in names:
            submission.video_upload.storage.delete(name)
        report.jobs += 1
        report.files += names
        logger.info("Deleted the uploads of submission %s, never sent: %s", submission.pk, ", ".join(names))
    return report
