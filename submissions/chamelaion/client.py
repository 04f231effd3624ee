"""The client: the only code that talks to the Chamelaion API (contract: shared/chamelaion-api.md).

Every failure becomes one exception class that says whether retrying can help, whether the request may
have reached the server (so a job may exist), and a sentence a user understands. The API key is sent in a
header only: it never appears in a URL, a log line or an exception message.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Mapping
from typing import IO, Any
from urllib.parse import quote

import requests
import urllib3

from submissions.chamelaion.downloads import Downloaded, download
from submissions.chamelaion.multipart import MultipartStream
from submissions.chamelaion.replies import (
    BadRequest,
    ChamelaionError,
    LipsyncRequest,
    MalformedReply,
    NotFound,
    QuotaExhausted,
    RateLimited,
    RequestPage,
    ServerError,
    Unauthorized,
    Unreachable,
    UnusableId,
    request_id_of,
)

USER_AGENT = "DubDash/0.1"
LIST_PAGE_LIMIT = 100


# --- The client -----------------------------------------------------------------------------------

# One session per thread: connections are kept alive between calls, and requests.Session is not
# guaranteed to be thread-safe under the threaded dev server and worker.
_sessions = threading.local()


def _thread_session() -> requests.Session:
    session = getattr(_sessions, "session", None)
    if session is None:
        session = requests.Session()
        _sessions.session = session
    return session


class ChamelaionClient:
    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        user_agent: str = USER_AGENT,
        session: requests.Session | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.user_agent = user_agent
        self._api_key = api_key
        self.timeout = (connect_timeout, read_timeout)
        self._session = session
        self.calls = 0  # requests made by this client: the worker reports it, the benchmark checks it

    def __repr__(self) -> str:  # never show the key, even in a debugger or an error report
        return f"<ChamelaionClient {self.base_url}>"

    @property
    def session(self) -> requests.Session:
        return self._session or _thread_session()

    # Endpoints ------------------------------------------------------------------------------------

    def generate(
        self,
        *,
        video_url: str,
        audio_url: str,
        reference_id: str,
        disable_active_speaker_detection: bool = False,
    ) -> str:
        _check_reference_id(reference_id)
        body = {
            "inputs": [{"type": "video", "url": video_url}, {"type": "audio", "url": audio_url}],
            "disable_active_speaker_detection": disable_active_speaker_detection,
            "reference_id": reference_id,
        }
        return request_id_of(self._call("POST", "/v1/lipsync/generate", json=body))

    def generate_with_media(
        self,
        *,
        video: IO[bytes],
        audio: IO[bytes],
        reference_id: str,
        disable_active_speaker_detection: bool = False,
        video_name: str = "video.mp4",
        audio_name: str = "audio",
    ) -> str:
        _check_reference_id(reference_id)
        # Streamed from the open files (requests' files= would build the whole body in memory first).
        body = MultipartStream(
            fields={
                "reference_id": reference_id,
                "disable_active_speaker_detection": "true" if disable_active_speaker_detection else "false",
            },
            files=[("video", video_name, video), ("audio", audio_name, audio)],
        )
        return request_id_of(
            self._call(
                "POST",
                "/v1/lipsync/generate-with-media",
                data=body,
                extra_headers={"Content-Type": body.content_type},
            )
        )

    def get_request(self, id_or_reference_id: str) -> LipsyncRequest:
        path = f"/v1/lipsync/requests/{_path_segment(id_or_reference_id)}"
        return LipsyncRequest.from_json(self._call("GET", path))

    def find_by_reference_id(self, reference_id: str) -> LipsyncRequest | None:
        try:
            return self.get_request(reference_id)
        except NotFound:
            return None

    def list_requests(self, *, limit: int = LIST_PAGE_LIMIT, offset: int = 0, reference_id: str = "") -> RequestPage:
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if reference_id:
            params["reference_id"] = reference_id
        data = self._call("GET", "/v1/lipsync/requests", params=params)
        try:
            items, pagination = data["data"], data["pagination"]
            limit, offset, total = int(pagination["limit"]), int(pagination["offset"]), int(pagination["total"])
            if not isinstance(items, list):
                raise TypeError("data is not a list")
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedReply("a request list of the wrong shape") from exc
        # One unreadable job must not hide the others on its page.
        parsed, unreadable = [], 0
        for item in items:
            try:
                parsed.append(LipsyncRequest.from_json(item))
            except MalformedReply:
                unreadable += 1
        return RequestPage(parsed, limit, offset, total, size=len(items), unreadable=unreadable)

    def me(self) -> str:
        data = self._call("GET", "/v1/users/me")
        name = data.get("name") if isinstance(data, dict) else None
        if not isinstance(name, str):
            raise MalformedReply("a user reply without a name")
        return name

    def download_output(
        self,
        url: str,
        *,
        into: IO[bytes],
        max_bytes: int,
        max_seconds: float,
        max_bytes_per_second: float = 0,
        stop: threading.Event | None = None,
    ) -> Downloaded:
        """Stream a finished job's output into `into` (see downloads.download). The key is not sent."""
        self.calls += 1
        return download(
            self.session, url, into=into, max_bytes=max_bytes, timeout=self.timeout, max_seconds=max_seconds,
            user_agent=self.user_agent, max_bytes_per_second=max_bytes_per_second, stop=stop,
        )

    def health(self) -> bool:
        data = self._call("GET", "/health", authenticated=False)
        return isinstance(data, dict) and data.get("status") == "ok"

    # Plumbing -------------------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        authenticated: bool = True,
        extra_headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> Any:
        self.calls += 1
        headers = {**(extra_headers or {}), "Accept": "application/json", "User-Agent": self.user_agent}
        if authenticated:
            headers["x-api-key"] = self._api_key
        try:
            response = self.session.request(
                method, self.base_url + path, headers=headers, timeout=self.timeout, **kwargs
            )
        except requests.exceptions.ConnectTimeout as exc:
            raise Unreachable("connection timed out", may_have_reached_server=False) from exc
        except requests.exceptions.SSLError as exc:
            # A certificate refused at the handshake sends nothing; any other TLS failure may come after the
            # request was delivered (a bad record in the answer), so the job may exist.
            refused = _certificate_refused(exc)
            reason = "TLS certificate refused" if refused else "TLS failed"
            raise Unreachable(reason, may_have_reached_server=not refused) from exc
        except requests.exceptions.ConnectionError as exc:
            raise Unreachable("connection failed", may_have_reached_server=not _never_connected(exc)) from exc
        except requests.exceptions.RequestException as exc:  # ReadTimeout and friends: the request was sent
            raise Unreachable(type(exc).__name__, may_have_reached_server=True) from exc
        return _decode(response)


