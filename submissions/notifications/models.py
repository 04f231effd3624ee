"""An e-mail to send: an outbox task (OutboxTask), written in the transaction of the event it tells about and
sent by the worker with retries. `event` is unique: an event seen twice (two workers seeing a batch finish
at the same moment) writes one message."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models

from submissions.outbox.models import OutboxTask


class OutgoingEmail(OutboxTask):
    # Above the longest an SMTP exchange may take (EMAIL_TIMEOUT): only then is a "running" message one whose
    # worker died, and it is sent again (the same Message-ID, so a mail client shows it once).
    STUCK_AFTER = timedelta(minutes=5)

    LABELS: dict[str, str] = {
        OutboxTask.State.WAITING: "Waiting to send",
        OutboxTask.State.RUNNING: "Sending",
        OutboxTask.State.DONE: "Sent",
        OutboxTask.State.FAILED: "Could not send",
    }

    event = models.CharField(max_length=200, unique=True, help_text="What it tells, and to whom: written once.")
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    to_address = models.EmailField()
    subject = models.CharField(max_length=300)
    text_body = models.TextField()
    html_body = models.TextField()
    message_id = models.CharField(max_length=200, help_text="The same on every attempt.")
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "outgoing e-mail"
        verbose_name_plural = "mail outbox"
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="outgoingemail_due")]

    def __str__(self) -> str:
        return f"{self.subject} → {self.to_address}"

    @property
    def label(self) -> str:
        return self.LABELS.get(self.state, self.state)
