"""The duplicate guard: every job costs money, so DubDash asks before sending the same inputs again.

One rule for the single form, batches and CSV imports: jobs with the same video, audio and options as an
earlier submission, and jobs that repeat another job of the same request."""

from __future__ import annotations

from submissions.models import Submission, inputs_fingerprint


def _fingerprint(job: dict) -> str:
    return inputs_fingerprint(job["video_url"], job["audio_url"], job.get("disable_active_speaker_detection", False))


def earlier_submissions_of_jobs(jobs: list[dict], *, per_job: int = 3) -> list[tuple[int, list[Submission]]]:
    """For a list of jobs (dicts with video_url, audio_url, disable_active_speaker_detection): the index
    of each job that was submitted before, with its earliest matches. One query for the whole list."""
    fingerprints = [_fingerprint(job) for job in jobs]
    earlier: dict[str, list[Submission]] = {}
    matches = (
        Submission.objects.filter(inputs_fingerprint__in={f for f in fingerprints if f})
        .exclude(state=Submission.State.SEND_FAILED)
        .select_related("created_by")
        .order_by("-created_at")
    )
    for submission in matches:
        found = earlier.setdefault(submission.inputs_fingerprint, [])
        if len(found) < per_job:
            found.append(submission)
    return [(index, earlier[fp]) for index, fp in enumerate(fingerprints) if fp in earlier]


def repeats_within(jobs: list[dict]) -> list[tuple[int, list[int]]]:
    """For one submission's own jobs (a batch's languages, a CSV's rows): each job whose video, audio and
    options another job of the same list also has, with the indexes of those others. Two such jobs are
    two paid jobs producing the same video, whatever language each is labelled with."""
    indexes_of: dict[str, list[int]] = {}
    for index, job in enumerate(jobs):
        fingerprint = _fingerprint(job)
        if fingerprint:
            indexes_of.setdefault(fingerprint, []).append(index)
    return sorted(
        (index, [other for other in group if other != index])
        for group in indexes_of.values()
        if len(group) > 1
        for index in group
    )