class KeyUnusableClient(ChamelaionClient):
    """Stands in while the deployment's key cannot be used (a stored key that cannot be decrypted). Every
    call that needs the key fails as a rejected key does, so administrators see the banner and sending and
    polling pause; another key or the sandbox is never used instead: jobs must not go silently elsewhere."""

    def __init__(self, *, problem: str, **kwargs: Any):
        super().__init__(api_key="", **kwargs)
        self.problem = problem

    def _call(self, method: str, path: str, *, authenticated: bool = True, **kwargs: Any) -> Any:
        if not authenticated:
            return super()._call(method, path, authenticated=False, **kwargs)
        self.calls += 1
        raise Unauthorized(self.problem)


def _path_segment(value: str) -> str:
    """One id as one path segment, before any request is made. Percent-encoded whole, so a "/", "%", "?"
    or "#" in it stays part of it; "." and ".." are refused (UnusableId), since no encoding keeps them
    from being resolved as "this folder" and "the folder above" on the way."""
    if not value or not value.strip("."):
        raise UnusableId(value)
    return quote(value, safe="")


def _check_reference_id(reference_id: str) -> None:
    """A job is only sent with a reference id it can be looked up by, should the answer be lost."""
    if reference_id and not reference_id.strip("."):
        raise UnusableId(reference_id)


def _certificate_refused(exc: BaseException) -> bool:
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:  # the ssl error sits somewhere in requests' and urllib3's wrapping
        error = pending.pop()
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, ssl.SSLCertVerificationError):
            return True
        linked = [error.__cause__, error.__context__, getattr(error, "reason", None), *error.args]
        pending += [link for link in linked if isinstance(link, BaseException)]
    return False


def _never_connected(exc: requests.exceptions.ConnectionError) -> bool:
    """Only a connection that was never made (refused, unknown host) proves the request did not arrive;
    one that broke after connecting may have delivered it."""
    cause = exc.args[0] if exc.args else None
    return isinstance(getattr(cause, "reason", None), urllib3.exceptions.NewConnectionError)


_ERRORS_BY_STATUS: dict[int, type[ChamelaionError]] = {
    400: BadRequest,
    401: Unauthorized,
    404: NotFound,
    412: QuotaExhausted,
}


def _decode(response: requests.Response) -> Any:
    status = response.status_code
    try:
        data = response.json()
    except ValueError:
        data = None
    message = data.get("error") if isinstance(data, dict) and isinstance(data.get("error"), str) else ""
    if 200 <= status < 300:
        if data is None:
            raise MalformedReply("a reply that is not JSON", status_code=status)
        return data
    if status == 429:
        raise RateLimited(message or "rate limit exceeded", retry_after=_retry_after(response))
    if status in _ERRORS_BY_STATUS:
        raise _ERRORS_BY_STATUS[status](message or f"HTTP {status}", status_code=status)
    if status >= 500:
        raise ServerError(message or f"HTTP {status} without a JSON error", status_code=status)
    raise MalformedReply(message or f"unexpected HTTP {status}", status_code=status)


def _retry_after(response: requests.Response) -> float | None:
    try:
        seconds = float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None  # an HTTP-date or garbage: the caller falls back to its own backoff
    return seconds if seconds >= 0 else None
