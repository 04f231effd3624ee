import functools
import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.deconstruct import deconstructible

from submissions.core.text import refuse_control_characters

# Chamelaion's failure messages, said so that a producer knows what to do next.
FAILURE_EXPLANATIONS = {
    "video URL is not accessible": (
        "Chamelaion could not download the video. Check that the link is public (not behind a login or "
        "expired), then submit the job again."
    ),
    "audio URL is not accessible": (
        "Chamelaion could not download the audio track. Check that the link is public (not behind a login "
        "or expired), then submit the job again."
    ),
}

REFERENCE_ID_MAX_LENGTH = 128
URL_MAX_LENGTH = 2048


@functools.cache
def _language_names() -> dict[str, str]:
    return dict(settings.DUBBING_LANGUAGES)


@functools.cache
def _state_labels() -> dict[str, str]:
    return {state.value: str(state.label) for state in Submission.State}


def settle_time() -> timedelta:
    """How long a request that timed out may still be creating its job upstream. Until then, not finding
    the job by reference_id does not prove it will never exist."""
    return timedelta(seconds=settings.CHAMELAION_SETTLE_SECONDS)


def stuck_sending_time() -> timedelta:
    """A send still running after this long belongs to a process that died: a live one gives up after a
    lookup and a POST, each bounded by the timeouts."""
    return timedelta(seconds=2 * (settings.CHAMELAION_CONNECT_TIMEOUT + settings.CHAMELAION_READ_TIMEOUT) + 5)


def stuck_sending_before(now: datetime | None = None) -> datetime:
    """A send whose last attempt began before this moment is stuck (see stuck_sending)."""
    return (now or timezone.now()) - stuck_sending_time()


def stuck_sending(*, now: datetime | None = None) -> models.Q:
    """The one rule for a send left behind by a process that died: still SENDING, its last attempt begun
    longer than stuck_sending_time() ago. The outbox claims such a row again (and its selector finds it),
    and a person may send it again; Submission.is_stuck_sending is the same rule for one instance."""
    return models.Q(state=Submission.State.SENDING, last_attempt_at__lt=stuck_sending_before(now))


# The reference ids DubDash makes when nobody chooses one: random, so no job outside DubDash holds one.
GENERATED_REFERENCE_ID = re.compile(r"dubdash-[0-9a-f]{32}")


@deconstructible(path="submissions.models.ReferenceIdValidator")
class ReferenceIdValidator:
    """Letters, digits, dots, underscores and hyphens, and not dots alone. A job is looked up by its
    reference id in a URL path (after a lost answer, to never send it twice), and a path segment "." or
    ".." means "this folder" or "the folder above": the lookup would reach another address, miss the job,
    and DubDash would send it again."""

    characters = RegexValidator(r"^[A-Za-z0-9._-]+$", "Use only letters, digits, dots, underscores and hyphens.")
    only_dots_message = (
        "A reference id cannot be only dots (“.” or “..”): Chamelaion could not look the job up by it. "
        "Add a letter or a digit."
    )

    def __call__(self, value: str) -> None:
        self.characters(value)
        if value and not value.strip("."):
            raise ValidationError(self.only_dots_message, code="only_dots")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ReferenceIdValidator)

    def __hash__(self) -> int:
        return hash(ReferenceIdValidator)


reference_id_validator = ReferenceIdValidator()



class JobLabels:
    """What the pages say about a job, from its target_language, state and upstream_status. Shared by
    Submission and the history's light rows (selectors.HistoryRow), which skip building model instances."""

    if TYPE_CHECKING:  # provided by Submission's fields and HistoryRow's attributes
        target_language: str
        state: str
        upstream_status: str

    @property
    def language_name(self) -> str:
        return _language_names().get(self.target_language, self.target_language)

    @property
    def status_label(self) -> str:
        """What the badge says: for an unknown upstream status, the status itself."""
        if self.state == Submission.State.IN_FLIGHT and self.upstream_status:
            return self.upstream_status.capitalize()
        return _state_labels().get(self.state, self.state)

    @property
    def is_in_flight(self) -> bool:
        """Still changing: the pages keep refreshing while this is true."""
        return self.state in Submission.UPSTREAM_IN_FLIGHT or self.state in (Submission.State.PENDING, Submission.State.SENDING)

    # The states the pages speak of by name, so no template compares raw state strings.
    @property
    def is_waiting_to_send(self) -> bool:
        return self.state == Submission.State.PENDING

    @property
    def is_cancelled(self) -> bool:
        return self.state == Submission.State.CANCELLED

    @property
    def is_completed(self) -> bool:
        return self.state == Submission.State.COMPLETED

    @property
    def failed_at_chamelaion(self) -> bool:
        """Chamelaion could not make the video (not: DubDash could not send it, which is SEND_FAILED)."""
        return self.state == Submission.State.FAILED

    @property
    def is_missing(self) -> bool:
        return self.state == Submission.State.MISSING


