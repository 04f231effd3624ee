"""Local video and audio files for generate-with-media.

Received straight to temporary files on disk (never memory), with the size limit enforced while they
arrive; checked by their content (magic bytes), never by their name. The checks match what Chamelaion
accepts: MP4 video (an ISO "ftyp" box); WAV (RIFF/WAVE) or MP3 (an ID3 tag or an MPEG audio frame).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import IO, Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import TemporaryFileUploadHandler
from django.http import HttpRequest

HEAD_BYTES = 64  # enough for every signature below and a fair look at whether it is text
_OVERSIZED = "dubdash_oversized_uploads"  # request attribute: {field name: bytes the file really had}


# --- Receiving ---------------------------------------------------------------------------------------


class LimitedTemporaryFileUploadHandler(TemporaryFileUploadHandler):
    """Every uploaded file goes to a temporary file on disk. One that grows past UPLOAD_MAX_BYTES stops
    being written at once and its partial temporary file is deleted; the rest of it is only counted
    (read and thrown away), so the form can say how big it really was and the browser still receives
    that page, which it would not if the connection were reset mid-upload."""

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self.limit: int = settings.UPLOAD_MAX_BYTES
        self.received = 0
        self.too_large = False

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self.received += len(raw_data)
        if self.received <= self.limit:
            return super().receive_data_chunk(raw_data, start)
        if not self.too_large:
            self.too_large = True
            self.file.close()  # a NamedTemporaryFile: closing deletes it from disk
        return None

    def file_complete(self, file_size: int) -> UploadedFile | None:
        if not self.too_large:
            return super().file_complete(file_size)
        if self.request is not None:
            oversized_uploads(self.request)[self.field_name] = self.received
        return None  # the file is left out of request.FILES; the form explains why


def oversized_uploads(request: HttpRequest) -> dict[str, int]:
    """The files of this request refused for their size: field name → the size they had."""
    if not hasattr(request, _OVERSIZED):
        setattr(request, _OVERSIZED, {})
    return getattr(request, _OVERSIZED)


def describe_size(size: int, *, round_up: bool = False) -> str:
    """A size as people read it ("200 MB", "28.1 KB"): binary units, one decimal at most. A refused
    file's size is rounded up, so it never reads as equal to the limit it exceeded."""
    value, unit = float(size), "bytes"
    for bigger in ("KB", "MB", "GB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    if unit == "bytes":
        return f"{size} bytes"
    value = (math.ceil if round_up else math.floor)(value * 10) / 10
    return f"{value:.1f}".removesuffix(".0") + f" {unit}"


# --- Content checks ----------------------------------------------------------------------------------


def read_head(file: IO[bytes]) -> bytes:
    """The first bytes of the file, leaving it positioned at its start."""
    file.seek(0)
    head = file.read(HEAD_BYTES)
    file.seek(0)
    return head


def is_mp4(head: bytes) -> bool:
    return len(head) >= 8 and head[4:8] == b"ftyp"


def is_wav(head: bytes) -> bool:
    return len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WAVE"


def is_mp3(head: bytes) -> bool:
    if head[:3] == b"ID3":
        return True
    if len(head) < 3 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    # A frame sync alone also matches AAC (layer bits 00) and noise: require a real MPEG version,
    # layer and bitrate index as well.
    version, layer, bitrate = (head[1] >> 3) & 0b11, (head[1] >> 1) & 0b11, head[2] >> 4
    return version != 0b01 and layer != 0b00 and bitrate != 0b1111


def is_wav_or_mp3(head: bytes) -> bool:
    return is_wav(head) or is_mp3(head)


# What a refused file seems to be, so the message tells the user what they picked by mistake.
_LOOKALIKES: list[tuple[Callable[[bytes], bool], str]] = [
    (is_mp4, "an MP4 video"),
    (is_wav, "a WAV audio file"),
    (is_mp3, "an MP3 audio file"),
    (lambda h: h[:4] == b"RIFF" and h[8:12] == b"AVI ", "an AVI video"),
    (lambda h: h[:4] == b"\x1a\x45\xdf\xa3", "a WebM or Matroska video"),
    (lambda h: h[:4] == b"OggS", "an Ogg file"),
    (lambda h: h[:4] == b"fLaC", "a FLAC audio file"),
    (lambda h: h[:4] == b"%PDF", "a PDF document"),
    (lambda h: h[:8] == b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (lambda h: h[:3] == b"\xff\xd8\xff", "a JPEG image"),
    (lambda h: h[:4] == b"GIF8", "a GIF image"),
    (lambda h: h[:4] == b"PK\x03\x04", "a ZIP archive (or a Word, Excel or similar document)"),
]


def looks_like(head: bytes) -> str | None:
    for matches, description in _LOOKALIKES:
        if matches(head):
            return description
    return "plain text" if _is_text(head) else None


def _is_text(head: bytes) -> bool:
    # The head may end inside a multi-byte character: decode leniently, then judge what is there.
    text = head.decode("utf-8", errors="ignore")
    whole = len(text.encode("utf-8")) >= len(head) - 3  # at most a cut-off character was dropped
    return bool(text) and whole and all(c.isprintable() or c.isspace() for c in text)


def content_error(head: bytes, *, wanted: str) -> str:
    """'This file is not an MP4 video (it looks like plain text).'"""
    seen = looks_like(head)
    why = f"it looks like {seen}" if seen else "DubDash does not recognise its content"
    return f"This file is not {wanted} ({why}). Check that you picked the right file."
