"""Serving a kept copy: the file streamed in bounded chunks (whole, or the one byte range a player asks for),
or, on S3 with OUTPUT_S3_REDIRECT, a redirect to a short-lived presigned link that carries the same headers.
Either way a copy whose file is gone from storage is answered None, for the view to fall back on.

Range handling follows RFC 9110 section 14: one `bytes=` range is honoured (206), a range starting past the
end is refused (416), and anything else (malformed, several ranges, another unit) is ignored, which the RFC
allows: the whole file is sent (200). Browsers' players only ever ask for one range."""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import quote

from django.conf import settings
from django.http import HttpResponse, HttpResponseBase, HttpResponseRedirect, StreamingHttpResponse

from submissions.models import OutputCopy
from submissions.outputs import names, storage

logger = logging.getLogger(__name__)

CONTENT_TYPE = "video/mp4"
CHUNK_BYTES = 256 * 1024
# A player's Range header is a few dozen characters. A longer one is ignored (sent whole), which also keeps
# the numbers in it far below Python's limit on converting digits to int.
MAX_RANGE_HEADER = 200
_SINGLE_RANGE = re.compile(r"\A[ \t]*bytes=[ \t]*([0-9]*)[ \t]*-[ \t]*([0-9]*)[ \t]*\Z", re.IGNORECASE | re.ASCII)
# Kept in the quoted `filename=` fallback: letters, digits and punctuation no browser reads specially
# (no quote, backslash, percent sign, semicolon or slash).
_FALLBACK_UNSAFE = re.compile(r"[^A-Za-z0-9 ._()\[\]+,!#&'@=~-]+", re.ASCII)


class RangeNotSatisfiable(Exception):
    """A well-formed single range of which no byte exists in the file: answered 416."""


@dataclass(frozen=True)
class Span:
    """Bytes start to end of the file, both included (as Content-Range writes them)."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def parse_range(header: str, *, size: int) -> Span | None:
    """The one byte range a Range header asks of a file of `size` bytes, clipped to the file.

    None means "send the whole file": no header, or one this ignores (malformed, several ranges, another
    unit, too long). Raises RangeNotSatisfiable (and nothing else) for a well-formed range with no byte in
    the file: its first byte past the end, a zero-length suffix, or any range of an empty file."""
    if not header or len(header) > MAX_RANGE_HEADER:
        return None
    match = _SINGLE_RANGE.match(header)
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # "bytes=-N": the last N bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable
        return Span(start=max(0, size - suffix), end=size - 1)
    start = int(first)
    if last and int(last) < start:
        return None  # invalid, not unsatisfiable (RFC 9110 14.1.1): ignored
    if start >= size:
        raise RangeNotSatisfiable
    return Span(start=start, end=min(int(last), size - 1) if last else size - 1)


def etag(copy: OutputCopy) -> str:
    """A strong validator: the content's own SHA-256, so it changes only if the bytes do."""
    return f'"{copy.sha256}"' if copy.sha256 else ""


def range_still_applies(if_range: str, *, current_etag: str) -> bool:
    """If-Range: a player resuming asks for a range only of the file it already has part of. Only our exact
    ETag counts; a date, a weak or another tag means "send it all", which is always correct."""
    return not if_range or (bool(current_etag) and if_range.strip() == current_etag)


def ascii_fallback(name: str) -> str:
    """The name for clients that ignore `filename*`: accents folded, anything else unsafe replaced."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return names.safe_name(_FALLBACK_UNSAFE.sub("_", folded))


def content_disposition(name: str, *, inline: bool) -> str:
    """RFC 6266: a quoted ASCII `filename=` every client reads, and, when the real name is not plain ASCII,
    `filename*=UTF-8''...` (RFC 8187), which browsers prefer."""
    kind = "inline" if inline else "attachment"
    fallback = ascii_fallback(name)
    header = f'{kind}; filename="{fallback}"'
    if fallback != name:
        header += f"; filename*=UTF-8''{quote(name, safe='')}"
    return header


def redirects_to_store() -> bool:
    """Whether downloads go straight to the object store (S3 with OUTPUT_S3_REDIRECT) instead of via DubDash."""
    return storage.is_s3() and settings.OUTPUT_S3_REDIRECT


def presigned_url(*, copy: OutputCopy, disposition: str, method: str) -> str:
    """A short-lived link (querystring_expire) to the object; S3 answers it with our name and type. Signed for
    the request's own method, since a link signed for GET is refused for HEAD."""
    s3 = cast(Any, storage.outputs_storage())  # Storage.url has no `parameters`; S3Storage.url does
    parameters = {
        "ResponseContentDisposition": disposition,
        "ResponseContentType": CONTENT_TYPE,
        "ResponseCacheControl": "private",
    }
    return str(s3.url(copy.file.name, parameters=parameters, http_method=method))


