"""The file name a kept output is downloaded under (OUTPUT_FILENAME_TEMPLATE), safe on every OS: Windows
refuses < > : " / \\ | ? * and control characters, names ending in a dot or a space, and device names
(CON, NUL, COM1...); macOS and Linux refuse "/" and NUL; most file systems cap a name at 255 bytes."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from django.conf import settings

TITLE_MAX_BYTES = 120  # any one field
MAX_NAME_BYTES = 200  # under every file system's 255, with room for a ZIP's or a browser's " (1)"
_UNSAFE = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]+')
_WINDOWS_DEVICES = re.compile(r"^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$", re.IGNORECASE)


def download_name(submission: Any, *, template: str | None = None) -> str:
    """The download's name for this job's output, from the template (default OUTPUT_FILENAME_TEMPLATE)."""
    values = {
        "title": submission.title or f"job-{submission.pk}",
        "language": submission.target_language or "xx",
        "language_name": submission.language_name if submission.target_language else "no-language",
        "take": submission.take,
        "reference_id": submission.reference_id or "",
        "request_id": submission.request_id or "",
        "id": submission.pk,
    }
    # Each value made safe on its own, so that a "/" in a title never becomes a folder in a ZIP.
    parts = {key: _shortened(safe_part(str(value)), TITLE_MAX_BYTES) for key, value in values.items()}
    rendered = (template or settings.OUTPUT_FILENAME_TEMPLATE).format_map(parts)
    return safe_name(rendered)


def _shortened(text: str, max_bytes: int) -> str:
    # A long title is cut, not what follows it in the template (the language and the take matter more).
    return text.encode()[:max_bytes].decode(errors="ignore")


def safe_part(text: str) -> str:
    text = unicodedata.normalize("NFC", text)
    text = _UNSAFE.sub("-", text)
    return re.sub(r"\s+", " ", text).strip()


def safe_name(name: str) -> str:
    """A name every OS accepts, keeping the extension; never empty."""
    name = safe_part(name).strip(" .") or "output.mp4"
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem or len(extension) > 8:
        stem, extension = name, "mp4"
    if _WINDOWS_DEVICES.match(stem):
        stem = f"_{stem}"
    budget = MAX_NAME_BYTES - len(extension.encode()) - 1
    if len(stem.encode()) > budget:
        stem = _shortened(stem, budget)
    return f"{stem.rstrip(' .') or 'output'}.{extension}"
