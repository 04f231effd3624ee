"""The New take form: the job's inputs, pre-filled, with the video and the audio each given as a link or a
file. The upload form's file checks (content, size) and the single form's checks (title, reference id) are
inherited, not repeated."""

from __future__ import annotations

from typing import Any

from django.core.files import File
from django.core.files.uploadedfile import UploadedFile

from submissions.core.fields import HttpUrlField
from submissions.models import Submission
from submissions.uploads.forms import UploadForm

# File field name → what the messages call that input.
INPUTS = {"video": "video", "audio": "audio track"}
FILE_LABELS = {"video": "Or a video file", "audio": "Or an audio file"}
MIXED = (
    "Chamelaion takes the video and the audio either both as links or both as files, not one of each: "
    "give the other one the same way."
)


class NewTakeForm(UploadForm):
    """The next take of `of`'s language. The language is not asked: a take is of the same language. Each
    input is a link, a file, or (left empty) the file `of` still keeps, if it keeps one."""

    target_language = None  # type: ignore[assignment]
    # Declared again: the upload form removes the link fields this form also offers.
    video_url = HttpUrlField(  # type: ignore[assignment]
        label="Video URL", required=False, help_text="A public MP4 link, or upload the file below."
    )
    audio_url = HttpUrlField(  # type: ignore[assignment]
        label="Audio URL", required=False, help_text="A public WAV or MP3 link with the new language track, or upload it below."
    )

    def __init__(self, *args: Any, of: Submission, **kwargs: Any) -> None:
        self.of = of
        kwargs.setdefault(
            "initial",
            {
                "title": of.title,
                "video_url": of.video_url,
                "audio_url": of.audio_url,
                "disable_active_speaker_detection": of.disable_active_speaker_detection,
                # The reference id stays blank: every take has its own, and DubDash makes one.
            },
        )
        super().__init__(*args, **kwargs)
        for name in INPUTS:
            self.fields[name].required = False
            self.fields[name].label = FILE_LABELS[name]

    # What the page says about each input of the earlier take.
    @property
    def kept_video(self) -> str:
        """The name of the video file the earlier take still keeps (reused if no other video is given)."""
        return _base_name(self.of.video_upload)

    @property
    def kept_audio(self) -> str:
        return _base_name(self.of.audio_upload)

    @property
    def video_gone(self) -> bool:
        """DubDash no longer has the earlier take's video (an upload sent, or a job made outside DubDash):
        it must be given again."""
        return not (self.of.video_url or self.of.video_upload)

    def _checked_content(self, name: str) -> UploadedFile:
        """Only a file given is checked: here, unlike on the upload page, each file is optional."""
        file = self.cleaned_data[name]
        return super()._checked_content(name) if file else file

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        kinds = {name: self._resolve(name) for name in INPUTS}
        if None not in kinds.values() and len(set(kinds.values())) > 1:
            self.add_error(None, MIXED)
        return cleaned

    def _resolve(self, name: str) -> str | None:
        """Settle one input as "link" or "file" (a file kept by the earlier take is put in cleaned_data),
        or None after adding the error that says what is missing or wrong."""
        link_field = f"{name}_url"
        if name in self.errors or link_field in self.errors:
            return None
        link, file = self.cleaned_data.get(link_field), self.cleaned_data.get(name)
        label = INPUTS[name]
        if link and file:
            self.add_error(name, f"Give the {label} as a link or as a file, not both: clear the one you do not want.")
            return None
        if link:
            return "link"
        if file:
            return "file"
        kept = getattr(self.of, f"{name}_upload")
        if kept:
            self.cleaned_data[name] = kept  # copied into the new take by the service
            return "file"
        if getattr(self.of, link_field):  # the pre-filled link was cleared
            self.add_error(link_field, f"Give the {label}: a link, or a file below.")
        else:
            take = self.of.take
            self.add_error(link_field, f"DubDash no longer has the {label} of take {take}: give it again, as a link or a file.")
        return None


def _base_name(file: File) -> str:
    return (file.name or "").rsplit("/", 1)[-1] if file else ""
