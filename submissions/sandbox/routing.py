"""HTTP routing from tables. A `Site` hands each request to the `Area` that owns its path; an area's
`RouteTable` maps a method and a path pattern to a handler and answers 404 and 405 itself. Handlers get a
`Request` and return a `Response`, or raise ApiError (an error answer) or DropConnection (no answer)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import unquote

NOT_FOUND = "not found"
METHOD_NOT_ALLOWED = "method not allowed"


class ApiError(Exception):
    """An answer of the form {"error": message}, raised from deep inside a handler."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class DropConnection(Exception):
    """Close the connection without writing a single byte of response."""


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # as received: percent-encoding and dot segments untouched, no query string
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]  # lower-cased names, the first value of each, as http.client's get() gives
    # The body is read only on demand: a handler refuses some requests before reading theirs.
    read_body: Callable[[], bytes]

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    send_body: bool = True  # False answers HEAD: the headers (Content-Length too) of the full answer only
    # A Content-Length larger than the body: the connection closes after the body, cut short (a fault).
    announced_length: int | None = None
    # Seconds between bytes: the body trickles out a byte at a time (a fault), until the client hangs up.
    trickle_seconds: float | None = None


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return Response(status, body, "application/json", headers or {})


def error_response(error: ApiError) -> Response:
    return json_response(error.status, {"error": error.message}, error.headers)


class Area(Protocol):
    """One part of the site (the API, the files, the control endpoints), chosen by the path as received."""

    def owns(self, path: str) -> bool: ...

    def respond(self, request: Request) -> Response:
        """The answer; DropConnection to hang up instead."""
        ...

    def answering(self, status: int) -> None:
        """Called just before an answer from this area goes out (before, so that a client reading stats
        right after the answer sees it counted)."""
        ...


class NowhereArea:
    """Every path no other area owns."""

    def owns(self, path: str) -> bool:
        return True

    def respond(self, request: Request) -> Response:
        return error_response(ApiError(404, NOT_FOUND))

    def answering(self, status: int) -> None:
        pass


_NOWHERE = NowhereArea()


@dataclass(frozen=True)
class Site:
    areas: Sequence[Area]
    log: Callable[[str], None]

    def area_for(self, path: str) -> Area:
        return next((area for area in self.areas if area.owns(path)), _NOWHERE)


H = TypeVar("H")


@dataclass(frozen=True)
class Route(Generic[H]):
    method: str
    pattern: re.Pattern[str]
    handler: H
    in_allow_header: bool = True  # False for a convenience that a 405's Allow header keeps quiet about


def route(method: str, pattern: str, handler: H, *, in_allow_header: bool = True) -> Route[H]:
    """A table row: `pattern` must match the whole path; its groups become the handler's arguments."""
    return Route(method, re.compile(pattern), handler, in_allow_header)


@dataclass(frozen=True)
class Found(Generic[H]):
    route: Route[H] | None  # None: no route for this method (or, when `allowed` is empty, for this path)
    args: tuple[str, ...]  # the pattern's groups, still percent-encoded
    allowed: tuple[str, ...] = ()  # when route is None: the methods this path has routes for

    def handler_or_raise(self) -> H:
        """The handler, or the 404 or 405 (with its Allow header) for a request no route takes."""
        if self.route is not None:
            return self.route.handler
        if not self.allowed:
            raise ApiError(404, NOT_FOUND)
        raise ApiError(405, METHOD_NOT_ALLOWED, {"Allow": ", ".join(self.allowed)})


class RouteTable(Generic[H]):
    """Method + path pattern -> handler; the first route whose pattern and method match wins."""

    def __init__(self, routes: Iterable[Route[H]]) -> None:
        self.routes = list(routes)

    def find(self, method: str, path: str) -> Found[H]:
        allowed: list[str] = []
        for candidate in self.routes:
            match = candidate.pattern.fullmatch(path)
            if match is None:
                continue
            if candidate.method == method:
                return Found(candidate, match.groups())
            if candidate.in_allow_header and candidate.method not in allowed:
                allowed.append(candidate.method)
        return Found(None, (), tuple(allowed))


def resolve_dot_segments(path: str) -> str:
    """`path` with "." and ".." segments resolved as RFC 3986 (5.2.4) says, percent-encoded ones too:
    urllib3 removes them before sending, and servers such as Go's ServeMux decode then clean the path,
    so a job id of ".." can never reach the route that would look it up."""
    segments = path.split("/")
    kept: list[str] = []
    for index, segment in enumerate(segments):
        decoded = unquote(segment)
        last = index == len(segments) - 1
        if decoded == "..":
            if len(kept) > 1:
                kept.pop()
        elif decoded != ".":
            kept.append(segment)
            continue
        if last:
            kept.append("")  # "/a/b/.." is the folder "/a/", with its slash
    return "/".join(kept) or "/"
