"""Fetching a finished job's output from its output_url (part of the client: the only code that calls
Chamelaion, its file links included). Streamed into a file the caller gives, with a size cap and a time
limit, checksummed on the way (SHA-256, and the CRC-32 a ZIP needs): memory stays at one chunk whatever
the video's size.

Each way it can fail has its own exception, saying whether trying again can help and what to tell a person.
The API key is never sent: the link is signed by itself and may point at another origin (a CDN)."""

from __future__ import annotations

import hashlib
import threading
import time
import zlib
from dataclasses import dataclass
from typing import IO

import requests
import urllib3

from submissions.chamelaion.replies import ChamelaionError

CHUNK_BYTES = 4 * 1024 * 1024  # large: fewer trips through Python, so polling in the same process barely notices
# An MP4 (ISO base media file) begins with a box whose type, at bytes 4 to 8, is "ftyp".
MP4_SIGNATURE = b"ftyp"


class DownloadFailed(ChamelaionError):
    default_message = "DubDash could not download the finished video from Chamelaion."


class OutputLinkExpired(DownloadFailed):
    """403, 404 or 410: the signed link has expired, or the provider deleted the output."""

    @property
    def user_message(self) -> str:
        return (
            f"Chamelaion's link to the video no longer works (HTTP {self.status_code}): such links expire. "
            "Download it from Chamelaion's own platform if it is still there, or make a new take."
        )


class OutputTooLarge(DownloadFailed):
    def __init__(self, detail: str = "", *, max_bytes: int):
        self.max_bytes = max_bytes
        super().__init__(detail)

    @property
    def user_message(self) -> str:
        return (
            f"The video is larger than DubDash keeps ({self.max_bytes / 1024**2:,.0f} MB, OUTPUT_MAX_BYTES). "
            "An administrator can raise the limit, then try again."
        )


class OutputNotVideo(DownloadFailed):
    @property
    def user_message(self) -> str:
        return (
            "Chamelaion's link answered with something that is not an MP4 video (for example a web page). "
            "Try again later; if it keeps happening, make a new take."
        )


class DownloadInterrupted(DownloadFailed):
    """The network, a timeout, or a passing server error: trying again later can help."""

    retryable = True

    @property
    def user_message(self) -> str:
        return f"The download of the video from Chamelaion broke off ({self.detail}). DubDash tries again by itself."


@dataclass(frozen=True)
class Downloaded:
    size: int
    sha256: str
    crc32: int


def download(
    session: requests.Session,
    url: str,
    *,
    into: IO[bytes],
    max_bytes: int,
    timeout: tuple[float, float],
    max_seconds: float,
    user_agent: str,
    max_bytes_per_second: float = 0,
    stop: threading.Event | None = None,
) -> Downloaded:
    """Stream `url` into `into`; the size and checksums of what was written. Raises a DownloadFailed.
    `max_bytes_per_second` (0: no limit) paces the download, so that copying a large video takes a bounded
    share of the machine and work beside it (polling, sending) goes on at its usual speed.

    `max_seconds` holds even against a server that trickles: each read returns whatever has arrived (read1),
    so the deadline is checked at least once per read timeout, never only once per full chunk. Setting
    `stop` (the worker is shutting down) ends the download within the same bound."""
    stop = stop or threading.Event()
    started = time.monotonic()
    deadline = started + max_seconds
    digest = hashlib.sha256()
    crc = 0
    size = 0
    try:
        with session.get(url, stream=True, timeout=timeout, headers={"User-Agent": user_agent}) as response:
            status = response.status_code
            if status in (401, 403, 404, 410):
                raise OutputLinkExpired(f"HTTP {status}", status_code=status)
            if status != 200:
                raise DownloadInterrupted(f"HTTP {status}", status_code=status)
            announced = response.headers.get("Content-Length", "")
            if announced.isdigit() and int(announced) > max_bytes:
                raise OutputTooLarge(f"announced {announced} bytes", max_bytes=max_bytes)
            head = b""
            while chunk := response.raw.read1(CHUNK_BYTES, decode_content=True):
                if stop.is_set():
                    raise DownloadInterrupted("the worker is stopping")
                if len(head) < 8:
                    head += chunk[: 8 - len(head)]
                    if len(head) >= 8 and head[4:8] != MP4_SIGNATURE:
                        raise OutputNotVideo(f"begins with {head[:8]!r}")
                size += len(chunk)
                if size > max_bytes:
                    raise OutputTooLarge(f"more than {max_bytes} bytes", max_bytes=max_bytes)
                if time.monotonic() > deadline:
                    raise DownloadInterrupted(f"took longer than {max_seconds:g} s")
                digest.update(chunk)
                crc = zlib.crc32(chunk, crc)
                into.write(chunk)
                if max_bytes_per_second > 0:
                    ahead = size / max_bytes_per_second - (time.monotonic() - started)
                    # Never paced past the deadline, and a stop wakes the wait at once.
                    if ahead > 0 and stop.wait(min(ahead, max(0.0, deadline - time.monotonic()))):
                        raise DownloadInterrupted("the worker is stopping")
    # Refused, reset, timed out, cut short: requests' errors while connecting, urllib3's while reading raw.
    except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError) as exc:
        raise DownloadInterrupted(type(exc).__name__) from exc
    if size < 8:
        raise OutputNotVideo(f"only {size} bytes")
    return Downloaded(size=size, sha256=digest.hexdigest(), crc32=crc)
