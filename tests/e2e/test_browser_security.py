"""The Content-Security-Policy in real Chromium (Debian's): every page works under it, with no console
error and no CSP violation, DubDash's own pages and Django admin's alike. Without Chromium these fail."""

import re

import pytest
from playwright.sync_api import Page, expect

from submissions.tracking import services as tracking
from tests.browser_waits import wait_for_video_data, wait_until
from tests.factories import make_member

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Runs in every document before its own scripts: records each CSP violation in the page and reports it
# to the test at once (a violation on a page the test has already left is still caught).
WATCH_CSP = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  const text = `${event.violatedDirective} blocked ${event.blockedURI || "(inline)"} in ${event.sourceFile || "?"}:`
    + `${event.lineNumber} on ${location.pathname}`;
  window.__cspViolations.push(text);
  if (window.__reportCspViolation) window.__reportCspViolation(text);
});
"""


class Watch:
    """Console errors, uncaught exceptions and CSP violations of one page, across navigations."""

    def __init__(self, page: Page):
        self.page = page
        self.problems: list[str] = []
        # Chromium asks for /favicon.ico by itself and DubDash has none: a 404 unrelated to the policy.
        self.allowed: list[re.Pattern] = [re.compile(r"^console error \(\S+/favicon\.ico\): .*status of 404")]
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"uncaught exception: {error}"))
        page.expose_function("__reportCspViolation", lambda text: self.problems.append(f"CSP violation: {text}"))
        page.add_init_script(WATCH_CSP)

    def _console(self, message):
        if message.type != "error":
            return
        problem = f"console error ({message.location.get('url') or self.page.url}): {message.text}"
        if not any(pattern.search(problem) for pattern in self.allowed):
            self.problems.append(problem)

    def check(self, where: str) -> None:
        self.page.wait_for_load_state("load")
        in_page = self.page.evaluate("window.__cspViolations || []")
        problems = list(dict.fromkeys(self.problems + [f"CSP violation: {text}" for text in in_page]))
        assert problems == [], f"{where}: {problems}"
        # No page of this project asks for anything the policy forbids, and it is the exact policy.
        assert "default-src 'self'; script-src 'self'; style-src 'self';" in self.csp_of_current_page()

    def csp_of_current_page(self) -> str:
        response = self.page.request.get(self.page.url)
        return response.headers.get("content-security-policy", "")

    def clear(self) -> None:
        self.problems.clear()
        self.page.evaluate("window.__cspViolations = []")


@pytest.fixture
def watch(page: Page) -> Watch:
    """Listed before logged_in_page in a test's arguments, so the log-in page is watched too."""
    return Watch(page)


def test_dubdash_pages_work_under_the_policy(watch: Watch, logged_in_page: Page, live_server, sandbox, tmp_path):
    from django.utils import timezone

    from submissions.models import Submission

    page = logged_in_page
    watch.check("log in, then the history")
    assert watch.page is page

    page.goto(live_server.url + "/?scope=team")
    watch.check("team history")

    # A job, sent, finished, and its output playing on the detail page (media from the sandbox, over http).
    page.goto(live_server.url + "/submissions/new/")
    watch.check("new submission")
    page.get_by_role("link", name="fill the form with the sandbox's sample video and audio").click()
    page.get_by_label("Title or note").fill("CSP pilot")
    page.get_by_role("button", name="Send to Chamelaion").click()
    expect(page).to_have_url(re.compile(r"/submissions/\d+/$"))
    sandbox.advance(60)
    Submission.objects.update(next_poll_at=timezone.now())
    assert tracking.refresh_round().updated == 1
    video = page.locator("#output-video")
    expect(video).to_be_visible(timeout=10_000)  # swapped in by htmx polling
    state = wait_for_video_data(video)
    assert state["error"] is None, state
    watch.check("detail page, swapped by htmx, playing its output")
    page.reload()
    state = wait_for_video_data(video)
    assert state["error"] is None, state
    assert page.locator("#source-video").evaluate("video => video.error") is None
    watch.check("detail page, loaded with its output")

    # A batch: rows added by the page's script, then the batch page polling itself.
    page.goto(live_server.url + "/batches/new/")
    page.get_by_label("Batch name").fill("CSP batch")
    page.get_by_label("Source video URL").fill(sandbox.sample_video_url)
    page.get_by_role("button", name="+ Add a language").click()
    rows = page.locator("tr.batch-row")
    expect(rows).to_have_count(2)
    assert page.evaluate("document.querySelector('input[name=\"rows-TOTAL_FORMS\"]').value") == "2"  # by the script
    for index, language in enumerate(["de", "fr"]):
        rows.nth(index).locator("select").select_option(language)
        rows.nth(index).locator("input").fill(sandbox.sample_audio_url + f"?lang={language}")
    watch.check("new batch, a row added by its script")
    page.get_by_role("button", name="Send the batch").click()
    expect(page).to_have_url(re.compile(r"/batches/\d+/$"))
    expect(page.get_by_role("heading", name="CSP batch")).to_be_visible()
    with page.expect_response(lambda response: response.request.headers.get("hx-request") == "true", timeout=10_000):
        pass  # one round of the page's own polling
    watch.check("batch page, after an htmx swap")

    # CSV: the upload page and a preview.
    csv_file = tmp_path / "jobs.csv"
    csv_file.write_text(
        "video_url,audio_url,language,title\n"
        "https://cdn.example.com/a.mp4,https://cdn.example.com/a-de.wav,de,CSV one\n"
        "not-a-url,https://cdn.example.com/b-de.wav,de,CSV two\n",
        encoding="utf-8",
    )
    page.goto(live_server.url + "/batches/csv/")
    watch.check("CSV upload")
    page.get_by_label("CSV file").set_input_files(csv_file)
    page.get_by_role("button", name="Upload and preview").click()
    expect(page).to_have_url(re.compile(r"/batches/csv/\d+/$"))
    watch.check("CSV preview")

    page.goto(live_server.url + "/submissions/upload/")
    watch.check("upload files")

    # The watch itself works: an inline style, which the policy forbids, is reported.
    page.goto(live_server.url + "/")
    page.evaluate("document.head.insertAdjacentHTML('beforeend', '<style>body { color: red }</style>')")
    wait_until(page, "() => window.__cspViolations.length > 0", what="the inline style's CSP violation in the page")
    assert "style-src" in page.evaluate("window.__cspViolations[0]")
    with pytest.raises(AssertionError, match="CSP violation"):
        watch.check("control")
    watch.clear()


