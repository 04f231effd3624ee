"""A batch from a spreadsheet: rows checked with the single-job form's rules, stored, and sent exactly once."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.shortcuts import get_object_or_404
from django.utils import timezone

from submissions.batches import services as batch_services
from submissions.batches.csv_parse import (
    CsvFileError,
    plural,
    read_table,
)
from submissions.batches.csv_rows import check_rows
from submissions.jobs import services as job_services
from submissions.models import Batch, CsvUpload
from submissions.outbox import sending


class AlreadySent(Exception):
    def __init__(self, batch: Batch | None):
        super().__init__("already sent")
        self.batch = batch


class NotSendable(Exception):
    """The upload cannot be sent as it is; the message says why. Nothing was created."""


def store_upload(*, user: Any, filename: str, content: str, batch_name: str = "") -> CsvUpload:
    return CsvUpload.objects.create(
        created_by=user, filename=filename[:255], content=content, batch_name=batch_name[:200]
    )


def get_upload(*, user: Any, pk: int) -> CsvUpload:
    """Only the uploader sees an upload: anybody else gets a 404, as if it did not exist."""
    return get_object_or_404(CsvUpload.objects.select_related("batch"), pk=pk, created_by=user)


def batch_name_of(upload: CsvUpload) -> str:
    return (upload.batch_name or upload.filename)[:200]


def send_upload(*, upload: CsvUpload) -> Batch:
    """Create the upload's batch (then send what the rate budget allows now), exactly once.

    Marking the upload used and saving the batch happen in one transaction: a double click finds it used
    (AlreadySent), and a crash in between leaves neither. The rows are checked again first, since a
    reference id may have been taken since the preview (NotSendable, and nothing is saved)."""
    with transaction.atomic():
        if not CsvUpload.objects.filter(pk=upload.pk, used_at__isnull=True).update(used_at=timezone.now()):
            upload.refresh_from_db()
            raise AlreadySent(upload.batch)
        try:
            rows = check_rows(read_table(upload.content))
        except CsvFileError as exc:
            raise NotSendable(str(exc)) from exc
        invalid = [row for row in rows if row.errors]
        if invalid:
            raise NotSendable(
                f"Nothing was sent: {plural(len(invalid), 'row')} of this file "
                f"{'has' if len(invalid) == 1 else 'have'} errors (a reference id may have been used since the "
                "preview). Fix the file and upload it again."
            )
        try:
            batch, submissions = batch_services.save_batch(
                user=upload.created_by, name=batch_name_of(upload), rows=[row.job for row in rows if row.job is not None]
            )
        except job_services.ReferenceIdTaken as exc:  # taken between the check and the insert: nothing was saved
            raise NotSendable(
                "Nothing was sent: a reference id in this file was taken by another submission a moment ago. "
                "The rows below show which one."
            ) from exc
        CsvUpload.objects.filter(pk=upload.pk).update(batch=batch)
    sending.send_while_room(submissions)
    upload.refresh_from_db()
    return batch
