"""multipart/form-data bodies, read the way the provider's Go server reads them (mime/multipart)."""

from __future__ import annotations

import email.parser
import email.utils
from dataclasses import dataclass


@dataclass(frozen=True)
class Part:
    name: str | None
    filename: str | None
    content: bytes


def parse_multipart(body: bytes, boundary: str) -> list[Part]:
    """Split a multipart/form-data body; ValueError when it is not well formed."""
    delimiter = b"--" + boundary.encode("latin-1")
    sections = body.split(delimiter)
    if len(sections) < 3:  # preamble, at least one part, the closing "--"
        raise ValueError("no parts")
    parts: list[Part] = []
    for section in sections[1:]:
        if section.startswith(b"--"):
            return parts
        if not section.startswith(b"\r\n"):
            raise ValueError("bad delimiter line")
        head, sep, content = section[2:].partition(b"\r\n\r\n")
        if not sep:
            raise ValueError("part without a header block")
        if content.endswith(b"\r\n"):
            content = content[:-2]
        headers = email.parser.BytesHeaderParser().parsebytes(head + b"\r\n\r\n")
        raw_name = headers.get_param("name", header="content-disposition")
        name = email.utils.collapse_rfc2231_value(raw_name) if raw_name is not None else None
        parts.append(Part(_text(name), _text(headers.get_filename()), content))
    raise ValueError("missing closing delimiter")


def _text(value: str | None) -> str | None:
    """Undo the header parser's surrogate escapes: raw UTF-8 names become real text."""
    if value is None:
        return None
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def form_text(parts: list[Part], name: str) -> str | None:
    """The first plain field called `name`; UnicodeDecodeError when it is not UTF-8."""
    for part in parts:
        if part.name == name and part.filename is None:
            return part.content.decode("utf-8")
    return None


def form_file(parts: list[Part], name: str) -> Part | None:
    # Like Go's FormFile: a part without a filename is a plain field, not a file.
    return next((p for p in parts if p.name == name and p.filename), None)