def redirect(url: str) -> HttpResponseRedirect:
    response = HttpResponseRedirect(url)
    # A presigned link expires: no cache may hand the redirect out later.
    response["Cache-Control"] = "private, no-store"
    return response


def store_redirect(*, copy: OutputCopy, disposition: str, method: str) -> HttpResponseRedirect | None:
    """A redirect to a presigned link to the kept copy; None if the object is missing from the bucket
    (deleted by hand, a bucket emptied), so the caller falls back as it does for a missing local file.
    Signing a link asks S3 nothing: without this one HEAD, a missing object would be a link to S3's 404."""
    try:
        present = copy.file.storage.exists(copy.file.name)
    except Exception:  # S3 refusing the HEAD (without s3:ListBucket a missing key is 403), or out of reach
        # Which of the two cannot be told here: the signed link is still the best answer, and S3 decides.
        logger.warning("Could not ask storage whether submission %s's copy exists", copy.submission_id, exc_info=True)
        present = True
    if not present:
        _missing(copy)
        return None
    return redirect(presigned_url(copy=copy, disposition=disposition, method=method))


def _missing(copy: OutputCopy) -> None:
    # The job still says "kept": only the log tells whoever looks after the storage that its file is gone.
    logger.warning("Kept copy of submission %s is missing from storage (%s)", copy.submission_id, copy.file.name)


def kept_response(*, copy: OutputCopy, disposition: str, head: bool, range_header: str, if_range: str) -> HttpResponseBase | None:
    """The kept file (or the asked-for range of it) streamed from storage; None if the file is missing
    there (deleted by hand, a bucket emptied), so the caller can fall back to Chamelaion's link."""
    try:
        handle = copy.file.storage.open(copy.file.name, "rb")
    except FileNotFoundError:
        _missing(copy)
        return None
    try:
        return _response(handle, copy=copy, disposition=disposition, head=head, range_header=range_header, if_range=if_range)
    except BaseException:
        handle.close()
        raise


def _response(
    handle: Any, *, copy: OutputCopy, disposition: str, head: bool, range_header: str, if_range: str
) -> HttpResponseBase:
    size = int(handle.size)
    tag = etag(copy)
    headers = {"Accept-Ranges": "bytes", "Cache-Control": "private", "Content-Disposition": disposition}
    if tag:
        headers["ETag"] = tag
    try:
        span = parse_range(range_header, size=size) if range_still_applies(if_range, current_etag=tag) else None
    except RangeNotSatisfiable:
        handle.close()
        headers["Content-Range"] = f"bytes */{size}"
        return HttpResponse(status=416, headers=headers, content_type="text/plain; charset=utf-8")
    if span is not None:
        status = 206
        headers["Content-Range"] = f"bytes {span.start}-{span.end}/{size}"
    else:
        status, span = 200, Span(start=0, end=size - 1)
    headers["Content-Length"] = str(span.length)
    if head:
        # The same status and headers as GET, without reading a byte (Content-Length as set above).
        handle.close()
        return HttpResponse(status=status, headers=headers, content_type=CONTENT_TYPE)
    reader = _S3Reader(handle, span) if storage.is_s3() else _FileReader(handle, span)
    return StreamingHttpResponse(reader, status=status, headers=headers, content_type=CONTENT_TYPE)


class _FileReader:
    """The span of a local file, CHUNK_BYTES at a time. Django calls close() when the response is closed
    (sent, or the client went away), which closes the file even if it was never read."""

    def __init__(self, handle: Any, span: Span):
        self._handle = handle
        self._left = span.length
        handle.seek(span.start)

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._left <= 0:
            raise StopIteration
        chunk = self._handle.read(min(CHUNK_BYTES, self._left))
        if not chunk:  # shorter than when measured: end early rather than loop
            raise StopIteration
        self._left -= len(chunk)
        return chunk

    def close(self) -> None:
        self._handle.close()


class _S3Reader:
    """The span of an S3 object, asked of S3 as that range. Reading through S3File would first download the
    whole object into a buffer that, with django-storages' defaults, stays in memory."""

    def __init__(self, handle: Any, span: Span):
        self._handle = handle
        self._body: Any = None
        self._chunks: Iterator[bytes] = iter(())
        if span.length > 0:
            # S3File.obj is the boto3 Object, already looked up (HEAD) when the file was opened.
            self._body = handle.obj.get(Range=f"bytes={span.start}-{span.end}")["Body"]
            self._chunks = self._body.iter_chunks(CHUNK_BYTES)

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks

    def close(self) -> None:
        if self._body is not None:
            self._body.close()
        self._handle.close()
