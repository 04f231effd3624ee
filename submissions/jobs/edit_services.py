"""A job added or changed by hand, as Django admin does it: the change and its activity-trail entry together.

An edit writes only the fields that changed, never the whole row: the worker may have moved the job on
meanwhile, and a full save would put back the state the form was loaded with. Inputs change only while
the job still waits to send and nothing may have reached Chamelaion, by the guarded transition (the same
condition the outbox's claim and cancelling race against), so a job is never sent with one set of inputs
and recorded with another."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from submissions.core import activity
from submissions.core.states import nothing_sent_yet, transition
from submissions.jobs.fingerprints import fingerprint_of_submission
from submissions.models import Submission

State = Submission.State

# What describes the job sent upstream, so fixed once it may have been sent.
FIXED_ONCE_SENT = ("created_by", "video_url", "audio_url", "disable_active_speaker_detection", "reference_id")


def add_job(*, submission: Submission, actor: Any) -> Submission:
    """Save a job filled in by hand; the outbox sends it in its turn."""
    submission.inputs_fingerprint = fingerprint_of_submission(submission)
    submission.save()
    details = "Added in admin; sent by the outbox"
    activity.record(actor=actor, verb=activity.Verb.SUBMITTED, submission=submission, details=details)
    return submission


def edit_job(*, submission: Submission, changes: Mapping[str, Any], actor: Any, summary: str) -> bool:
    """Store `changes` (field name → new value, already set on `submission`) and note `summary` in the
    trail. Returns False, changing nothing and noting nothing, when inputs were to change but the job no
    longer waits to send with nothing sent; the instance then shows the job as it is now."""
    fields = dict(changes)
    if any(name in FIXED_ONCE_SENT for name in fields):
        fields["inputs_fingerprint"] = fingerprint_of_submission(submission)
        if not transition(submission, expected=State.PENDING, guard=nothing_sent_yet(), **fields):
            return False
    elif fields:
        # Labels only (title, language, batch): never the state, so whatever the worker wrote meanwhile stays.
        Submission.objects.filter(pk=submission.pk).update(**fields)
    activity.record(actor=actor, verb=activity.Verb.CHANGED, submission=submission, details=summary)
    return True
