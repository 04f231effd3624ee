"""Security: login throttling (django-axes), the response headers, CSRF on every form and every POST, and
escaping of everything a user typed or Chamelaion returned, wherever it is shown."""

import html as html_module
import re
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from axes.models import AccessAttempt
from axes.utils import reset
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from dubdash.security import client_ip_address
from submissions.models import Batch, CsvUpload, Problem, Submission
from tests.factories import PASSWORD, make_member, make_part, make_submission
from tests.processes import PRODUCTION_LIKE, manage

pytestmark = pytest.mark.django_db
State = Submission.State

LOGIN = reverse("login")
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self' https: http:; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
)
MISSING = 999999  # the id project_post_urls() fills in: no such object
LOCKED_OUT = "Too many failed attempts for this account. Try again in 15 minutes, or ask an administrator to unlock it."
WRONG_PASSWORD = "Please enter a correct username and password."


def text_of(html: str) -> str:
    """What a reader sees: tags removed, whitespace collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def log_in(client, username="maria", password=PASSWORD, **extra):
    return client.post(LOGIN, {"username": username, "password": password}, **extra)


def is_logged_in(client) -> bool:
    return "_auth_user_id" in client.session


# --- Login throttling -------------------------------------------------------------------------------


def test_five_failures_lock_the_account_out_with_a_clear_message(client, user, settings):
    assert settings.AXES_FAILURE_LIMIT == 5 and timedelta(minutes=15) == settings.AXES_COOLOFF_TIME
    for _ in range(4):
        response = log_in(client, password="wrong")
        assert response.status_code == 200
        assert WRONG_PASSWORD in text_of(response.content.decode())

    response = log_in(client, password="wrong")  # the fifth
    assert response.status_code == 429
    page = response.content.decode()
    assert LOCKED_OUT in text_of(page)
    assert 'role="alert"' in page
    # Inside the normal layout, with the normal headers.
    assert '<header class="topbar">' in page and "/static/css/dubdash.css" in page
    assert response["Content-Security-Policy"] == CSP
    assert not is_logged_in(client)


def test_the_right_password_during_a_lockout_is_refused_and_the_wait_starts_again(client, user):
    for _ in range(5):
        log_in(client, password="wrong")
    before = AccessAttempt.objects.get(username="maria").attempt_time

    response = log_in(client)  # correct password
    assert response.status_code == 429
    assert LOCKED_OUT in text_of(response.content.decode())
    assert not is_logged_in(client)
    assert AccessAttempt.objects.get(username="maria").attempt_time > before

    # The login page itself still opens (a GET is never locked out).
    assert client.get(LOGIN).status_code == 200


def test_the_lockout_is_per_username_and_address(client, user, other_user):
    for _ in range(5):
        log_in(client, password="wrong")
    assert log_in(client).status_code == 429

    # The same person from another address, and a teammate from the same address, are not affected.
    elsewhere = Client(REMOTE_ADDR="198.51.100.20")
    assert log_in(elsewhere).status_code == 302 and is_logged_in(elsewhere)
    teammate = Client()
    assert log_in(teammate, "kenji", "dubbing-all-night").status_code == 302 and is_logged_in(teammate)


def test_the_lockout_ends_after_the_cool_off(client, user):
    for _ in range(5):
        log_in(client, password="wrong")
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    assert log_in(client).status_code == 302
    assert is_logged_in(client)


def test_a_success_forgets_earlier_failures(client, user):
    for _ in range(4):
        log_in(client, password="wrong")
    assert log_in(client).status_code == 302
    client.post(reverse("logout"))
    for _ in range(4):
        log_in(client, password="wrong")
    assert log_in(client).status_code == 302  # four more failures, not eight


def test_axes_reset_unlocks(client, user):
    for _ in range(5):
        log_in(client, password="wrong")
    assert reset(username="maria") == 1
    assert log_in(client).status_code == 302
    assert is_logged_in(client)


def test_an_administrator_unlocks_in_admin(client, user, admin_client):
    for _ in range(5):
        log_in(client, password="wrong")
    changelist = reverse("admin:axes_accessattempt_changelist")
    listing = admin_client.get(changelist)
    assert listing.status_code == 200
    assert "maria" in text_of(listing.content.decode()) and "Locked Out" in text_of(listing.content.decode())

    attempt = AccessAttempt.objects.get(username="maria")
    response = admin_client.post(
        changelist, {"action": "delete_selected", "_selected_action": [attempt.pk], "post": "yes"}
    )
    assert response.status_code == 302
    assert not AccessAttempt.objects.exists()
    assert log_in(client).status_code == 302
    assert is_logged_in(client)


def test_the_admin_login_is_throttled_too(client, django_user_model):
    make_part("superuser", username="root", password="root-password-123")
    admin_login = reverse("admin:login")
    for _ in range(5):
        response = client.post(admin_login, {"username": "root", "password": "wrong"})
    assert response.status_code == 429
    assert LOCKED_OUT in text_of(response.content.decode())
    assert client.post(admin_login, {"username": "root", "password": "root-password-123"}).status_code == 429


def test_behind_a_proxy_the_client_address_is_the_one_the_proxy_saw(settings):
    factory = RequestFactory()

    def address(forwarded=None, remote="10.0.0.5"):
        extra = {"REMOTE_ADDR": remote}
        if forwarded is not None:
            extra["HTTP_X_FORWARDED_FOR"] = forwarded
        return client_ip_address(factory.post(LOGIN, **extra))

    settings.AXES_IPWARE_PROXY_COUNT = None  # the default: no proxy, X-Forwarded-For is the client's own
    assert address("203.0.113.7") == "10.0.0.5"

    settings.AXES_IPWARE_PROXY_COUNT = 1
    assert address("203.0.113.7") == "203.0.113.7"
    assert address("6.6.6.6, 203.0.113.7") == "203.0.113.7"  # the left part is whatever the client sent
    assert address("2001:db8::1") == "2001:db8::1"
    assert address() == "10.0.0.5"  # not through the proxy
    assert address("not-an-address") == "10.0.0.5"

    settings.AXES_IPWARE_PROXY_COUNT = 2
    assert address("6.6.6.6, 203.0.113.7, 10.0.0.9") == "203.0.113.7"
    assert address("10.0.0.9") == "10.0.0.5"


def test_behind_a_proxy_a_spoofed_forwarded_for_does_not_escape_the_lockout(client, user, settings):
    settings.AXES_IPWARE_PROXY_COUNT = 1
    for n in range(5):
        log_in(client, password="wrong", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}, 203.0.113.7")
    assert log_in(client, HTTP_X_FORWARDED_FOR="192.0.2.99, 203.0.113.7").status_code == 429
    assert log_in(client, HTTP_X_FORWARDED_FOR="203.0.113.8").status_code == 302  # another client


def test_throttling_is_configured_from_the_environment():
    show = ("from django.conf import settings as s; "
            "print(s.AXES_FAILURE_LIMIT, s.AXES_COOLOFF_TIME, s.AXES_IPWARE_PROXY_COUNT)")
    result = manage("shell", "-c", show, **PRODUCTION_LIKE)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "5 0:15:00 None"
    result = manage("shell", "-c", show, **PRODUCTION_LIKE, AXES_FAILURE_LIMIT="3", AXES_COOLOFF_MINUTES="0",
                    AXES_IPWARE_PROXY_COUNT="1")
    assert result.stdout.strip().splitlines()[-1] == "3 None 1"
    for name, value, message in [
        ("AXES_FAILURE_LIMIT", "five", "AXES_FAILURE_LIMIT must be a whole number"),
        ("AXES_FAILURE_LIMIT", "0", "AXES_FAILURE_LIMIT must be at least 1."),
        ("AXES_COOLOFF_MINUTES", "-1", "AXES_COOLOFF_MINUTES must be a whole number"),
        ("AXES_IPWARE_PROXY_COUNT", "yes", "AXES_IPWARE_PROXY_COUNT must be a whole number"),
        ("OUTPUT_FILENAME_TEMPLATE", "{title", "OUTPUT_FILENAME_TEMPLATE is malformed"),
        ("OUTPUT_FILENAME_TEMPLATE", "{owner}.mp4", "OUTPUT_FILENAME_TEMPLATE may use only"),
    ]:
        result = manage("check", **{**PRODUCTION_LIKE, name: value})
        assert result.returncode != 0 and message in result.stderr, (name, value, result.stderr)


def test_cookies_are_secure_and_hsts_is_on_when_not_debugging():
    show = ("from django.conf import settings as s; print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, "
            "s.SESSION_COOKIE_HTTPONLY, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS)")
    result = manage("shell", "-c", show, **PRODUCTION_LIKE)
    assert result.stdout.strip().splitlines()[-1] == "True True True True 31536000", result.stderr
    result = manage("shell", "-c", show, **{**PRODUCTION_LIKE, "DEBUG": "true"})
    assert result.stdout.strip().splitlines()[-1] == "False False True False 0", result.stderr


def test_without_a_cool_off_only_an_administrator_unlocks(client, user, settings):
    settings.AXES_COOLOFF_TIME = None
    for _ in range(5):
        response = log_in(client, password="wrong")
    assert response.status_code == 429
    assert "Too many failed attempts for this account. Ask an administrator to unlock it." in text_of(
        response.content.decode()
    )
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(days=30))
    assert log_in(client).status_code == 429


# --- Response headers -------------------------------------------------------------------------------


def assert_security_headers(response, csp=CSP):
    assert response["Content-Security-Policy"] == csp, response.request["PATH_INFO"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


@pytest.fixture
def objects(user):
    batch = Batch.objects.create(name="Episode 7", created_by=user)
    pending = make_submission(user, title="Waiting", batch=batch)
    failed_send = make_submission(user, title="Refused", state=State.SEND_FAILED, last_error="Bad audio.", batch=batch)
    in_flight = make_submission(user, title="Running", state=State.QUEUED, request_id="req-1", batch=batch)
    done = make_submission(user, title="Done", state=State.COMPLETED, request_id="req-2",
                           output_url="https://cdn.example.com/out.mp4", finished_at=timezone.now())
    failed = make_submission(user, title="Broken", state=State.FAILED, request_id="req-3", batch=batch,
                             upstream_error_message="Unsupported codec")
    csv_upload = CsvUpload.objects.create(
        created_by=user, filename="episodes.csv",
        content="video_url,audio_url\r\nhttps://cdn.example.com/a.mp4,https://cdn.example.com/a.wav\r\n",
    )
    return {"batch": batch, "pending": pending, "failed_send": failed_send, "in_flight": in_flight, "done": done,
            "failed": failed, "csv": csv_upload}


def main_pages(objects):
    return [
        reverse("submissions:history"),
        reverse("submissions:history") + "?scope=team",
        reverse("submissions:new"),
        reverse("submissions:new_batch"),
        reverse("submissions:csv_upload"),
        reverse("submissions:upload"),
        *(reverse("submissions:detail", args=[objects[name].pk])
          for name in ("pending", "failed_send", "in_flight", "done", "failed")),
        reverse("submissions:batch", args=[objects["batch"].pk]),
        reverse("submissions:csv_preview", args=[objects["csv"].pk]),
    ]


def test_every_main_page_carries_the_security_headers(logged_in, objects, admin_client):
    for url in main_pages(objects):
        response = logged_in.get(url)
        assert response.status_code == 200, url
        assert_security_headers(response)
        htmx = logged_in.get(url, HTTP_HX_REQUEST="true")
        assert_security_headers(htmx)
    assert_security_headers(Client().get(LOGIN))
    assert_security_headers(logged_in.get(reverse("submissions:history_export")))
    assert_security_headers(logged_in.get("/no-such-page/"))
    static = logged_in.get("/static/js/batch-rows.js")
    assert static.status_code == 200
    assert static["Content-Security-Policy"] == CSP and static["X-Content-Type-Options"] == "nosniff"
    for url in ("admin:index", "admin:submissions_submission_changelist", "admin:axes_accessattempt_changelist"):
        response = admin_client.get(reverse(url))
        assert response.status_code == 200
        assert_security_headers(response)
    response = admin_client.get(reverse("admin:submissions_submission_change", args=[objects["done"].pk]))
    assert_security_headers(response)


def test_plain_http_media_only_on_plain_http_pages(client, settings):
    # Over https, browsers upgrade or block http media anyway: the policy does not allow it at all there.
    secure = client.get(LOGIN, secure=True)
    assert secure.status_code == 200
    assert secure["Content-Security-Policy"] == CSP.replace("https: http:;", "https:;")
    assert_security_headers(secure, csp=secure["Content-Security-Policy"])
    # Over plain http (development, the local sandbox), whatever the mode.
    settings.CHAMELAION_API_KEY = "a-real-key"
    assert client.get(LOGIN)["Content-Security-Policy"] == CSP


def test_no_page_has_inline_script_or_style(logged_in, objects):
    pages = [logged_in.get(url) for url in main_pages(objects)] + [Client().get(LOGIN)]
    for page in pages:
        html = page.content.decode()
        tags = parse(html)
        for tag, attrs in tags:
            assert tag != "style", page.request["PATH_INFO"]
            assert "style" not in attrs, (page.request["PATH_INFO"], tag, attrs)
            assert not any(name.startswith("on") for name in attrs), (page.request["PATH_INFO"], tag, attrs)
            if tag == "script":
                assert attrs.get("src", "").startswith("/static/"), (page.request["PATH_INFO"], attrs)
        assert '<meta name="htmx-config" content=\'{"includeIndicatorStyles": false' in html


# --- CSRF ---------------------------------------------------------------------------------------------


def post_forms(html: str) -> list[dict]:
    """Each <form method="post"> with the names and values of its inputs."""
    forms, current = [], None
    for tag, attrs in parse(html, end_tags=True):
        if tag == "form" and attrs.get("method", "get").lower() == "post":
            current = {"action": attrs.get("action"), "inputs": {}}
            forms.append(current)
        elif tag == "/form":
            current = None
        elif tag == "input" and current is not None and "name" in attrs:
            current["inputs"][attrs["name"]] = attrs.get("value", "")
    return forms


def test_every_form_carries_a_csrf_token(logged_in, objects, admin_client):
    invalid_csv = CsvUpload.objects.create(created_by=objects["csv"].created_by, filename="bad.csv",
                                           content="video_url,audio_url\r\nnot-a-url,\r\n")
    pages = {url: logged_in for url in main_pages(objects)}
    pages[reverse("submissions:csv_preview", args=[invalid_csv.pk])] = logged_in
    pages[LOGIN] = pages[reverse("admin:login")] = Client()
    for url in (
        reverse("admin:index"),
        reverse("admin:submissions_submission_changelist"),
        reverse("admin:submissions_submission_change", args=[objects["pending"].pk]),
        reverse("admin:axes_accessattempt_changelist"),
    ):
        pages[url] = admin_client
    seen = 0
    for url, who in pages.items():
        response = who.get(url)
        assert response.status_code == 200, url
        for form in post_forms(response.content.decode()):
            assert len(form["inputs"].get("csrfmiddlewaretoken", "")) == 64, (url, form)
            seen += 1
    # The forms that matter were among them: log in/out, send, batch, CSV, upload, send again, refresh, retry.
    assert seen >= 20


def project_post_urls() -> list[str]:
    """Every URL of DubDash itself (admin has its own list below), any id filled in."""

    def walk(patterns, namespace):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                if pattern.namespace == "admin":
                    continue
                yield from walk(pattern.url_patterns, ":".join(filter(None, [namespace, pattern.namespace])))
            elif isinstance(pattern, URLPattern) and pattern.name:
                name = f"{namespace}:{pattern.name}" if namespace else pattern.name
                yield reverse(name, kwargs={key: MISSING for key in pattern.pattern.converters})

    return sorted(set(walk(get_resolver().url_patterns, "")))


def admin_post_urls(objects) -> list[tuple[str, dict]]:
    pk = objects["failed_send"].pk
    return [
        (reverse("admin:login"), {"username": "root", "password": "root-password-123"}),
        (reverse("admin:submissions_submission_changelist"), {"action": "send_again", "_selected_action": [pk]}),
        (reverse("admin:submissions_submission_change", args=[objects["pending"].pk]), {"title": "changed"}),
        (reverse("admin:submissions_submission_delete", args=[pk]), {"post": "yes"}),
        (reverse("admin:submissions_submission_import"), {}),
        (reverse("admin:axes_accessattempt_changelist"), {"action": "delete_selected", "post": "yes"}),
        (reverse("admin:auth_user_add"), {"username": "mallory", "password1": "x-Long-1", "password2": "x-Long-1"}),
        (reverse("admin:password_change"), {}),
        (reverse("admin:logout"), {}),
    ]


def refused_for_csrf(response) -> bool:
    return response.status_code == 403 and b"CSRF verification failed" in response.content


def test_a_post_without_the_csrf_token_is_refused_everywhere(django_user_model, objects):
    urls = project_post_urls()
    by_id = ["send_again", "refresh", "batch_retry_failed", "csv_preview", "csv_send"]
    by_name = ["new", "new_batch", "csv_upload", "upload"]
    expected = {reverse("login"), reverse("logout")}
    expected |= {reverse(f"submissions:{name}") for name in by_name}
    expected |= {reverse(f"submissions:{name}", args=[MISSING]) for name in by_id}
    assert expected <= set(urls)

    admin = make_part("superuser", username="root", password="root-password-123")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(admin)
    for url in urls:
        assert refused_for_csrf(strict.post(url, {"title": "x"})), url
    for url, data in admin_post_urls(objects):
        assert refused_for_csrf(strict.post(url, data)), url
    # Real objects, too: nothing happened to them.
    for name in ("send_again", "refresh", "cancel"):
        url = reverse(f"submissions:{name}", args=[objects["failed_send"].pk])  # every action exists: none is skipped
        assert refused_for_csrf(strict.post(url)), url
    assert refused_for_csrf(strict.post(reverse("submissions:batch_retry_failed", args=[objects["batch"].pk])))
    assert refused_for_csrf(strict.post(reverse("submissions:csv_send", args=[objects["csv"].pk])))
    anonymous = Client(enforce_csrf_checks=True)
    assert refused_for_csrf(anonymous.post(LOGIN, {"username": "root", "password": "root-password-123"}))
    objects["failed_send"].refresh_from_db()
    assert objects["failed_send"].state == State.SEND_FAILED and objects["failed_send"].send_attempts == 0
    assert Submission.objects.count() == 5 and Batch.objects.count() == 1
    assert not CsvUpload.objects.filter(used_at__isnull=False).exists()
    assert strict.get(reverse("submissions:history")).status_code == 200  # still logged in: logout was refused


def expected_answers(objects) -> dict[str, tuple[int, str]]:
    """What each POST of the test below answers with its token, as (status, where it leads): the Location
    of a redirect, or the <title> of the page shown, as a pattern that must match it whole. Anything else
    (a 500 above all) is a failure."""
    submission = objects["failed_send"]
    changelist = reverse("admin:submissions_submission_changelist")
    not_allowed = (405, "")  # a GET-only page: the method is refused, after the token was accepted
    not_found = (404, "")  # an id that does not exist
    answers = {
        reverse("submissions:history"): not_allowed,
        reverse("submissions:batch", kwargs={"pk": MISSING}): not_allowed,
        reverse("submissions:batch_export", kwargs={"pk": MISSING}): not_allowed,
        reverse("submissions:batch_zip", kwargs={"pk": MISSING}): not_allowed,
        reverse("submissions:history_zip"): not_allowed,
        reverse("submissions:output", kwargs={"pk": MISSING}): not_allowed,
        reverse("submissions:output_retry", kwargs={"pk": MISSING}): not_found,
        reverse("submissions:new_take", kwargs={"pk": MISSING}): not_found,
        reverse("submissions:batch_retry_failed", kwargs={"pk": MISSING}): not_found,
        reverse("submissions:csv_upload"): (200, "Import a CSV file · DubDash"),
        reverse("submissions:csv_preview", kwargs={"pk": MISSING}): not_found,
        reverse("submissions:csv_send", kwargs={"pk": MISSING}): not_found,
        reverse("submissions:new_batch"): (200, "New batch · DubDash"),
        reverse("login"): (302, "/"),
        reverse("submissions:api_key"): (200, "API key · DubDash"),
        reverse("submissions:api_key_test"): (200, "API key · DubDash"),
        reverse("submissions:detail", kwargs={"pk": MISSING}): not_allowed,
        reverse("submissions:cancel", kwargs={"pk": MISSING}): not_found,
        reverse("submissions:refresh", kwargs={"pk": MISSING}): not_found,
        reverse("submissions:send_again", kwargs={"pk": MISSING}): not_found,
        reverse("submissions:history_export"): not_allowed,
        reverse("submissions:new"): (200, "New submission · DubDash"),
        reverse("submissions:upload"): (200, "Upload files · DubDash"),
        reverse("submissions:team_members"): not_allowed,
        reverse("submissions:team_member_update", kwargs={"pk": MISSING}): not_found,
        reverse("submissions:team_usage"): not_allowed,
        reverse("admin:login"): (302, "/"),
        changelist: (302, changelist),
        reverse("admin:submissions_submission_change", args=[objects["pending"].pk]): (302, changelist),
        reverse("admin:submissions_submission_delete", args=[submission.pk]): (302, changelist),
        reverse("admin:submissions_submission_import"): (302, changelist),
        reverse("admin:axes_accessattempt_changelist"): (200, "Select access attempt to change | DubDash admin"),
        reverse("admin:auth_user_add"): (302, r"/admin/auth/user/\d+/change/"),  # on to the new user's page
        reverse("admin:password_change"): (200, "Error: Password change | DubDash admin"),
        reverse("logout"): (302, reverse("login")),
        # Logged out already, by the one before: admin asks to log in first.
        reverse("admin:logout"): (302, reverse("admin:login") + "?next=" + reverse("admin:logout")),
    }
    return {url: (status, leads_to if url == reverse("admin:auth_user_add") else re.escape(leads_to))
            for url, (status, leads_to) in answers.items()}


def where_it_leads(response) -> str:
    if response.status_code == 302:
        return response["Location"]
    title = re.search(r"<title>(.*?)</title>", response.content.decode(), re.S)
    return title.group(1).strip() if response.status_code == 200 and title else ""


def test_with_the_token_the_same_posts_are_not_refused(django_user_model, objects, sandbox):
    """The control for the test above: it is the missing token that is refused. Each POST must answer
    exactly as expected, so an error page (a 500) fails here rather than passing as "not refused"."""
    admin = make_part("superuser", username="root", password="root-password-123")
    strict = Client(enforce_csrf_checks=True, raise_request_exception=False)
    strict.force_login(admin)
    strict.get(reverse("submissions:history"))
    logouts = {reverse("logout"), reverse("admin:logout")}
    posts = [(url, {}) for url in project_post_urls()] + admin_post_urls(objects)
    expected = expected_answers(objects)
    assert {url for url, _ in posts} == set(expected)  # a new URL needs its expected answer here
    for url, data in sorted(posts, key=lambda post: post[0] in logouts):  # logging out last
        token = strict.cookies["csrftoken"].value  # a log-in (admin's, here) rotates it
        response = strict.post(url, {**data, "csrfmiddlewaretoken": token})
        status, leads_to = expected[url]
        assert not refused_for_csrf(response), url
        assert response.status_code == status, (url, response.status_code)
        assert re.fullmatch(leads_to, where_it_leads(response)), (url, where_it_leads(response))


# --- Escaping -----------------------------------------------------------------------------------------

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
JS_URL = "javascript:alert(document.cookie)"
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "poster", "hx-get", "hx-post", "data", "srcset", "xlink:href"}


class _Tags(HTMLParser):
    def __init__(self, end_tags):
        super().__init__(convert_charrefs=True)
        self.tags, self.end_tags = [], end_tags

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, {name: value or "" for name, value in attrs}))

    def handle_endtag(self, tag):
        if self.end_tags:
            self.tags.append((f"/{tag}", {}))


def parse(html: str, end_tags: bool = False) -> list[tuple[str, dict]]:
    parser = _Tags(end_tags)
    parser.feed(html)
    parser.close()
    return parser.tags


def assert_nothing_injected(html: str, where: str):
    assert SCRIPT not in html, where
    assert "<img src=x" not in html, where
    for tag, attrs in parse(html):
        assert tag != "img" or attrs.get("src") != "x", where
        assert not any(name.startswith("on") for name in attrs), (where, tag, attrs)
        if tag == "script":  # only this site's own files (admin's translations come from /admin/jsi18n/)
            src = attrs.get("src", "")
            assert src.startswith("/") and not src.startswith("//"), (where, attrs)
        for name, value in attrs.items():
            if name in URL_ATTRIBUTES:
                squashed = re.sub(r"[\s\x00-\x1f]", "", value).lower()
                assert not squashed.startswith(("javascript:", "vbscript:", "data:")), (where, tag, name, value)


@pytest.fixture
def hostile(user, django_user_model):
    """Everything a user could type and everything Chamelaion could answer, each one an attack."""
    evil = make_member(IMG, password="evil-password-123")
    batch = Batch.objects.create(name=f"Batch {SCRIPT}{IMG}", created_by=user)
    common = {"title": f"Title {SCRIPT}{IMG}", "batch": batch, "target_language": "de"}
    video = f"https://cdn.example.com/{IMG}{SCRIPT}.mp4"
    audio = JS_URL
    jobs = {
        "send_failed": make_submission(user, **common, state=State.SEND_FAILED, reference_id=f"{SCRIPT}-1",
                                       video_url=video, audio_url=audio, last_error=f"Refused: {SCRIPT}{IMG}"),
        "pending": make_submission(user, **common, reference_id=f"{IMG}-2", video_url=video, audio_url=audio,
                                   last_error=f"Retrying: {SCRIPT}{IMG}"),
        "in_flight": make_submission(user, **common, state=State.IN_FLIGHT, reference_id=f"{SCRIPT}-3",
                                     request_id=IMG, upstream_status=SCRIPT, video_url=video),
        "failed": make_submission(user, **common, state=State.FAILED, reference_id=f"{SCRIPT}-4", request_id="r-4",
                                  upstream_error_message=f"{SCRIPT}{IMG}", output_url=JS_URL,
                                  finished_at=timezone.now()),
        "completed_js": make_submission(user, **common, state=State.COMPLETED, reference_id=f"{SCRIPT}-5",
                                        request_id="r-5", output_url=" JavaScript:alert(1)",
                                        finished_at=timezone.now()),
        "completed_data": make_submission(user, **common, state=State.COMPLETED, reference_id=f"{SCRIPT}-6",
                                          request_id="r-6", output_url="data:text/html,<script>alert(1)</script>",
                                          finished_at=timezone.now()),
        "completed": make_submission(user, **common, state=State.COMPLETED, reference_id=f"{SCRIPT}-7",
                                     request_id="r-7", output_url=f"https://cdn.example.com/out.mp4?x={IMG}{SCRIPT}",
                                     finished_at=timezone.now()),
        "missing": make_submission(user, **common, state=State.MISSING, reference_id=f"{SCRIPT}-8",
                                   last_error=f"Gone: {SCRIPT}{IMG}"),
        "by_evil": make_submission(evil, **common, reference_id=f"{SCRIPT}-9", upstream_status=SCRIPT),
    }
    Problem.objects.create(code=Problem.Code.API_KEY_REJECTED, message=f"Chamelaion said {SCRIPT}{IMG}")
    return {"batch": batch, "evil": evil, **jobs}


def test_everything_typed_or_returned_is_escaped_on_every_page(logged_in, hostile, admin_client):
    batch = hostile["batch"]
    jobs = [value for key, value in hostile.items() if isinstance(value, Submission)]
    pages = [
        reverse("submissions:history"),
        reverse("submissions:history") + "?scope=team",
        reverse("submissions:history") + f"?scope=team&batch={batch.pk}",
        reverse("submissions:batch", args=[batch.pk]),
        *(reverse("submissions:detail", args=[job.pk]) for job in jobs),
    ]
    rendered = 0
    # The admin (who also sees the problem banner) has no jobs of their own: their "mine" can be empty.
    for who, urls in ((logged_in, pages), (admin_client, pages[1:])):
        for url in urls:
            for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
                response = who.get(url, **headers)
                assert response.status_code == 200, url
                html = response.content.decode()
                assert_nothing_injected(html, url)
                assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, url  # it was shown, escaped
                rendered += 1
    assert rendered == 2 * (2 * len(pages) - 1)


def test_only_http_outputs_become_players_and_links(logged_in, hostile):
    for name in ("failed", "completed_js", "completed_data"):
        html = logged_in.get(hostile[name].get_absolute_url()).content.decode()
        assert 'id="output-video"' not in html and "Download the video" not in html, name
        assert "No output." in html
    html = logged_in.get(hostile["completed"].get_absolute_url()).content.decode()
    assert_nothing_injected(html, "completed")
    tags = parse(html)
    (player,) = [attrs for tag, attrs in tags if attrs.get("id") == "output-video"]
    # No kept copy yet: both use Chamelaion's (http) link, which a browser will not download cross-origin.
    (download,) = re.findall(r'<a class="button" href="([^"]*)">Download the video</a>', html)
    assert player["src"] == html_module.unescape(download) == hostile["completed"].output_url
    # The audio URL (a javascript: one here) is only ever text.
    html = logged_in.get(hostile["send_failed"].get_absolute_url()).content.decode()
    assert "javascript:alert(document.cookie)" in text_of(html)
    assert not any(JS_URL in value for _tag, attrs in parse(html) for value in attrs.values())


def test_admin_pages_escape_and_link_only_http_urls(hostile, admin_client, client):
    client.post(LOGIN, {"username": SCRIPT, "password": IMG})  # an access attempt that remembers both
    pages = [
        reverse("admin:index"),
        reverse("admin:submissions_submission_changelist"),
        reverse("admin:submissions_submission_changelist") + "?q=%3Cscript%3E",
        reverse("admin:submissions_problem_changelist"),
        reverse("admin:axes_accessattempt_changelist"),
        reverse("admin:axes_accessattempt_change", args=[AccessAttempt.objects.get().pk]),
        reverse("admin:auth_user_changelist"),
        reverse("admin:auth_user_change", args=[hostile["evil"].pk]),
        *(reverse("admin:submissions_submission_change", args=[job.pk])
          for job in hostile.values() if isinstance(job, Submission)),
    ]
    pages += [reverse("admin:submissions_batch_changelist"),  # batches are in admin: none is skipped
              reverse("admin:submissions_batch_change", args=[hostile["batch"].pk])]
    for url in pages:
        response = admin_client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert_nothing_injected(html, url)
        assert "&lt;script&gt;" in html or "&lt;img" in html, url


def test_what_a_user_types_comes_back_escaped_in_forms_and_previews(logged_in, user):
    response = logged_in.post(reverse("submissions:new"), {
        "video_url": JS_URL, "audio_url": f"https://cdn.example.com/{IMG}.wav", "target_language": "de",
        "reference_id": SCRIPT, "title": f"{SCRIPT}{IMG}",
    })
    assert response.status_code == 200 and Submission.objects.count() == 0
    assert_nothing_injected(response.content.decode(), "new submission")

    response = logged_in.post(reverse("submissions:new_batch"), {
        "name": f"{SCRIPT}{IMG}", "video_url": JS_URL, "rows-TOTAL_FORMS": "1", "rows-INITIAL_FORMS": "0",
        "rows-0-target_language": "de", "rows-0-audio_url": f"https://cdn.example.com/{IMG}.wav",
    })
    assert response.status_code == 200 and Batch.objects.count() == 0
    assert_nothing_injected(response.content.decode(), "new batch")

    content = (
        "video_url,audio_url,language,reference_id,title\r\n"
        f'{JS_URL},"https://cdn.example.com/{IMG.replace(chr(34), chr(34) * 2)}.wav",{SCRIPT},{SCRIPT},{SCRIPT}\r\n'
        f"https://cdn.example.com/a.mp4,https://cdn.example.com/a.wav,de,ok-1,{SCRIPT}\r\n"
    )
    response = logged_in.post(reverse("submissions:csv_upload"), {
        "file": SimpleUploadedFile(f"{IMG}.csv", content.encode(), "text/csv"), "batch_name": f"{SCRIPT}{IMG}",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    html = logged_in.get(response["Location"]).content.decode()
    assert_nothing_injected(html, "CSV preview")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html

    response = Client().post(LOGIN, {"username": f"{SCRIPT}{IMG}", "password": "x"})
    assert_nothing_injected(response.content.decode(), "login")
