"""What comes back from the Chamelaion API: the failures a call can end in, and the replies DubDash reads,
made fit to store on the way in (part of the client, submissions.chamelaion, which re-exports every name).

Every value a reply carries is cleaned here, once, because every path that stores upstream data starts
from a parsed reply: the worker's rounds, "Refresh now", a send that adopts a job found by reference id,
the request id a send gets back, and importing the account's other jobs. The contract types these
fields as free strings, and one NUL byte or one over-long value used to fail the whole refresh round on
PostgreSQL. No Django here: the sizes below mirror the columns of submissions.models.Submission, and a
test checks that they agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

# The columns these values go into.
REQUEST_ID_MAX_LENGTH = 64
REFERENCE_ID_MAX_LENGTH = 128
STATUS_MAX_LENGTH = 64
# Text columns hold any length; these caps keep a page readable and a runaway reply from filling the
# database. 64 KiB is far beyond any real link (browsers and CDNs stop well before), not a column limit.
ERROR_MESSAGE_MAX_LENGTH = 5_000
OUTPUT_URL_MAX_LENGTH = 64 * 1024
TRUNCATED = "… [truncated]"

# C0 control characters but tab and line feed: PostgreSQL cannot store NUL at all, and none of the others
# means anything in a status, a message or an id. Lone surrogates (JSON's "\ud800") are no UTF-8 text:
# a database driver refuses to encode them.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f]")
_ID_CONTROLS = re.compile(r"[\x00-\x1f]")
_SURROGATES = re.compile(r"[\ud800-\udfff]")


# --- Failures -------------------------------------------------------------------------------------


class ChamelaionError(Exception):
    """Base class: `user_message` is safe to show; `retryable` says whether trying again later can help;
    `may_have_reached_server` says a job may exist even though no request_id came back."""

    retryable = False
    may_have_reached_server = False
    default_message = "The Chamelaion API could not handle the request."

    def __init__(self, detail: str = "", *, status_code: int | None = None):
        self.detail = detail  # the upstream message, or what went wrong on the wire
        self.status_code = status_code
        super().__init__(self.user_message)

    @property
    def user_message(self) -> str:
        return self.default_message


class BadRequest(ChamelaionError):
    @property
    def user_message(self) -> str:
        return f"Chamelaion refused the request as invalid: “{self.detail}”. Check the inputs and send it again."


class Unauthorized(ChamelaionError):
    default_message = (
        "Chamelaion rejected DubDash's API key. An administrator must fix the key; nothing can be sent until then."
    )


class NotFound(ChamelaionError):
    default_message = "Chamelaion has no such job on this account."


class QuotaExhausted(ChamelaionError):
    default_message = (
        "The Chamelaion plan's quota is used up (token limit reached). Nothing can be sent until an "
        "administrator changes the plan."
    )


class RateLimited(ChamelaionError):
    retryable = True

    def __init__(self, detail: str = "", *, status_code: int | None = 429, retry_after: float | None = None):
        self.retry_after = retry_after
        super().__init__(detail, status_code=status_code)

    @property
    def user_message(self) -> str:
        wait = f" It asked to wait {self.retry_after:g} seconds." if self.retry_after else ""
        return f"Chamelaion is receiving too many requests right now (rate limit).{wait}"


class ServerError(ChamelaionError):
    retryable = True
    may_have_reached_server = True
    default_message = (
        "Chamelaion had an internal problem. Before sending again DubDash checks whether the job was "
        "created anyway, so it is never sent twice."
    )


class Unreachable(ChamelaionError):
    """The network failed. Whether the request got to the server depends on when it failed."""

    retryable = True

    def __init__(self, detail: str = "", *, may_have_reached_server: bool):
        self.may_have_reached_server = may_have_reached_server
        super().__init__(detail)

    @property
    def user_message(self) -> str:
        if self.may_have_reached_server:
            return (
                "The connection to Chamelaion broke before it answered, so the job may or may not have been "
                "created. Before sending again DubDash checks whether it exists, so it is never sent twice."
            )
        return "DubDash could not reach Chamelaion (network problem). Nothing was sent."


class MalformedReply(ChamelaionError):
    retryable = True
    may_have_reached_server = True
    default_message = (
        "Chamelaion answered with something DubDash does not understand. Before sending again DubDash "
        "checks whether the job was created anyway."
    )


class UnusableId(ChamelaionError, ValueError):
    """An id the client refuses to put in a request path, before any request: an empty one, or one made
    only of dots. "." and ".." are path segments that mean "this folder" and "the folder above": urllib3
    resolves them before sending (GET /v1/lipsync/requests/.. goes out as /v1/lipsync/, a 404) and so do
    servers, even percent-encoded. Such a job could never be looked up, so it is never sent either."""

    @property
    def user_message(self) -> str:
        return (
            f"The reference id “{self.detail}” cannot be used with Chamelaion: an id made only of dots cannot be "
            "looked up, so DubDash could not tell whether the job was created. Give it another reference id."
        )


# --- Replies --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LipsyncRequest:
    id: str
    status: str
    created_at: datetime | None
    reference_id: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    output_url: str = ""
    error_message: str = ""
    # Why a reported output link was not kept (output_url is then blank), in words for the job's page.
    output_problem: str = ""

    @classmethod
    def from_json(cls, data: Any) -> LipsyncRequest:
        if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
            raise MalformedReply("a lipsync request without an id")
        request_id = usable_id(data["id"], limit=REQUEST_ID_MAX_LENGTH)
        if not request_id:
            # Cut or cleaned, an id names another job or none: better one unreadable reply than a job
            # followed under the wrong id.
            raise MalformedReply("a lipsync request whose id cannot be stored as it is")
        if not isinstance(data.get("status"), str):
            raise MalformedReply("a lipsync request without a status")
        output_url, output_problem = _output(data.get("output_url"))
        return cls(
            id=request_id,
            status=capped(storable(data["status"]).strip().lower(), limit=STATUS_MAX_LENGTH),
            created_at=_parse_time(data.get("created_at")),
            # One that cannot be stored as it is cannot be one of DubDash's own (which are checked before they
            # are sent), so nothing is matched by it: the job is kept without it.
            reference_id=usable_id(data.get("reference_id"), limit=REFERENCE_ID_MAX_LENGTH),
            started_at=_parse_time(data.get("started_at")),
            finished_at=_parse_time(data.get("finished_at")),
            output_url=output_url,
            error_message=capped(storable(_optional_str(data.get("error_message"))), limit=ERROR_MESSAGE_MAX_LENGTH),
            output_problem=output_problem,
        )


@dataclass(frozen=True)
class RequestPage:
    requests: list[LipsyncRequest]
    limit: int
    offset: int
    total: int
    size: int  # items on the page, counting unreadable ones: where the next page starts
    unreadable: int = 0


def request_id_of(data: Any) -> str:
    """The request id of a generate reply, if DubDash can store and look it up as it is."""
    if not isinstance(data, dict) or not isinstance(data.get("request_id"), str) or not data["request_id"]:
        raise MalformedReply("a generate reply without a request_id")
    request_id = usable_id(data["request_id"], limit=REQUEST_ID_MAX_LENGTH)
    if not request_id:
        raise MalformedReply("a generate reply whose request_id cannot be stored as it is")
    return request_id


# --- Cleaning -------------------------------------------------------------------------------------


def storable(text: str) -> str:
    """`text` without the characters no database column should get: C0 controls (but tab and line
    feed) removed, lone surrogates replaced by U+FFFD."""
    return _SURROGATES.sub("\ufffd", _CONTROLS.sub("", text))


def capped(text: str, *, limit: int) -> str:
    """`text` cut to at most `limit` characters, saying so at its end when it was cut."""
    return text if len(text) <= limit else text[: limit - len(TRUNCATED)] + TRUNCATED


def usable_id(value: Any, *, limit: int) -> str:
    """An identifier exactly as sent, or "" when it cannot be kept and used as it is: too long for its
    column, with a control character or a lone surrogate, or made only of dots (see UnusableId)."""
    if not isinstance(value, str) or not value or len(value) > limit or not value.strip("."):
        return ""
    if _ID_CONTROLS.search(value) or _SURROGATES.search(value):
        return ""
    return value


def _output(value: Any) -> tuple[str, str]:
    """(link, why not): the finished video's link when it is an http(s) link DubDash can keep and play;
    otherwise no link, and the reason for the job's page."""
    if not isinstance(value, str) or not value.strip():
        return "", ""
    url = value.strip()
    if len(url) > OUTPUT_URL_MAX_LENGTH:
        return "", (
            f"Chamelaion reported a link to the finished video that is {len(url):,} characters long, far "
            "longer than any real link, so DubDash did not keep it and cannot play the video."
        )
    try:
        parts = urlsplit(url)
        web = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
    except ValueError:
        web = False
    if not web or _ID_CONTROLS.search(url) or _SURROGATES.search(url) or any(c.isspace() for c in url):
        return "", (
            "Chamelaion reported a link to the finished video that is not a web address (http or https), so "
            "DubDash did not keep it and cannot play the video."
        )
    return url, ""


def _optional_str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _parse_time(value: Any) -> datetime | None:
    """The contract's times are UTC with an offset. One without (it cannot be compared with the others) or
    outside what UTC can hold (9999-12-31T23:59:59-14:00) makes the reply unreadable, not the round."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            raise ValueError("no UTC offset")
        return moment.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise MalformedReply(f"unreadable date-time {storable(value[:40])!r}") from exc
