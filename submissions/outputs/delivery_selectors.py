"""What the pages show of a job's output: where its kept copy stands, and which links to use for the player
and the Download button (DubDash's own copy when kept; Chamelaion's link, said so, until then)."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.urls import reverse

from submissions.models import OutputCopy, Submission


@dataclass(frozen=True)
class Delivery:
    copy: OutputCopy | None
    play_url: str  # for <video src>: "" when there is nothing to play
    download_url: str
    from_chamelaion: bool  # the links point at Chamelaion's copy (may expire), not DubDash's

    @property
    def kept(self) -> bool:
        return self.copy is not None and self.copy.is_kept

    @property
    def copy_label(self) -> str:
        return self.copy.label if self.copy is not None else ""

    @property
    def copy_failed(self) -> bool:
        return self.copy is not None and self.copy.is_failed

    @property
    def copying(self) -> bool:
        return self.copy is not None and self.copy.is_pending

    @property
    def problem(self) -> str:
        return self.copy.last_error if self.copy is not None else ""


def copy_of(submission: Submission) -> OutputCopy | None:
    try:
        return submission.output_copy
    except ObjectDoesNotExist:
        return None


def delivery_of(*, submission: Submission) -> Delivery:
    """For a job loaded with its copy (select_related("output_copy")) this reads nothing more."""
    # With copying off, the copies are not served either (the output view redirects to Chamelaion's link).
    copy = copy_of(submission) if submission.is_completed and settings.OUTPUT_KEEP else None
    if copy is not None and copy.is_kept:
        served = reverse("submissions:output", args=[submission.pk])
        return Delivery(copy=copy, play_url=f"{served}?inline=1", download_url=served, from_chamelaion=False)
    upstream = submission.playable_output_url if submission.is_completed else ""
    return Delivery(copy=copy, play_url=upstream, download_url=upstream, from_chamelaion=bool(upstream))