class Submission(JobLabels, models.Model):
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
        MISSING = "missing", "Not found at Chamelaion"
        # Withdrawn while still waiting to send: never sent, so nothing exists (or is paid for) upstream.
        CANCELLED = "cancelled", "Cancelled"

    UPSTREAM_IN_FLIGHT = (State.QUEUED, State.PROCESSING, State.IN_FLIGHT)

    # Null for jobs made outside DubDash (imported from the account's list).
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="submissions", null=True, blank=True
    )
    is_external = models.BooleanField(default=False, help_text="Made outside DubDash and imported.")
    title = models.CharField(max_length=200, blank=True, validators=[refuse_control_characters])
    # Blank only for imported jobs: the API does not report a job's inputs.
    video_url = models.URLField(max_length=URL_MAX_LENGTH, blank=True)
    audio_url = models.URLField(max_length=URL_MAX_LENGTH, blank=True)
    disable_active_speaker_detection = models.BooleanField(default=False)
    # The same video, audio and options sent before may be a costly mistake: this finds them fast (URLs
    # are too long to index themselves). Blank for uploads, which have no URL to compare. Set by whatever
    # saves the job or edits its inputs, with submissions.jobs.fingerprints.fingerprint_of.
    inputs_fingerprint = models.CharField(max_length=64, blank=True, db_index=True)
    # Local files to send with generate-with-media instead of URLs. Kept (never served) until the job is
    # sent or given up, then deleted.
    video_upload = models.FileField(upload_to="uploads/%Y/%m/%d/", blank=True)
    audio_upload = models.FileField(upload_to="uploads/%Y/%m/%d/", blank=True)
    # Sent with every job so an ambiguous failure can be settled by looking the job up, never by resending.
    # Null only for imported jobs that were made without one.
    reference_id = models.CharField(
        max_length=REFERENCE_ID_MAX_LENGTH, unique=True, null=True, blank=True, validators=[reference_id_validator]
    )
    target_language = models.CharField(max_length=15, blank=True)

    state = models.CharField(max_length=20, choices=State.choices, default=State.PENDING, db_index=True)
    batch = models.ForeignKey("Batch", on_delete=models.PROTECT, related_name="submissions", null=True, blank=True)
    # The take this job replaces: a New take, or "Retry the failed ones" (a failed job sent again as a new
    # one). The old one stays in the history; only the latest take of a language has no `retried_as`.
    retry_of = models.OneToOneField(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="retried_as"
    )
    # Takes of one language: take 1 is the first job (its first_take is null), later takes point to it.
    take = models.PositiveIntegerField(default=1)
    first_take = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="later_takes"
    )
    # The outbox: a waiting submission is sent at or after this time (retries back off by moving it).
    next_attempt_at = models.DateTimeField(null=True, blank=True, default=timezone.now)
    send_attempts = models.PositiveIntegerField(default=0)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    # When a POST that may have created the job upstream was made without DubDash learning the result.
    # Until the job is found by reference_id (or proven absent), sending again could duplicate it.
    outcome_unknown_since = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, help_text="Why the last send failed, in plain words.")
    # Attempts that reached Chamelaion (or may have) and failed, and when the first one did. Giving up is
    # measured on these alone: time spent waiting in line, or while Chamelaion could not be reached at all,
    # never counts against a job.
    failed_deliveries = models.PositiveIntegerField(default=0)
    first_failed_delivery_at = models.DateTimeField(null=True, blank=True)

    request_id = models.CharField(max_length=64, null=True, blank=True, unique=True)
    upstream_status = models.CharField(max_length=64, blank=True)
    upstream_created_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Text, not a 2,048-character URLField: Chamelaion's signed links can be longer, and one that did not fit
    # failed the whole refresh round. Never typed by a user; chamelaion_replies caps and vets it.
    output_url = models.TextField(blank=True)
    upstream_error_message = models.TextField(blank=True)

    # Not auto_now_add: an imported job keeps the time Chamelaion created it.
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # The month the job counts in against its submitter's limit: made then, or sent again then (a job that
    # could not be sent did not count; sent again in a later month, it counts in that one).
    counted_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    # Polling: when the worker should next ask about this job, and which worker round holds it meanwhile.
    next_poll_at = models.DateTimeField(null=True, blank=True)
    poll_lease = models.CharField(max_length=32, blank=True)
    # Last "Refresh now" press: at most one upstream call per job every few seconds, however many clicks.
    refresh_requested_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        # The roles (groups made by a data migration) are built from these.
        permissions = [
            ("view_team_history", "Can see the whole team's jobs and outputs"),
            ("submit_jobs", "Can submit jobs, batches and CSV files, and retry their own"),
            ("retry_any_job", "Can retry or send again anyone's jobs"),
            ("manage_api_key", "Can set, rotate and test the Chamelaion API key"),
            ("manage_members", "Can manage members' roles and monthly limits"),
            ("view_usage", "Can see the team's usage"),
            ("review_takes", "Can approve takes or request changes on them"),
        ]
        indexes = [
            models.Index(fields=["created_by", "-created_at"], name="submission_owner_recent"),
            models.Index(fields=["state", "next_poll_at"], name="submission_poll_due"),
            models.Index(fields=["state", "next_attempt_at", "created_at"], name="submission_outbox"),
            # The history's keyset pages: newest first, id breaking ties, and the same per member and state.
            models.Index(fields=["-created_at", "-id"], name="submission_recent"),
            models.Index(fields=["created_by", "state", "-created_at"], name="submission_owner_state"),
            models.Index(fields=["created_by", "counted_at"], name="submission_owner_counted"),
        ]
        constraints = [
            # Two New takes made at the same moment never both become take N+1 (the service locks too).
            models.UniqueConstraint(fields=["first_take", "take"], name="submission_take_once"),
        ]

    def __str__(self) -> str:
        return self.title or self.reference_id or self.request_id or f"Submission {self.pk}"

    def get_absolute_url(self) -> str:
        return reverse("submissions:detail", args=[self.pk])

    @property
    def takes_root_id(self) -> int | None:
        """The first take's id: what every take of this language shares."""
        return self.first_take_id or self.pk

    @property
    def has_uploads(self) -> bool:
        return bool(self.video_upload)

    @property
    def send_outcome_unknown(self) -> bool:
        return self.outcome_unknown_since is not None

    @property
    def is_stuck_sending(self) -> bool:
        # stuck_sending(), for this one instance
        return (
            self.state == self.State.SENDING
            and self.last_attempt_at is not None
            and self.last_attempt_at < stuck_sending_before()
        )

    @property
    def failure_explanation(self) -> str:
        message = self.upstream_error_message
        return FAILURE_EXPLANATIONS.get(message, f"Chamelaion reported: “{message}”.") if message else ""

    @property
    def playable_output_url(self) -> str:
        """Only http(s) links become players and download links: never javascript: or data: URLs."""
        return self.output_url if self.output_url.lower().startswith(("https://", "http://")) else ""

    def timeline(self) -> list[tuple[str, datetime, timedelta | None]]:
        """(step, when, time since the step before) for the steps this job has reached."""
        steps: list[tuple[str, datetime | None]] = [
            ("Submitted", self.created_at),
            ("Sent to Chamelaion", self.sent_at),
            ("Started", self.started_at),
            ("Finished" if self.state != self.State.FAILED else "Failed", self.finished_at),
        ]
        reached: list[tuple[str, datetime, timedelta | None]] = []
        previous: datetime | None = None
        for label, moment in steps:
            if moment is None:
                continue
            reached.append((label, moment, moment - previous if previous and moment >= previous else None))
            previous = moment
        return reached

    @property
    def is_replaced(self) -> bool:
        """A later take replaces it (a New take, or "Retry the failed ones")."""
        try:
            self.retried_as  # noqa: B018 - the reverse one-to-one raises when there is none
        except ObjectDoesNotExist:
            return False
        return True

    @property
    def inputs_deleted(self) -> bool:
        """Could not be sent, and its uploaded files were deleted since (uploads.cleanup): nothing to send."""
        return self.state == self.State.SEND_FAILED and not (self.video_url or self.video_upload or self.is_external)

    @property
    def can_send_again(self) -> bool:
        """Could not be sent (or left mid-send by a process that died), still has its inputs, and no later
        take replaces it (that would make a second live job for the same language)."""
        stopped = self.state == self.State.SEND_FAILED or self.is_stuck_sending
        return stopped and not self.inputs_deleted and not self.is_replaced

    @property
    def can_cancel(self) -> bool:
        """Only while waiting to send, and only if no earlier attempt may have reached Chamelaion."""
        return self.state == self.State.PENDING and self.request_id is None and not self.send_outcome_unknown


