"""The Chamelaion API contract (shared/chamelaion-api.md): how requests are validated, with the provider's own
error messages, and what a LipsyncRequest looks like on the wire."""

from __future__ import annotations

import email.message
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from .media import output_url
from .multipart import Part, form_file, form_text, parse_multipart
from .routing import ApiError
from .store import Account, Job, JobSpec

MAX_REFERENCE_ID = 128
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100

INVALID_BODY = "invalid request body"
INTERNAL_ERROR = "internal error"
NOT_FOUND = "lipsync request not found"
TOKEN_LIMIT_REACHED = "token limit reached"  # noqa: S105 - an error message, not a secret
RATE_LIMIT_EXCEEDED = "rate limit exceeded"
INVALID_TOKEN = "invalid token"  # noqa: S105 - an error message, not a secret

# Go's strconv.ParseBool, which reads the upload endpoint's flag.
_GO_BOOLS = {"1": True, "t": True, "true": True, "0": False, "f": False, "false": False}


def bad_body() -> ApiError:
    return ApiError(400, INVALID_BODY)


def rate_limited(retry_after: int) -> ApiError:
    return ApiError(429, RATE_LIMIT_EXCEEDED, {"Retry-After": str(retry_after)})


# --------------------------------------------------------------------------- authentication


def presented_token(headers: Mapping[str, str]) -> str:
    """The token a request carries (x-api-key first, else a Bearer token), or the contract's 401.
    `headers` has lower-cased names."""
    api_key = headers.get("x-api-key")
    if api_key is not None:
        token = api_key.strip()
    else:
        authorization = headers.get("authorization")
        if authorization is None:
            raise ApiError(401, "missing authorization header")
        scheme, _, rest = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            raise ApiError(401, "invalid authorization format")
        token = rest.strip()
    if not token:
        raise ApiError(401, "missing token")
    return token


def usable_account(account: Account | None) -> Account:
    """The account of a presented token, or the contract's 401 for an unknown or revoked one."""
    if account is None:
        raise ApiError(401, INVALID_TOKEN)
    if account.revoked:
        raise ApiError(401, "unauthorized")
    return account


def check_quota(account: Account) -> None:
    if account.quota_used_up:
        raise ApiError(412, TOKEN_LIMIT_REACHED)


# --------------------------------------------------------------------------- generation requests


def _media_type(content_type: str | None) -> tuple[str, email.message.Message]:
    """Lower-cased media type ("" when absent) and a Message for reading its parameters."""
    holder = email.message.Message()
    if not content_type:
        return "", holder
    holder["Content-Type"] = content_type
    return content_type.split(";", 1)[0].strip().lower(), holder


def _is_http_url(value: Any) -> bool:
    if not isinstance(value, str) or not value or any(ch.isspace() for ch in value):
        return False
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(host)


