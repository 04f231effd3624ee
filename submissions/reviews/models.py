"""Review of a completed take: its state (not reviewed, approved, changes requested) and the team's comments
on it. A take with no TakeReview row is not reviewed; a new take starts without one."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class TakeReview(models.Model):
    class State(models.TextChoices):
        NOT_REVIEWED = "not_reviewed", "Not reviewed"
        APPROVED = "approved", "Approved"
        CHANGES_REQUESTED = "changes_requested", "Changes requested"

    submission = models.OneToOneField("submissions.Submission", on_delete=models.CASCADE, related_name="review")
    state = models.CharField(max_length=20, choices=State.choices, default=State.NOT_REVIEWED)
    # Who decided the current state, and when (kept when a decision is replaced by another).
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["state"], name="takereview_state")]

    def __str__(self) -> str:
        return f"Review of {self.submission_id}: {self.get_state_display()}"


class Comment(models.Model):
    """Plain text a member wrote on a take. Shown escaped; links and time codes are found when it is read."""

    TEXT_MAX_LENGTH = 5000

    submission = models.ForeignKey("submissions.Submission", on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    text = models.TextField(max_length=TEXT_MAX_LENGTH)
    # What the comment went with, if anything: the decision it explains.
    decision = models.CharField(max_length=20, choices=TakeReview.State.choices, blank=True)

    class Meta:
        ordering = ["created_at", "pk"]
        indexes = [models.Index(fields=["submission", "created_at"], name="comment_thread")]

    def __str__(self) -> str:
        return f"Comment on {self.submission_id} by {self.author_id}"
