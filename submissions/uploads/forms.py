"""The single-job form with local files instead of URLs: the other fields and checks are reused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from django import forms
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile

from submissions.jobs.forms import SubmissionForm
from submissions.uploads.files import (
    content_error,
    describe_size,
    is_mp4,
    is_wav_or_mp3,
    read_head,
)

# --- The form ----------------------------------------------------------------------------------------


class UploadForm(SubmissionForm):
    """The single-job form with local files instead of URLs: the other fields and checks are reused."""

    # None removes an inherited field (Django's documented way); the stubs only know fields.
    video_url = None  # type: ignore[assignment]
    audio_url = None  # type: ignore[assignment]
    video = forms.FileField(label="Video file", widget=forms.FileInput(attrs={"accept": ".mp4,video/mp4"}))
    audio = forms.FileField(
        label="Audio file",
        widget=forms.FileInput(attrs={"accept": ".wav,.mp3,audio/wav,audio/x-wav,audio/mpeg"}),
    )

    # Field name → (how the size message names it, what the content must be, the check).
    CONTENT: ClassVar[dict[str, tuple[str, str, Callable[[bytes], bool]]]] = {
        "video": ("video", "an MP4 video", is_mp4),
        "audio": ("audio file", "a WAV or MP3 audio file", is_wav_or_mp3),
    }

    def __init__(self, *args: Any, oversized: dict[str, int] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.oversized = oversized or {}
        limit = describe_size(settings.UPLOAD_MAX_BYTES)
        self.fields["video"].help_text = f"An MP4 video, at most {limit}."
        self.fields["audio"].help_text = f"A WAV or MP3 file with the new language track, at most {limit}."

    def clean_video(self) -> UploadedFile:
        return self._checked_content("video")

    def clean_audio(self) -> UploadedFile:
        return self._checked_content("audio")

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        for name, size in self.oversized.items():
            if name in self.CONTENT:
                # The file came but was refused while arriving: say so instead of "This field is required."
                self.errors.pop(name, None)
                self.add_error(name, self._too_large(name, size))
        return cleaned

    def _checked_content(self, name: str) -> UploadedFile:
        _, wanted, matches = self.CONTENT[name]
        file = self.cleaned_data[name]
        head = read_head(file)
        if not matches(head):
            raise forms.ValidationError(content_error(head, wanted=wanted))
        return file

    def _too_large(self, name: str, size: int) -> str:
        label = self.CONTENT[name][0]
        limit = describe_size(settings.UPLOAD_MAX_BYTES)
        return f"The {label} is {describe_size(size, round_up=True)}; the limit is {limit}."