def test_django_admin_works_under_the_policy(watch: Watch, page: Page, live_server, django_user_model):
    from submissions.models import Submission

    admin = make_member("root", password="root-password-123", is_staff=True, is_superuser=True)
    submission = Submission.objects.create(
        created_by=admin, title="Admin CSP", video_url="https://cdn.example.com/a.mp4",
        audio_url="https://cdn.example.com/a.wav", reference_id="admin-csp",
    )
    page.goto(live_server.url + "/admin/")
    expect(page).to_have_url(re.compile(r"/admin/login/"))
    page.get_by_label("Username").fill("root")
    page.get_by_label("Password").fill("root-password-123")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()
    watch.check("admin log-in and index")

    for path, what in [
        ("/admin/submissions/submission/", "submission changelist"),
        ("/admin/submissions/submission/?q=Admin", "submission search"),
        (f"/admin/submissions/submission/{submission.pk}/change/", "submission change form"),
        ("/admin/axes/accessattempt/", "access attempts (unlocking)"),
        ("/admin/auth/user/", "users"),
        (f"/admin/auth/user/{admin.pk}/change/", "user change form (JavaScript widgets)"),
        ("/admin/auth/user/add/", "add user"),
        ("/admin/auth/group/add/", "add group (permission picker)"),
    ]:
        page.goto(live_server.url + path)
        expect(page.locator("#content")).to_be_visible()
        watch.check(what)

    # The changelist's action bar, driven by admin's JavaScript.
    page.goto(live_server.url + "/admin/submissions/submission/")
    page.locator("input.action-select").first.check()
    expect(page.locator(".action-counter")).to_contain_text("1 of 1 selected")
    watch.check("changelist with a selected row")


def test_the_lockout_page_works_under_the_policy(watch: Watch, page: Page, live_server, django_user_model):
    make_member("maria")  # on no team: the lockout is about the password, not the role
    # The lockout answers 429, which Chromium logs as a failed load: expected here, nothing else is.
    watch.allowed.append(re.compile(r"^console error \(\S+/login/\): .*status of 429"))
    page.goto(live_server.url + "/login/")
    for _ in range(5):
        page.get_by_label("Username").fill("maria")
        page.get_by_label("Password").fill("not-the-password")
        page.get_by_role("button", name="Log in").click()
    alert = page.get_by_role("alert")
    expect(alert).to_have_text(re.compile(r"Too many failed attempts for this account\.\s+Try again in 15 minutes, "
                                          r"or ask an administrator to unlock it\."))
    watch.check("lockout page")
    page.get_by_role("link", name="Back to the log-in page").click()
    page.get_by_label("Username").fill("maria")
    page.get_by_label("Password").fill("dubbing-all-day")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("Too many failed attempts")  # still locked
    watch.check("lockout page again")
