"""The inputs fingerprint: what makes two jobs "the same video, audio and options", however the URLs were
written (#fragment, HTTP://, :443, /./). Every job is paid for, so the duplicate guard looks jobs up by it.

The one place it is computed. Everything that saves a job or changes its inputs (the single form, batches,
CSV files, uploads, "send again" with edits, admin) stores `fingerprint_of(...)`; nothing computes it in
Submission.save(). Migration 0014 recomputes stored ones with the same function."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from submissions.core.urlnorm import normalise_url

INPUT_FIELDS = ("video_url", "audio_url", "disable_active_speaker_detection")


def inputs_fingerprint(video_url: str, audio_url: str, disable_active_speaker_detection: bool) -> str:
    """Blank without both URLs (uploads and imported jobs): there is nothing to compare."""
    if not (video_url and audio_url):
        return ""
    video, audio = normalise_url(video_url), normalise_url(audio_url)
    return hashlib.sha256(f"{video}\n{audio}\n{disable_active_speaker_detection}".encode()).hexdigest()


def fingerprint_of(inputs: Mapping[str, Any]) -> str:
    """The fingerprint of a job's fields: a form's cleaned data, a batch or CSV row, the fields a service is
    about to save. A field that is absent counts as blank (the switch as off)."""
    return inputs_fingerprint(
        inputs.get("video_url") or "",
        inputs.get("audio_url") or "",
        bool(inputs.get("disable_active_speaker_detection", False)),
    )


def fingerprint_of_submission(submission: Any) -> str:
    """The fingerprint of a job's inputs as they are on the instance (admin's add and change forms)."""
    return fingerprint_of({name: getattr(submission, name) for name in INPUT_FIELDS})
