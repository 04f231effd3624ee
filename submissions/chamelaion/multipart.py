"""Streaming multipart bodies for generate-with-media: files of any size are sent from disk in chunks,
with a Content-Length measured by seeking, never by reading them into memory."""

from __future__ import annotations

import mimetypes
import os
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import IO

# --- Streaming multipart bodies ---------------------------------------------------------------------

MULTIPART_CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True)
class _FileSpan:
    """The part of an open file from where it was when the body was made to its end."""

    file: IO[bytes]
    start: int
    size: int

    @classmethod
    def of(cls, file: IO[bytes]) -> _FileSpan:
        # Measured by seeking, never by reading: works for any seekable file of any size.
        start = file.tell()
        file.seek(0, os.SEEK_END)
        end = file.tell()
        file.seek(start)
        return cls(file, start, end - start)

    def chunks(self, chunk_size: int) -> Iterator[bytes]:
        self.file.seek(self.start)  # so the body can be iterated again from the same place
        left = self.size
        while left:
            chunk = self.file.read(min(chunk_size, left))
            if not chunk:
                # Content-Length promised more bytes: stopping short would leave the server waiting.
                # An OSError is what requests turns into a connection error, so the send is retried.
                raise OSError(f"a file shrank by {left} bytes while it was being sent")
            left -= len(chunk)
            yield chunk


class MultipartStream:
    """A multipart/form-data body made chunk by chunk from open files, so memory stays flat whatever
    their size. `len()` is the body's exact size, computed from the file sizes without reading them:
    requests then sends a Content-Length instead of chunked encoding, which not every server accepts.

    Text fields are UTF-8; file names are quoted as browsers do (WHATWG: CR, LF and `"` percent-encoded).
    """

    def __init__(
        self,
        *,
        fields: Mapping[str, str],
        files: list[tuple[str, str, IO[bytes]]],
        chunk_size: int = MULTIPART_CHUNK_BYTES,
        boundary: str | None = None,
    ):
        # Random, so it cannot plausibly occur inside a file (the same approach as requests and browsers).
        self.boundary = boundary or f"DubDash-{secrets.token_hex(16)}"
        self._chunk_size = chunk_size
        self._segments: list[bytes | _FileSpan] = []
        for name, value in fields.items():
            self._add(self._part_head(name) + value.encode("utf-8") + b"\r\n")
        for name, filename, file in files:
            self._add(self._part_head(name, filename=filename))
            self._add(_FileSpan.of(file))
            self._add(b"\r\n")
        self._add(f"--{self.boundary}--\r\n".encode("ascii"))
        self._length = sum(len(s) if isinstance(s, bytes) else s.size for s in self._segments)

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[bytes]:
        for segment in self._segments:
            if isinstance(segment, bytes):
                yield segment
            else:
                yield from segment.chunks(self._chunk_size)

    def _add(self, segment: bytes | _FileSpan) -> None:
        # Neighbouring header bytes are joined: fewer, larger writes to the socket.
        if isinstance(segment, bytes) and self._segments and isinstance(self._segments[-1], bytes):
            self._segments[-1] += segment
        else:
            self._segments.append(segment)

    def _part_head(self, name: str, *, filename: str | None = None) -> bytes:
        disposition = f"form-data; name={_quoted(name)}"
        lines = [f"--{self.boundary}"]
        if filename is None:
            lines.append(f"Content-Disposition: {disposition}")
        else:
            content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
            lines.append(f"Content-Disposition: {disposition}; filename={_quoted(filename)}")
            lines.append(f"Content-Type: {content_type}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def _quoted(value: str) -> str:
    return '"' + value.translate({10: "%0A", 13: "%0D", 34: "%22"}) + '"'