class Problem(models.Model):
    """Something only an administrator can fix, shown to staff on every page until it is resolved."""

    class Code(models.TextChoices):
        API_KEY_REJECTED = "api_key_rejected", "API key rejected"
        QUOTA_USED_UP = "quota_used_up", "Plan quota used up"
        UNREACHABLE = "chamelaion_unreachable", "Chamelaion cannot be reached"

    code = models.CharField(max_length=32, choices=Code.choices, unique=True)
    message = models.TextField()
    # Raised by the worker's reads (so polling waits for it), not only by a send.
    pauses_polling = models.BooleanField(default=False)
    since = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["since"]

    def __str__(self) -> str:
        return self.get_code_display()


class Batch(models.Model):
    """One source video dubbed into several languages, or one CSV file: many submissions sent together."""

    name = models.CharField(max_length=200, validators=[refuse_control_characters])
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="batches")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "batches"

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("submissions:batch", args=[self.pk])


class RateBudget(models.Model):
    """The deployment's one budget of generation requests, shared by every web process and worker.

    A single row holding GCRA's "theoretical arrival time": a request may go when that time is no more than
    the burst tolerance ahead of now, and taking it moves the time on by one interval. Updated by
    compare-and-set, so concurrent processes never both take the same slot."""

    theoretical_arrival = models.DateTimeField()

    def __str__(self) -> str:
        return f"Rate budget: next slot at {self.theoretical_arrival:%Y-%m-%d %H:%M:%S}"


