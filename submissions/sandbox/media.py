"""The files the sandbox serves under /files/ (no auth, no faults): the sample inputs and, for each completed
job, its "lip-synced" output (the sample video again), with byte ranges so that browsers can play them."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from .routing import NOT_FOUND, ApiError, Request, Response, RouteTable, error_response, route

EXPIRED_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Request has expired</Message></Error>"
)
NOT_A_VIDEO_BODY = b"<!doctype html><title>Sign in</title><p>Please sign in to download this file.</p>"

MEDIA_DIR = Path(__file__).resolve().parent / "media"

SAMPLE_VIDEO = "sample-video.mp4"
SAMPLE_AUDIO_WAV = "sample-audio.wav"
SAMPLE_AUDIO_MP3 = "sample-audio.mp3"
FILES_PREFIX = "/files/"
_OUTPUT_NAME = re.compile(r"output/([0-9a-fA-F-]{36})\.mp4")


TRICKLE_SECONDS = 0.2  # between bytes, for the "trickle" output fault


@dataclass(frozen=True)
class MediaFile:
    data: bytes
    content_type: str


def load_media(folder: Path = MEDIA_DIR) -> dict[str, MediaFile]:
    """The sample files by public name; one that is missing on disk is left out."""
    wanted = {
        SAMPLE_VIDEO: ("sample.mp4", "video/mp4"),
        SAMPLE_AUDIO_WAV: ("sample.wav", "audio/wav"),
        SAMPLE_AUDIO_MP3: ("sample.mp3", "audio/mpeg"),
    }
    files: dict[str, MediaFile] = {}
    for public_name, (file_name, content_type) in wanted.items():
        path = folder / file_name
        if path.is_file():
            files[public_name] = MediaFile(path.read_bytes(), content_type)
    return files


def file_url(root_url: str, name: str) -> str:
    return f"{root_url}{FILES_PREFIX}{name}"


def output_url(root_url: str, job_id: str) -> str:
    return file_url(root_url, f"output/{job_id}.mp4")


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Inclusive (first, last) for a single "bytes=" range, None to send everything.

    Raises ApiError(416) for a well-formed but unsatisfiable range. Multi-range and
    malformed headers are ignored, which RFC 9110 allows.
    """
    if not header:
        return None
    match = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header)
    if not match or match.group(1) == match.group(2) == "":
        return None
    first_raw, last_raw = match.groups()
    unsatisfiable = ApiError(416, "range not satisfiable", {"Content-Range": f"bytes */{size}"})
    if first_raw == "":  # suffix range: the last N bytes
        length = int(last_raw)
        if length == 0 or size == 0:
            raise unsatisfiable
        return max(0, size - length), size - 1
    first = int(first_raw)
    last = int(last_raw) if last_raw else size - 1
    if first >= size:
        raise unsatisfiable
    if last < first:
        return None
    return first, min(last, size - 1)


def padded_mp4(video: bytes, size: int) -> bytes:
    free = size - len(video)
    return video + free.to_bytes(4, "big") + b"free" + bytes(free - 8)


FileHandler = Callable[[Request, str], Response]


class FilesArea:
    """/files/...: GET and HEAD only, whatever the name."""

    def __init__(
        self,
        media: Mapping[str, MediaFile],
        is_completed: Callable[[str], bool],
        output_faults: Callable[[], Mapping[str, str]] = dict,
        output_bytes: Callable[[], int] = lambda: 0,
    ) -> None:
        self.media = media
        self._is_completed = is_completed  # does a completed job of that id exist, so its output too?
        self._output_faults = output_faults  # the `outputs` knob (faults.OUTPUT_FAULTS), read per request
        self._output_bytes = output_bytes  # how large outputs are (0: the sample as it is), read per request
        self._padded: dict[int, MediaFile] = {}
        self._routes: RouteTable[FileHandler] = RouteTable(
            [route("GET", r"/files/(.*)", self._serve), route("HEAD", r"/files/(.*)", self._serve)]
        )

    def owns(self, path: str) -> bool:
        return path.startswith(FILES_PREFIX)

    def respond(self, request: Request) -> Response:
        found = self._routes.find(request.method, request.path)
        try:
            response = found.handler_or_raise()(request, *found.args)
        except ApiError as error:
            response = error_response(error)
        return replace(response, send_body=False) if request.method == "HEAD" else response

    def answering(self, status: int) -> None:
        pass

    def _serve(self, request: Request, name: str) -> Response:
        fault = self._output_fault(name)
        if fault is not None:
            return fault
        media = self._file(name)
        if media is None:
            raise ApiError(404, NOT_FOUND)
        size = len(media.data)
        headers = {"Accept-Ranges": "bytes", "Cache-Control": "no-cache", "Access-Control-Allow-Origin": "*"}
        span = byte_range(request.header("Range"), size)
        if span is None:
            return Response(200, media.data, media.content_type, headers)
        first, last = span
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
        return Response(206, media.data[first : last + 1], media.content_type, headers)

    def _output(self, size: int) -> MediaFile | None:
        """The sample video, grown to `size` bytes by a trailing "free" box (valid MP4: players skip it), so
        that benchmarks can copy outputs as large as real ones."""
        sample = self.media.get(SAMPLE_VIDEO)
        if sample is None or size <= len(sample.data) + 8:
            return sample
        if size not in self._padded:
            self._padded = {size: MediaFile(padded_mp4(sample.data, size), sample.content_type)}  # one size kept
        return self._padded[size]

    def _output_fault(self, name: str) -> Response | None:
        output = _OUTPUT_NAME.fullmatch(name)
        if not output or not self._is_completed(output.group(1).lower()):
            return None
        knob = self._output_faults()
        kind = knob.get(output.group(1).lower(), knob.get("*"))
        if kind == "expired":
            return Response(403, EXPIRED_BODY, "application/xml")
        if kind == "gone":
            raise ApiError(404, NOT_FOUND)
        if kind == "not-mp4":
            return Response(200, NOT_A_VIDEO_BODY, "text/html; charset=utf-8")
        if kind == "500":
            raise ApiError(500, "internal error")
        if kind == "truncated":
            video = self.media[SAMPLE_VIDEO].data
            # Announces the whole video, sends half, then the connection closes.
            return Response(200, video[: len(video) // 2], "video/mp4", announced_length=len(video))
        if kind == "trickle":
            return Response(200, self.media[SAMPLE_VIDEO].data, "video/mp4", trickle_seconds=TRICKLE_SECONDS)
        return None

    def _file(self, name: str) -> MediaFile | None:
        output = _OUTPUT_NAME.fullmatch(name)
        if output:
            if not self._is_completed(output.group(1).lower()):
                return None
            return self._output(self._output_bytes())
        return self.media.get(name)
