"""A kept copy of a job's output: DubDash's own file of the finished video, made by the worker after the job
completes (Chamelaion documents no lifetime for its output_url). An outbox task (OutboxTask): written when
the job completes, then done by the worker with retries."""

from __future__ import annotations

from datetime import timedelta

from django.db import models

from submissions.outbox.models import OutboxTask
from submissions.outputs.storage import outputs_storage


def output_path(instance: OutputCopy, filename: str) -> str:
    # Named by the job's reference id (unique, URL-safe): never by its title, which is for downloads only.
    return f"outputs/{instance.created_at:%Y/%m}/{filename}"


class OutputCopy(OutboxTask):
    # Above the longest a copy may take (OUTPUT_COPY_MAX_SECONDS, at most 20 minutes): only then is a copy
    # still "running" one whose process died.
    STUCK_AFTER = timedelta(minutes=30)

    # What the pages say of each state.
    LABELS: dict[str, str] = {
        OutboxTask.State.WAITING: "Keeping a copy",
        OutboxTask.State.RUNNING: "Keeping a copy",
        OutboxTask.State.DONE: "Kept",
        OutboxTask.State.FAILED: "Could not keep a copy",
    }

    submission = models.OneToOneField("submissions.Submission", on_delete=models.CASCADE, related_name="output_copy")
    file = models.FileField(storage=outputs_storage, upload_to=output_path, max_length=300, blank=True)
    size = models.PositiveBigIntegerField(null=True, blank=True, help_text="Bytes.")
    sha256 = models.CharField(max_length=64, blank=True)
    # The ZIP format's checksum, recorded while copying as SHA-256 is: a batch's ZIP is then streamed at the
    # speed of reading the files, not of checksumming every byte again on every download.
    crc32 = models.PositiveBigIntegerField(null=True, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True, help_text="Read from the MP4's own header.")
    kept_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "kept output"
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="outputcopy_due")]

    def __str__(self) -> str:
        return f"Output of {self.submission_id}: {self.label}"

    @property
    def label(self) -> str:
        return self.LABELS.get(self.state, self.state)

    @property
    def is_kept(self) -> bool:
        return self.state == self.State.DONE and bool(self.file)

    @property
    def is_failed(self) -> bool:
        return self.state == self.State.FAILED

    @property
    def is_pending(self) -> bool:
        return self.state in (self.State.WAITING, self.State.RUNNING)
