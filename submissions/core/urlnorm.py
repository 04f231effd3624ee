"""The form of a URL used to recognise the same input twice. Jobs are always sent with the URL as typed;
this only decides whether two typed URLs name the same file (RFC 3986, section 6.2.2: syntax-based
normalisation, plus dropping the fragment, which never reaches the server)."""

from __future__ import annotations

import re
from urllib.parse import SplitResult, urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
UNRESERVED = re.compile(r"[A-Za-z0-9._~-]")
PERCENT_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")


def normalise_url(url: str) -> str:
    """`HTTP://CDN.example.com:80/a/./b/../c.mp4#t=1` and `http://cdn.example.com/a/c.mp4` give the same
    string. Anything that does not parse as a URL is returned stripped, unchanged otherwise."""
    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # a broken IPv6 literal or port: compare it as typed
        return url
    scheme = parts.scheme.lower()
    if not scheme or not parts.netloc:
        return url
    host = (parts.hostname or "").rstrip(".")
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    netloc = host if port is None or port == DEFAULT_PORTS.get(scheme) else f"{host}:{port}"
    userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
    if userinfo:
        netloc = f"{userinfo}@{netloc}"
    path = _remove_dot_segments(_normalise_escapes(parts.path)) or "/"
    return SplitResult(scheme, netloc, path, _normalise_escapes(parts.query), "").geturl()


def _normalise_escapes(text: str) -> str:
    """%7e and ~ are the same character; %2f and %2F the same escape."""

    def one(match: re.Match[str]) -> str:
        character = chr(int(match.group(1), 16))
        return character if UNRESERVED.fullmatch(character) else f"%{match.group(1).upper()}"

    return PERCENT_ESCAPE.sub(one, text)


def _remove_dot_segments(path: str) -> str:
    """RFC 3986, section 5.2.4, on segments: '.' goes, '..' takes the segment before it."""
    if not path:
        return path
    output: list[str] = []
    segments = path.split("/")
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == ".":
            if last:
                output.append("")
        elif segment == "..":
            if len(output) > 1:
                output.pop()
            if last:
                output.append("")
        else:
            output.append(segment)
    result = "/".join(output)
    return result if result.startswith("/") or not path.startswith("/") else "/" + result
