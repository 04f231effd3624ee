"""The duplicate guard: every job costs money, so DubDash asks before sending the same inputs again.

The one "ask before sending a duplicate" decision, for the single form, batches and CSV files: which jobs
of a request have the same video, audio and options as an earlier submission, and which repeat another job
of the same request. A selector: it reads, and each view only shows what it returns in its own words."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

from submissions.jobs.fingerprints import fingerprint_of
from submissions.models import Submission

Label = TypeVar("Label")
# How many earlier submissions are shown per job by default (the single form shows more).
EARLIER_PER_JOB = 3


class SentBefore(NamedTuple):
    """The request's job at `position` has the inputs of these earlier submissions (newest first)."""

    position: int
    earlier: list[Submission]


class Repeat(NamedTuple):
    """The request's job at `position` has the inputs of its jobs at `others`."""

    position: int
    others: list[int]


@dataclass(frozen=True)
class Duplicates:
    """What to ask about before sending a request's jobs. False when there is nothing to ask."""

    sent_before: list[SentBefore] = field(default_factory=list)
    repeats: list[Repeat] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.sent_before or self.repeats)

    def labelled(self, labels: Sequence[Label]) -> tuple[list[tuple[Label, list[Submission]]], list[tuple[Label, list[Label]]]]:
        """The same answer with each job named by `labels[position]` (a batch's job, a CSV row's line)."""
        return (
            [(labels[found.position], found.earlier) for found in self.sent_before],
            [(labels[repeat.position], [labels[other] for other in repeat.others]) for repeat in self.repeats],
        )


def duplicates_to_confirm(
    *, jobs: Sequence[Mapping[str, Any]], confirmed: bool, per_job: int = EARLIER_PER_JOB
) -> Duplicates:
    """Before sending `jobs` (dicts with video_url, audio_url, disable_active_speaker_detection): the
    duplicates the person must confirm first, or nothing if they already did (`confirmed`). Earlier
    submissions that could not be sent do not count: nothing was made or paid for. One query."""
    if confirmed or not jobs:
        return Duplicates()
    fingerprints = [fingerprint_of(job) for job in jobs]
    return Duplicates(sent_before=_sent_before(fingerprints, per_job=per_job), repeats=_repeats(fingerprints))


def _sent_before(fingerprints: list[str], *, per_job: int) -> list[SentBefore]:
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
    return [SentBefore(index, earlier[fp]) for index, fp in enumerate(fingerprints) if fp in earlier]


def _repeats(fingerprints: list[str]) -> list[Repeat]:
    """Two jobs of one request with the same inputs are two paid jobs producing the same video, whatever
    language each is labelled with."""
    indexes_of: dict[str, list[int]] = {}
    for index, fingerprint in enumerate(fingerprints):
        if fingerprint:
            indexes_of.setdefault(fingerprint, []).append(index)
    return sorted(
        Repeat(index, [other for other in group if other != index])
        for group in indexes_of.values()
        if len(group) > 1
        for index in group
    )
