"""Replies that break the unwritten rules, for tests of what a client stores (the sandbox's `bad_replies` knob).

The contract types every LipsyncRequest field as a free string, so nothing stops the provider from
sending a NUL byte, a control character, a lone surrogate or a text of any length. Each kind below turns
a job's correct reply into one such reply, on GET /v1/lipsync/requests/{id} and on the list alike; the
job itself (and `SandboxServer.jobs()`, the test's view of the truth) is unchanged.

Pure standard library, like the rest of the sandbox.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .store import GENERIC_FAILURE

EVERY_JOB = "*"  # a `bad_replies` key that applies to every job without a key of its own

# Sizes that overflow what a careful client would store in a fixed-size column.
LONG_URL_EXTRA = 3_000  # over 2,048 in all: longer than the classic URL limit, still a working link
HUGE_URL_EXTRA = 70_000  # over 64 KiB: no real link is this long
LONG_ERROR_REPEATS = 20_000  # about 140,000 characters of error message
LONG_TEXT = 300  # longer than a 64-character status or a 128-character reference id


def _nul_in_status(data: dict[str, Any]) -> None:
    # NUL inside and at the end: a client that removes it reads the job's real status again.
    status = data["status"]
    data["status"] = f"{status[:1]}\x00{status[1:]}\x00"


def _nul_in_error(data: dict[str, Any]) -> None:
    # A NUL and other C0 controls around the real message: removing them gives the message back.
    message = data.get("error_message") or GENERIC_FAILURE
    data["error_message"] = "\x00" + message.replace(" ", "\x00 ", 1) + "\x07\x1b"


def _long_error(data: dict[str, Any]) -> None:
    message = data.get("error_message") or GENERIC_FAILURE
    data["error_message"] = f"{message} (trace: {'frame; ' * LONG_ERROR_REPEATS})"


def _lone_surrogate(data: dict[str, Any]) -> None:
    # JSON can carry "\ud800" although no UTF-8 text can: a database driver refuses to encode it.
    message = data.get("error_message") or GENERIC_FAILURE
    data["error_message"] = message + " \ud800"


def _long_status(data: dict[str, Any]) -> None:
    data["status"] = data["status"] + "-" + "z" * LONG_TEXT


def _with_output(change: Callable[[str], str]) -> Callable[[dict[str, Any]], None]:
    """Only a reply that has an output link (a completed job) gets a different one."""

    def apply(data: dict[str, Any]) -> None:
        if data.get("output_url"):
            data["output_url"] = change(data["output_url"])

    return apply


def _signed(extra: int) -> Callable[[str], str]:
    # A long query string, as signed storage links have: the sandbox ignores it, so the link still plays.
    return lambda url: f"{url}?X-Signature={'a' * extra}"


def _bad_reference_id(data: dict[str, Any]) -> None:
    data["reference_id"] = "ref\x00" + "r" * LONG_TEXT


def _naive_created_at(data: dict[str, Any]) -> None:
    # No offset: such a time cannot be compared with the aware ones of the other jobs on the page.
    data["created_at"] = data["created_at"].replace("Z", "").split("+")[0]


def _past_the_end_of_time(data: dict[str, Any]) -> None:
    # A valid ISO time that is year 10000 in UTC: a client that converts it overflows.
    data["created_at"] = "9999-12-31T23:59:59-14:00"


KINDS: dict[str, Callable[[dict[str, Any]], None]] = {
    "nul-in-status": _nul_in_status,
    "nul-in-error": _nul_in_error,
    "long-error": _long_error,
    "lone-surrogate": _lone_surrogate,
    "long-status": _long_status,
    "long-output-url": _with_output(_signed(LONG_URL_EXTRA)),
    "huge-output-url": _with_output(_signed(HUGE_URL_EXTRA)),
    "non-http-output-url": _with_output(lambda url: "ftp" + url[url.index(":") :]),
    "bad-reference-id": _bad_reference_id,
    "naive-created-at": _naive_created_at,
    "created-past-the-end-of-time": _past_the_end_of_time,
}


def check(value: Any) -> dict[str, str]:
    """The knob's value from the control endpoint: {job id or "*": kind}; ValueError on anything else."""
    if not isinstance(value, Mapping):
        raise ValueError("bad_replies must map job ids (or \"*\") to kinds")
    for key, kind in value.items():
        if not isinstance(key, str) or not key:
            raise ValueError("bad_replies keys must be job ids or \"*\"")
        if kind not in KINDS:
            raise ValueError(f"unknown bad reply: {kind}")
    return dict(value)


def spoil(data: dict[str, Any], bad_replies: Mapping[str, str]) -> dict[str, Any]:
    """The reply for one rendered job: as it is, or spoiled as `bad_replies` asks for that job."""
    kind = bad_replies.get(data["id"], bad_replies.get(EVERY_JOB))
    if kind is None:
        return data
    spoiled = dict(data)
    KINDS[kind](spoiled)
    return spoiled

