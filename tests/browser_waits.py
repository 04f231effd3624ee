"""Waiting for a page's state in the browser tests: polled from the test, never by an in-page poller.

DubDash's Content-Security-Policy allows no 'unsafe-eval'. Playwright's `page.wait_for_function("<expression>")`
polls inside the page and runs the expression through `eval` at every check. Its first check is part of
Playwright's own DevTools call, which the policy exempts; the later ones run from the page's timers, which
it does not. So such a wait passes when the condition already holds at the first look, and fails with
"EvalError: Evaluating a string as JavaScript violates the following Content Security Policy directive"
whenever it actually has to wait. Each `page.evaluate` / `locator.evaluate` is a separate DevTools call from
the test, which the policy does not govern: the helpers here poll with those, on a deadline kept in Python,
and fail the test with what they waited for and what they last saw.

Rule for the browser tests: wait with `expect(...)` assertions or with these helpers. Do not use
`page.wait_for_function`, loops inside `page.evaluate`, or fixed sleeps to wait for a page's state.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Locator, Page
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

INTERVAL = 0.05  # seconds between two looks
# A navigation or reload between two looks drops the page's JavaScript context: look again in the new one.
NAVIGATION_ERRORS = ("Execution context was destroyed", "Cannot find context with specified id")


def wait_until(
    target: Page | Locator,
    js: str,
    arg: Any = None,
    *,
    what: str,
    until: Callable[[Any], Any] = bool,
    timeout: float = 10.0,
) -> Any:
    """Evaluate the JavaScript function `js` on `target` (`() => ...` on a page, `element => ...` on a
    locator, which must match one element) until `until(value)` is true; return that value. After `timeout`
    seconds, fail with `what` and the last value. A JavaScript error other than a navigation fails at once."""
    deadline = time.monotonic() + timeout
    last: Any = "(not evaluated yet)"
    while True:
        remaining = deadline - time.monotonic()
        try:
            if isinstance(target, Locator):
                # Waits for the element to be attached, at most until the deadline.
                value = target.evaluate(js, arg, timeout=max(1.0, remaining * 1000))
            else:
                value = target.evaluate(js, arg)
        except PlaywrightError as error:
            if isinstance(error, PlaywrightTimeoutError):
                raise AssertionError(f"Timed out after {timeout:g} s waiting for {what}: no element {target}") from error
            if not any(text in error.message for text in NAVIGATION_ERRORS):
                raise
            last = f"(navigating: {error.message.splitlines()[0]})"
        else:
            if until(value):
                return value
            last = value
        if time.monotonic() >= deadline:
            raise AssertionError(f"Timed out after {timeout:g} s waiting for {what}; {js} last gave {last!r}")
        time.sleep(INTERVAL)


VIDEO_STATE_JS = """video => ({
  readyState: video.readyState,
  networkState: video.networkState,
  error: video.error ? `${video.error.code}: ${video.error.message}` : null,
  currentSrc: video.currentSrc,
})"""


def wait_for_video_data(video: Locator, *, timeout: float = 10.0) -> dict:
    """Wait until the <video> has decoded data for its current frame (readyState >= HAVE_CURRENT_DATA) or has
    failed to load; return its state (readyState, networkState, error, currentSrc) for the test to assert on."""
    return wait_until(
        video,
        VIDEO_STATE_JS,
        what="the video to have its first frame (readyState >= 2) or an error",
        until=lambda state: state["readyState"] >= 2 or state["error"] is not None,
        timeout=timeout,
    )
