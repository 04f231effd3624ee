"""The outbox's row for background work other than sending jobs (a job is its own outbox row: see
submissions.outbox.sending). Work is written first, in the transaction that makes it necessary, then done by
the worker: claimed with a conditional UPDATE so one process does it, retried with backoff, given up after
a number of attempts, and claimed again if the process doing it died (submissions.outbox.tasks)."""

from __future__ import annotations

from datetime import timedelta

from django.db import models
from django.utils import timezone


class OutboxTask(models.Model):
    class State(models.TextChoices):
        WAITING = "waiting", "Waiting"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    # A RUNNING row whose attempt began longer ago than this belongs to a process that died. Subclasses set
    # it above the longest an attempt can take (each bounds its own attempts).
    STUCK_AFTER = timedelta(minutes=30)

    state = models.CharField(max_length=10, choices=State.choices, default=State.WAITING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, default=timezone.now)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, help_text="Why the last attempt failed, in plain words.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True
