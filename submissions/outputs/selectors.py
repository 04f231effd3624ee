"""Reads of kept outputs for serving them: whether a job's copy can be served, and why a copy cannot be asked
for again. (What the pages show of a copy is delivery_selectors.)"""

from __future__ import annotations

from django.conf import settings

from submissions.models import OutputCopy, Submission


def copy_of(*, submission: Submission) -> OutputCopy | None:
    """The job's copy in whatever state it is (keeping, kept, failed), or None if none was ever asked for."""
    return OutputCopy.objects.filter(submission=submission).first()


def kept_copy(*, submission: Submission) -> OutputCopy | None:
    """The copy DubDash may serve: made, with a file. Switching copies off (OUTPUT_KEEP) switches serving them
    off too: the pages then use Chamelaion's link, as they do before a copy exists."""
    if not settings.OUTPUT_KEEP:
        return None
    return OutputCopy.objects.filter(submission=submission, state=OutputCopy.State.DONE).exclude(file="").first()


def nothing_to_retry(*, submission: Submission) -> str:
    """Why keeping a copy cannot be asked for again, in words that finish "There is nothing to retry: ";
    empty when it can (only a copy that could not be made)."""
    if not settings.OUTPUT_KEEP:
        return "DubDash is not keeping copies of outputs (OUTPUT_KEEP is off)."
    copy = copy_of(submission=submission)
    if copy is None:
        return "DubDash has not started keeping a copy of this job's video."
    if copy.is_failed:
        return ""
    if copy.is_pending:
        return "DubDash is already keeping a copy of this video."
    return "DubDash already keeps a copy of this video."
