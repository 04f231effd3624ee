from datetime import timedelta

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone

REFERENCE_ID_MAX_LENGTH = 128
URL_MAX_LENGTH = 2048


def settle_time() -> timedelta:
    """How long a request that timed out may still be creating its job upstream. Until then, not finding
    the job by reference_id does not prove it will never exist."""
    return timedelta(seconds=settings.CHAMELAION_SETTLE_SECONDS)


def stuck_sending_time() -> timedelta:
    """A send still running after this long belongs to a process that died: a live one gives up after a
    lookup and a POST, each bounded by the timeouts."""
    return timedelta(seconds=2 * (settings.CHAMELAION_CONNECT_TIMEOUT + settings.CHAMELAION_READ_TIMEOUT) + 5)


reference_id_validator = RegexValidator(
    r"^[A-Za-z0-9._-]+$", "Use only letters, digits, dots, underscores and hyphens."
)


class Submission(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", "Waiting to send"
        SENDING = "sending", "Sending"
        SEND_FAILED = "send_failed", "Could not be sent"
        QUEUED = "queued", "Queued"
        PROCESSING = "processing", "Processing"
        # Chamelaion's status is a free string: a value DubDash does not know yet is still in flight.
        IN_FLIGHT = "in_flight", "In progress"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"

    UPSTREAM_IN_FLIGHT = frozenset({State.QUEUED, State.PROCESSING, State.IN_FLIGHT})
    FINISHED = frozenset({State.COMPLETED, State.FAILED})

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="submissions"
    )
    title = models.CharField(max_length=200, blank=True)
    video_url = models.URLField(max_length=URL_MAX_LENGTH)
    audio_url = models.URLField(max_length=URL_MAX_LENGTH)
    disable_active_speaker_detection = models.BooleanField(default=False)
    # Sent with every job so an ambiguous failure can be settled by looking the job up, never by resending.
    reference_id = models.CharField(
        max_length=REFERENCE_ID_MAX_LENGTH, unique=True, validators=[reference_id_validator]
    )
    target_language = models.CharField(max_length=15, blank=True)

    state = models.CharField(max_length=20, choices=State.choices, default=State.PENDING, db_index=True)
    send_attempts = models.PositiveIntegerField(default=0)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    # When a POST that may have created the job upstream was made without DubDash learning the result.
    # Until the job is found by reference_id (or proven absent), sending again could duplicate it.
    outcome_unknown_since = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, help_text="Why the last send failed, in plain words.")

    request_id = models.CharField(max_length=64, null=True, blank=True, unique=True)
    upstream_status = models.CharField(max_length=64, blank=True)
    upstream_created_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    output_url = models.URLField(max_length=URL_MAX_LENGTH, blank=True)
    upstream_error_message = models.TextField(blank=True)

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["created_by", "-created_at"], name="submission_owner_recent")]

    def __str__(self) -> str:
        return self.title or self.reference_id

    def get_absolute_url(self) -> str:
        return reverse("submissions:detail", args=[self.pk])

    @property
    def language_name(self) -> str:
        return dict(settings.DUBBING_LANGUAGES).get(self.target_language, self.target_language)

    @property
    def status_label(self) -> str:
        """What the badge says: for an unknown upstream status, the status itself."""
        if self.state == self.State.IN_FLIGHT and self.upstream_status:
            return self.upstream_status.capitalize()
        return self.get_state_display()

    @property
    def send_outcome_unknown(self) -> bool:
        return self.outcome_unknown_since is not None

    @property
    def is_stuck_sending(self) -> bool:
        return (
            self.state == self.State.SENDING
            and self.last_attempt_at is not None
            and timezone.now() - self.last_attempt_at > stuck_sending_time()
        )

    @property
    def can_send_again(self) -> bool:
        return self.state == self.State.SEND_FAILED or self.is_stuck_sending
