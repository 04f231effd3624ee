"""The browser tests' waits (tests/browser_waits.py) under DubDash's Content-Security-Policy: a condition
that only becomes true later is waited for, and one that never does fails the test with what it waited for."""

import re
import time

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, expect

from tests.browser_waits import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Becomes true after the first look at it, as a video's readyState or an htmx swap does.
LATER = "() => { window.__later = false; setTimeout(() => { window.__later = 'yes' }, 300); }"


@pytest.fixture
def page_under_the_policy(page: Page, live_server) -> Page:
    response = page.goto(live_server.url + "/login/")
    assert "script-src 'self';" in response.headers["content-security-policy"]
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    return page


def test_waits_for_a_condition_that_becomes_true_later(page_under_the_policy: Page):
    page = page_under_the_policy
    page.evaluate(LATER)
    assert wait_until(page, "() => window.__later", what="the later flag", timeout=5) == "yes"
    button = page.get_by_role("button", name="Log in")
    page.evaluate(LATER)
    assert wait_until(button, "(b) => window.__later && b.textContent", what="the flag, on an element") == "Log in"


def test_a_condition_that_never_holds_fails_with_what_was_awaited(page_under_the_policy: Page):
    page = page_under_the_policy
    message = re.escape("Timed out after 0.5 s waiting for a flag that is never set;") + ".*last gave False"
    with pytest.raises(AssertionError, match=message):
        wait_until(page, "() => window.__never === true", what="a flag that is never set", timeout=0.5)
    with pytest.raises(AssertionError, match="waiting for a missing element: no element"):
        wait_until(page.locator("#missing"), "(e) => true", what="a missing element", timeout=0.5)


def test_a_broken_condition_fails_at_once(page_under_the_policy: Page):
    started = time.monotonic()
    # Playwright's own error, not wait_until's timeout (an AssertionError that might quote the same text).
    with pytest.raises(PlaywrightError, match="ReferenceError"):
        wait_until(page_under_the_policy, "() => notDefined.value", what="a typo", timeout=30)
    assert time.monotonic() - started < 10  # at once, far from the 30 s it was given
