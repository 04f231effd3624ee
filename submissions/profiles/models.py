"""A member's own settings: their time zone and which e-mails they receive. A member without a row has the
defaults (TIME_ZONE, every e-mail that concerns them)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Profile(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    # An IANA zone name ("Europe/Madrid"); blank: the deployment's TIME_ZONE.
    time_zone = models.CharField(max_length=64, blank=True)
    mail_batch_finished = models.BooleanField("My batch has finished", default=True)
    mail_job_failed = models.BooleanField("My job failed or could not be sent", default=True)
    mail_changes_requested = models.BooleanField("A reviewer requested changes on my take", default=True)
    mail_ready_for_review = models.BooleanField("A batch is ready for review (reviewers)", default=True)
    mail_sending_paused = models.BooleanField("Sending is paused: key rejected or quota used up (team admins)", default=True)

    def __str__(self) -> str:
        return f"Profile of {self.user_id}"