class CsvUpload(models.Model):
    """A CSV file kept between its preview and its sending. It never changes: a corrected file is a new
    upload, so what is sent is exactly what was previewed."""

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="csv_uploads")
    filename = models.CharField(max_length=255)
    batch_name = models.CharField(max_length=200, blank=True, help_text="Blank: the batch is named after the file.")
    content = models.TextField(help_text="The file's text, decoded from UTF-8 (without a BOM).")
    created_at = models.DateTimeField(default=timezone.now)
    # Set by a conditional update before the batch is created, so a double click sends it only once.
    used_at = models.DateTimeField(null=True, blank=True)
    batch = models.OneToOneField(
        Batch, on_delete=models.SET_NULL, null=True, blank=True, related_name="csv_upload"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "CSV upload"

    def __str__(self) -> str:
        return self.filename

    def get_absolute_url(self) -> str:
        return reverse("submissions:csv_preview", args=[self.pk])


class MonthlyLimit(models.Model):
    """A member's optional caps per calendar month, set by a team admin: jobs, minutes of output, or both
    (a blank one does not limit)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="monthly_limit")
    jobs_per_month = models.PositiveIntegerField(null=True, blank=True)
    # Chamelaion bills by processed duration: minutes of kept output of the member's jobs made this month.
    minutes_per_month = models.PositiveIntegerField(null=True, blank=True)

    def __str__(self) -> str:
        limits = ((self.jobs_per_month, "jobs"), (self.minutes_per_month, "minutes"))
        caps = [f"{n} {unit}" for n, unit in limits if n is not None]
        return f"{self.user}: {' and '.join(caps) or 'no limit'} a month"


class Activity(models.Model):
    """Who did what to which job or batch: the team's trail of submits, retries, cancels and imports.
    Changes made in Django admin are in admin's own LogEntry too; this trail notes them as "changed".
    `details` is a short plain summary, never a secret (no API keys, no tokens)."""

    class Verb(models.TextChoices):
        SUBMITTED = "submitted", "Submitted"
        SENT_AGAIN = "sent_again", "Sent again"
        RETRIED = "retried", "Retried"
        CANCELLED = "cancelled", "Cancelled"
        IMPORTED = "imported", "Imported"
        REFRESHED = "refreshed", "Refreshed"
        CHANGED = "changed", "Changed"
        NEW_TAKE = "new_take", "Made a new take"
        COPY_RETRIED = "copy_retried", "Asked to keep a copy again"
        APPROVED = "approved", "Approved"
        CHANGES_REQUESTED = "changes_requested", "Requested changes"

    DETAILS_MAX_LENGTH = 500

    at = models.DateTimeField(default=timezone.now, db_index=True)
    # Null: done by DubDash itself (the worker, a management command) or by a user since deleted.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="activities"
    )
    verb = models.CharField(max_length=20, choices=Verb.choices)
    submission = models.ForeignKey(
        # Indexed by activity_submission_recent below (a job's trail, newest first).
        Submission, on_delete=models.SET_NULL, null=True, blank=True, related_name="activities", db_index=False
    )
    batch = models.ForeignKey(Batch, on_delete=models.SET_NULL, null=True, blank=True, related_name="activities")
    details = models.CharField(max_length=DETAILS_MAX_LENGTH, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "activities"
        indexes = [models.Index(fields=["submission", "-at"], name="activity_submission_recent")]

    def __str__(self) -> str:
        who = self.actor.get_username() if self.actor_id is not None and self.actor is not None else "DubDash"
        return f"{who} {self.get_verb_display().lower()}"


# Models kept in their capability's folder, registered with the app here.
from submissions.apikey.models import ApiCredential  # noqa: E402
from submissions.notifications.models import OutgoingEmail  # noqa: E402
from submissions.outputs.models import OutputCopy  # noqa: E402
from submissions.profiles.models import Profile  # noqa: E402
from submissions.reviews.models import Comment, TakeReview  # noqa: E402

__all__ = ["ApiCredential", "Comment", "OutgoingEmail", "OutputCopy", "Profile", "TakeReview"]