def check_reference_id(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_REFERENCE_ID:
        raise bad_body()
    return value


def json_object(body: bytes) -> dict[str, Any]:
    """A request body that must be one JSON object; anything else is the documented 400."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise bad_body() from None
    if not isinstance(payload, dict):
        raise bad_body()
    return payload


def parse_generate_json(content_type: str | None, body: bytes) -> JobSpec:
    """Validate a POST /v1/lipsync/generate body exactly as the provider does."""
    if _media_type(content_type)[0] != "application/json":
        raise ApiError(400, "content-type must be application/json")
    payload = json_object(body)
    inputs = payload.get("inputs")
    disable = payload.get("disable_active_speaker_detection")
    if not isinstance(inputs, list) or not isinstance(disable, (bool, type(None))):
        raise bad_body()
    reference_id = check_reference_id(payload.get("reference_id"))
    # Shape problems first (they would fail decoding upstream), then values.
    for item in inputs:
        if not isinstance(item, dict) or not isinstance(item.get("type", ""), str):
            raise bad_body()
        if not _is_http_url(item.get("url")):
            raise bad_body()
    if any(item.get("type") not in ("video", "audio") for item in inputs):
        raise ApiError(400, 'input type must be "video" or "audio"')
    videos = [item["url"] for item in inputs if item["type"] == "video"]
    audios = [item["url"] for item in inputs if item["type"] == "audio"]
    if len(videos) != 1:
        raise ApiError(400, "expected exactly one video input")
    if len(audios) != 1:
        raise ApiError(400, "expected exactly one audio input")
    return JobSpec(videos[0], audios[0], reference_id, bool(disable))


def _is_mp4(data: bytes) -> bool:
    return len(data) >= 8 and data[4:8] == b"ftyp"


def _is_wav_or_mp3(data: bytes) -> bool:
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return True
    if data[:3] == b"ID3":
        return True
    return len(data) >= 2 and data[0] == 0xFF and (data[1] & 0xE0) == 0xE0


def _text_field(parts: list[Part], name: str) -> str | None:
    try:
        return form_text(parts, name)
    except UnicodeDecodeError:
        raise bad_body() from None


def parse_generate_multipart(content_type: str | None, body: bytes) -> JobSpec:
    """Validate a POST /v1/lipsync/generate-with-media body."""
    media_type, holder = _media_type(content_type)
    if media_type != "multipart/form-data":
        raise ApiError(400, "content-type must be multipart/form-data")
    boundary = holder.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise bad_body()
    try:
        parts = parse_multipart(body, boundary)
    except ValueError:
        raise bad_body() from None
    video, audio = form_file(parts, "video"), form_file(parts, "audio")
    if video is None:
        raise ApiError(400, "missing video file")
    if audio is None:
        raise ApiError(400, "missing audio file")
    if not _is_mp4(video.content):
        raise ApiError(400, "video must be an MP4 file")
    if not _is_wav_or_mp3(audio.content):
        raise ApiError(400, "audio must be a WAV or MP3 file")
    flag = _text_field(parts, "disable_active_speaker_detection")
    if flag and flag.strip().lower() not in _GO_BOOLS:
        raise bad_body()
    disable = _GO_BOOLS.get(flag.strip().lower(), False) if flag else False
    reference_id = check_reference_id(_text_field(parts, "reference_id"))
    return JobSpec(f"upload:{video.filename}", f"upload:{audio.filename}", reference_id, disable)


# --------------------------------------------------------------------------- listing


def _non_negative_int(query: Mapping[str, list[str]], key: str) -> int | None:
    raw = (query.get(key) or [""])[0].strip()
    if raw == "":
        return None
    if not raw.isdigit() or not raw.isascii():
        raise bad_body()
    return int(raw)


def page_request(query: Mapping[str, list[str]]) -> tuple[int, int, str | None]:
    """(limit, offset, reference_id) from a list request's query; a limit of 0 means the default."""
    limit = _non_negative_int(query, "limit") or DEFAULT_PAGE_SIZE
    offset = _non_negative_int(query, "offset") or 0
    reference_id = (query.get("reference_id") or [""])[0] or None
    return min(limit, MAX_PAGE_SIZE), offset, reference_id


# --------------------------------------------------------------------------- replies


def iso_time(timestamp: float) -> str:
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def lipsync_request(job: Job, now: float, root_url: str) -> dict[str, Any]:
    """The LipsyncRequest JSON object at simulated time `now`; keys that are not known yet are left out."""
    status, started, finished = job.timeline(now)
    data: dict[str, Any] = {"id": job.id, "created_at": iso_time(job.created_at), "status": status}
    if job.spec.reference_id is not None:
        data["reference_id"] = job.spec.reference_id
    if started is not None:
        data["started_at"] = iso_time(started)
    if finished is not None:
        data["finished_at"] = iso_time(finished)
    if status == "completed":
        data["output_url"] = output_url(root_url, job.id)
    elif status == "failed":
        data["error_message"] = job.error_message()
    return data
