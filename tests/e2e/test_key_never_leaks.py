"""The API key never leaves DubDash's memory except in the x-api-key header sent to Chamelaion.

With recognisable keys stored (and another in the environment), every URL pattern of the project is
rendered as a superuser, as a team admin and anonymously (admin pages of every registered model, htmx
fragments, CSV exports, POST-only actions), then the error paths run (401 and 500 from the sandbox, an
unreachable API, the worker's rounds, crashes with DEBUG on). Every response (body, headers, cookies),
every log record at DEBUG level, everything printed, every SQL statement, every database row (admin
history included) and every error report is searched for the keys and their first 12 characters.

URL patterns are enumerated, not listed: a new page is covered as soon as it exists, and a new page with
a path parameter this file cannot fill makes the test fail until it is taught which object to show.
"""

from __future__ import annotations

import logging
import re
import secrets
import socket
import sys
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core import mail, serializers
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from django.utils.log import AdminEmailHandler
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

from submissions import chamelaion, roles
from submissions.apikey import clients, keys
from submissions.batches import csv_services
from submissions.batches import services as batch_services
from submissions.chamelaion import client as chamelaion_client
from submissions.jobs import services as job_services
from submissions.models import Batch, CsvUpload, Problem, Submission
from submissions.outbox import worker as outbox
from submissions.tracking import refresh
from submissions.tracking import services as tracking
from tests.factories import make_member, make_submission

pytestmark = pytest.mark.django_db

CANARY_NAME = "Leak canary account"


def canary(label: str) -> str:
    """A key nobody could mistake for anything else, unique per test run."""
    return f"LeakCanary{label}{secrets.token_hex(16)}"


# --- Watching every way out -------------------------------------------------------------------------------


class _Collect(logging.Handler):
    def __init__(self, sink: list[tuple[str, str]]):
        super().__init__(level=logging.DEBUG)
        self.sink = sink
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)  # the message, and the traceback when there is one
        except Exception as exc:  # a broken log call must not hide what it carried
            text = f"unformattable record: {exc!r}"
        self.sink.append((record.name, f"{text}\n{record.msg!r} {record.args!r} {record.__dict__!r}"))


@dataclass
class LeakWatch:
    """Everything DubDash lets out during a test, and where each piece came from."""

    secrets: list[str]
    seen: list[tuple[str, str]] = field(default_factory=list)  # (where, text)
    records: list[tuple[str, str]] = field(default_factory=list)  # (logger, text)
    responses: int = 0

    @property
    def needles(self) -> set[str]:
        return {s for secret in self.secrets for s in (secret, secret[:12])}

    def see(self, where: str, text: str) -> None:
        self.seen.append((where, text))

    def response(self, where: str, response) -> str:
        if getattr(response, "streaming", False):
            body = b"".join(response.streaming_content).decode("utf-8", "replace")
        else:
            body = response.content.decode("utf-8", "replace")
        headers = "\n".join(f"{name}: {value}" for name, value in response.items())
        self.see(where, f"{response.status_code}\n{headers}\n{response.cookies.output()}\n{body}")
        for hop in getattr(response, "redirect_chain", []):
            self.see(f"{where} (redirect)", str(hop))
        self.responses += 1
        return body

    @contextmanager
    def logs(self):
        """Every record of every logger at DEBUG, whatever the project's LOGGING says."""
        handler = _Collect(self.records)
        loggers = [logging.getLogger()] + [
            logger for logger in logging.root.manager.loggerDict.values() if isinstance(logger, logging.Logger)
        ]
        loggers += [
            logging.getLogger(name)
            for name in ("django", "django.request", "django.db.backends", "urllib3", "submissions", "requests")
        ]
        saved = [(logger, logger.level, logger.disabled) for logger in loggers]
        for logger in loggers:
            logger.setLevel(logging.DEBUG)
            logger.disabled = False
            if logger is logging.getLogger() or not logger.propagate:
                logger.addHandler(handler)
        try:
            yield
        finally:
            for logger, level, disabled in saved:
                logger.setLevel(level)
                logger.disabled = disabled
                if handler in logger.handlers:
                    logger.removeHandler(handler)

    def leaks(self) -> list[str]:
        found = []
        for where, text in self.seen + [(f"log record of {name}", text) for name, text in self.records]:
            for needle in self.needles:
                if needle in text:
                    at = text.index(needle)
                    found.append(f"{where}: …{text[max(0, at - 120):at + 40]!r}…")
        return found

    def assert_clean(self) -> None:
        leaks = self.leaks()
        assert not leaks, f"An API key leaked in {len(leaks)} places:\n" + "\n".join(leaks[:20])


def see_database(watch: LeakWatch) -> None:
    """Every row of every table, admin history (LogEntry) and the stored credential included."""
    for model in apps.get_models():
        rows = serializers.serialize("json", model._default_manager.all())
        watch.see(f"database table {model._meta.db_table}", rows)
    for entry in LogEntry.objects.all():
        watch.see(f"LogEntry {entry.pk}", f"{entry.object_repr}\n{entry.change_message}\n{entry.get_change_message()}")


@contextmanager
def watching(watch: LeakWatch, capfd):
    """Logs, SQL and printed output, for the whole block."""
    capfd.readouterr()
    with watch.logs(), CaptureQueriesContext(connection) as queries:
        yield
    for query in queries.captured_queries:
        watch.see("SQL", query["sql"])
    out, err = capfd.readouterr()
    watch.see("stdout", out)
    watch.see("stderr", err)
    see_database(watch)


# --- Every URL pattern --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    route: str  # the full route, e.g. "admin/submissions/submission/<path:object_id>/change/"
    name: str | None  # "admin:submissions_submission_change"; None for unnamed patterns
    params: tuple[str, ...]


def every_route() -> list[Route]:
    found: list[Route] = []

    def walk(resolver: URLResolver, prefix: str, namespaces: tuple[str, ...]) -> None:
        for pattern in resolver.url_patterns:
            if isinstance(pattern, URLResolver):
                more = (pattern.namespace,) if pattern.namespace else ()
                walk(pattern, prefix + str(pattern.pattern), namespaces + more)
            elif isinstance(pattern, URLPattern):
                name = ":".join((*namespaces, pattern.name)) if pattern.name else None
                found.append(Route(prefix + str(pattern.pattern), name, tuple(pattern.pattern.regex.groupindex)))

    walk(get_resolver(), "", ())
    return found


@dataclass
class World:
    """The objects the pages are shown for."""

    superuser: object
    team_admin: object
    submitter: object
    submissions: list[Submission]
    batch: Batch
    uploads: dict[int, CsvUpload]  # by user pk: an upload is only visible to whoever uploaded it


SUBMISSION_PAGES = {"detail", "send_again", "refresh", "cancel", "output", "output_retry", "new_take"}
BATCH_PAGES = {"batch", "batch_retry_failed", "batch_export", "batch_zip"}
CSV_PAGES = {"csv_preview", "csv_send"}
MEMBER_PAGES = {"team_member_update"}


def kwargs_for(route: Route, user, world: World) -> list[dict]:
    if not route.params:
        return [{}]
    short = route.name.split(":")[-1] if route.name else ""
    if route.name and route.name.startswith("submissions:"):
        if short in SUBMISSION_PAGES:
            return [{"pk": submission.pk} for submission in world.submissions]
        if short in BATCH_PAGES:
            return [{"pk": world.batch.pk}]
        if short in CSV_PAGES:
            upload = world.uploads.get(getattr(user, "pk", None)) or next(iter(world.uploads.values()))
            return [{"pk": upload.pk}]
        if short in MEMBER_PAGES:
            return [{"pk": world.submitter.pk}]
    if route.route.startswith("admin/"):
        if route.params == ("content_type_id", "object_id"):
            submission = world.submissions[0]
            return [{"content_type_id": ContentType.objects.get_for_model(Submission).pk, "object_id": submission.pk}]
        if route.params == ("app_label",):
            return [{"app_label": label} for label in sorted({m._meta.app_label for m in admin.site._registry})]
        if route.params == ("url",):
            return [{"url": "no-such-page/"}]
        model = _admin_model(route.route)
        if model is not None:
            instance = model._default_manager.order_by("pk").first()
            assert instance is not None, f"No {model.__name__} to show at {route.route}: create one in populate()"
            return [{param: instance.pk for param in route.params}]
    raise AssertionError(
        f"The leak test does not know which object to show at {route.route} ({route.name}): teach kwargs_for()."
    )


def _admin_model(route: str):
    parts = route.split("/")
    if len(parts) < 4:
        return None
    for model in admin.site._registry:
        if (model._meta.app_label, model._meta.model_name) == (parts[1], parts[2]):
            return model
    return None


def url_of(route: Route, kwargs: dict) -> str:
    if route.name:
        return reverse(route.name, kwargs=kwargs)
    if route.params == ("url",):
        return "/admin/" + kwargs["url"]
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(kwargs[m.group(1)]), route.route)


def render_everything(client: Client, user, world: World, watch: LeakWatch) -> dict[str, int]:
    """GET every pattern (and its htmx fragment); POST the ones that only take POST. Returns status by URL."""
    who = getattr(user, "username", "anonymous")
    statuses = {}
    for route in every_route():
        for kwargs in kwargs_for(route, user, world):
            url = url_of(route, kwargs)
            _log_in(client, user)
            response = client.get(url)
            watch.response(f"GET {url} as {who}", response)
            statuses[f"GET {url}"] = response.status_code
            if response.status_code == 405:
                _log_in(client, user)
                response = client.post(url, follow=True)
                watch.response(f"POST {url} as {who}", response)
                statuses[f"POST {url}"] = response.status_code
            elif response.status_code == 200 and not response.streaming:
                fragment = client.get(url, headers={"HX-Request": "true"})
                watch.response(f"GET {url} (htmx) as {who}", fragment)
    return statuses


def _log_in(client: Client, user) -> None:
    if user is None:
        client.logout()
    else:
        client.force_login(user)  # again each time: some POSTs (logout) end the session


# --- Setting the scene -------------------------------------------------------------------------------------


@pytest.fixture
def people(django_user_model, admin_user, user):
    boss = make_member("ayla", role=roles.TEAM_ADMIN, password="keys-and-more-keys", is_staff=True)
    return admin_user, boss, user


@pytest.fixture
def keyed(settings, sandbox):
    """Encryption keys, a key in the environment, and the API pointed at the sandbox."""
    settings.DUBDASH_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), Fernet.generate_key().decode()]
    settings.CHAMELAION_API_KEY = canary("Env")
    settings.CHAMELAION_BASE_URL = sandbox.base_url
    settings.AXES_ENABLE_ACCESS_FAILURE_LOG = True  # a row to show on its admin pages
    return settings


def populate(*, sandbox, people) -> World:
    superuser, boss, producer = people
    video, audio = sandbox.sample_video_url, sandbox.sample_audio_url
    sent = [
        job_services.submit(
            user=person, video_url=video, audio_url=audio, title=f"Episode by {person.username}", target_language="de"
        )
        for person in people
    ]
    now = timezone.now()
    others = [
        make_submission(
            producer, title="Failed upstream", state=Submission.State.FAILED, request_id=str(uuid.uuid4()),
            upstream_status="failed", upstream_error_message="video URL is not accessible", finished_at=now,
        ),
        make_submission(
            producer, title="Completed", state=Submission.State.COMPLETED, request_id=str(uuid.uuid4()),
            upstream_status="completed", output_url=sandbox.sample_video_url, finished_at=now,
        ),
        make_submission(
            boss, title="Could not be sent", state=Submission.State.SEND_FAILED,
            last_error="Chamelaion refused the request as invalid: “invalid request body”.",
        ),
    ]
    rows = [{"video_url": video, "audio_url": audio, "target_language": language} for language in ("fr", "es")]
    batch = batch_services.create_batch(user=boss, name="Leak batch", rows=rows)
    content = f"video_url,audio_url,language,title\n{video},{audio},it,CSV row\n"
    uploads = {
        person.pk: csv_services.store_upload(user=person, filename="leak.csv", content=content) for person in (superuser, boss)
    }
    Problem.objects.get_or_create(code=Problem.Code.QUOTA_USED_UP, defaults={"message": "The plan's quota is used up."})
    _axes_rows(boss)
    return World(superuser, boss, producer, sent + others + list(batch.submissions.all()), batch, uploads)


def _axes_rows(person) -> None:
    """A successful and a failed login through the real login page (the rows django-axes keeps)."""
    from django.conf import settings

    assert settings.AXES_ENABLE_ACCESS_FAILURE_LOG  # set by the keyed fixture, so the failure log has a row
    visitor = Client()
    visitor.post(reverse("login"), {"username": person.username, "password": "keys-and-more-keys"})
    Client().post(reverse("login"), {"username": person.username, "password": "not-the-password"})


def store_through_the_pages(*, superuser, boss, first: str, second: str) -> None:
    """Set the key the two ways people do: admin (superuser), then the settings page (team admin)."""
    desk = Client()
    desk.force_login(superuser)
    added = desk.post(reverse("admin:submissions_apicredential_add"), {"api_key": first})
    assert added.status_code == 302, added.content.decode()[:2000]
    page = Client()
    page.force_login(boss)
    saved = page.post(reverse("submissions:api_key"), {"action": "save", "api_key": second})
    assert saved.status_code == 302
    assert keys.stored_api_key() == second


# --- The tests ---------------------------------------------------------------------------------------------


def test_every_page_as_superuser_team_admin_and_visitor(keyed, sandbox, people, client, capfd):
    superuser, boss, _ = people
    first, stored = canary("Old"), canary("Stored")
    for token in (first, stored):
        sandbox.add_token(token, CANARY_NAME)
    watch = LeakWatch([first, stored, keyed.CHAMELAION_API_KEY, *keyed.DUBDASH_ENCRYPTION_KEYS])

    with watching(watch, capfd):
        store_through_the_pages(superuser=superuser, boss=boss, first=first, second=stored)
        world = populate(sandbox=sandbox, people=people)
        statuses = {
            who: render_everything(client, person, world, watch)
            for who, person in (("superuser", superuser), ("team admin", boss), ("visitor", None))
        }
        for query in ("scope=team", "scope=mine&q=Episode"):
            client.force_login(boss)
            watch.response(f"history export ?{query}", client.get(reverse("submissions:history_export") + "?" + query))
        client.force_login(boss)
        tested = watch.response("test connection", client.post(reverse("submissions:api_key_test")))
        sandbox.advance(20)
        Submission.objects.update(next_poll_at=None)
        round_report = tracking.refresh_round()
        outbox.send_due(seconds=1, wait_for_budget=False)

    watch.assert_clean()
    # The watch really watched: pages, the key's last four, DEBUG records from the HTTP client, the worker.
    assert watch.responses > 300
    assert statuses["superuser"]["GET /settings/api-key/"] == 200 and statuses["team admin"]["GET /settings/api-key/"] == 200
    assert statuses["superuser"]["GET /admin/submissions/apicredential/1/change/"] == 200
    assert f"•••• {stored[-4:]}" in tested and f"Connected as “{CANARY_NAME}”" in tested
    assert any(name.startswith("urllib3") and "DEBUG" in text for name, text in watch.records)
    assert any(name == "django.db.backends" for name, _ in watch.records)
    assert round_report.api_calls > 0 and not round_report.failed
    assert LogEntry.objects.filter(content_type__model="apicredential").count() == 2


def test_error_paths_401_500_unreachable_and_the_worker(keyed, sandbox, people, client, capfd):
    superuser, boss, producer = people
    rejected = canary("Rejected")  # unknown to the sandbox: every authenticated call is 401 "invalid token"
    watch = LeakWatch([rejected, keyed.CHAMELAION_API_KEY, *keyed.DUBDASH_ENCRYPTION_KEYS])
    video, audio = sandbox.sample_video_url, sandbox.sample_audio_url

    overviews = [
        reverse("submissions:history"),
        reverse("submissions:history") + "?scope=team",
        reverse("submissions:api_key"),
        reverse("admin:submissions_problem_changelist"),
        reverse("admin:submissions_submission_changelist"),
    ]

    def pages(label: str) -> None:
        for person in (superuser, boss):
            client.force_login(person)
            for url in overviews:
                watch.response(f"{label}: GET {url} as {person.username}", client.get(url))
            for pk in Submission.objects.values_list("pk", flat=True):
                detail = (reverse("submissions:detail", args=[pk]), reverse("admin:submissions_submission_change", args=[pk]))
                for url in detail:
                    watch.response(f"{label}: GET {url} as {person.username}", client.get(url))
            watch.response(f"{label}: test connection", client.post(reverse("submissions:api_key_test")))

    def worker_round() -> None:
        make_submission(producer, state=Submission.State.PENDING, next_attempt_at=timezone.now() - timedelta(seconds=1))
        make_submission(producer, state=Submission.State.QUEUED, request_id=str(uuid.uuid4()), next_poll_at=None)
        Problem.objects.all().delete()  # so the worker tries at once instead of waiting for its recheck
        outbox.send_due(seconds=1, wait_for_budget=False)
        tracking.refresh_round()

    with watching(watch, capfd):
        store_through_the_pages(superuser=superuser, boss=boss, first=canary("First"), second=rejected)

        # 401 "invalid token": on the page a producer submits from, the banner, the worker's log lines.
        worker_round()
        client.force_login(boss)
        form = {"video_url": video, "audio_url": audio, "title": "Rejected key", "target_language": "de"}
        watch.response("submit with a rejected key", client.post(reverse("submissions:new"), form, follow=True))
        pages("401")

        # 500 "internal error" on every call.
        sandbox.faults.rate_500 = 1.0
        worker_round()
        pages("500")
        sandbox.faults.rate_500 = 0.0

        # Nothing listening at the base URL.
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        keyed.CHAMELAION_BASE_URL = f"http://127.0.0.1:{port}/api"
        worker_round()
        pages("unreachable")
        refresh.refresh_now(submission=Submission.objects.filter(request_id__isnull=False).first())

    watch.assert_clean()
    logged = "\n".join(text for _, text in watch.records)
    assert "Refresh round stopped: Unauthorized (invalid token)" in logged
    assert "Sending submission" in logged and "Unauthorized (invalid token)" in logged
    assert "ServerError (internal error)" in logged
    assert "connection failed" in logged
    bodies = "\n".join(text for where, text in watch.seen if "test connection" in where)
    assert "Chamelaion said: “invalid token” (HTTP 401)." in bodies
    assert "Chamelaion said: “internal error” (HTTP 500)." in bodies
    assert "What went wrong: connection failed." in bodies


def _crash(*args, **kwargs):
    raise RuntimeError("something unexpected went wrong")


@pytest.mark.parametrize("debug", [True, False])
def test_error_reports_hide_the_key(keyed, sandbox, people, client, capfd, monkeypatch, settings, debug):
    """A crash while the key is in local variables (inside the HTTP client, or while storing it): neither
    the DEBUG error page nor the error report text (what error e-mails carry) shows it."""
    superuser, boss, _ = people
    stored, typed = canary("Stored"), canary("Typed")
    sandbox.add_token(stored, CANARY_NAME)
    watch = LeakWatch([stored, typed, keyed.CHAMELAION_API_KEY, *keyed.DUBDASH_ENCRYPTION_KEYS])
    settings.ADMINS = [("Ops", "ops@example.com")]
    settings.DEBUG = debug
    client.raise_request_exception = False

    with watching(watch, capfd):
        store_through_the_pages(superuser=superuser, boss=boss, first=canary("First"), second=stored)
        client.force_login(boss)
        with monkeypatch.context() as patch:
            patch.setattr(chamelaion.ChamelaionClient, "health", lambda self: True)
            patch.setattr(chamelaion_client, "_decode", _crash)  # crashes inside _call, whose headers hold the key
            crashed = client.post(reverse("submissions:api_key_test"))
            watch.response("crash inside the HTTP client", crashed)
            try:
                clients.get_client().me()
            except RuntimeError:
                exc_info = sys.exc_info()
        with monkeypatch.context() as patch:
            patch.setattr(keys, "_fernet", _crash)  # crashes while the typed key is a local variable
            crashed_storing = client.post(reverse("submissions:api_key"), {"action": "save", "api_key": typed})
            watch.response("crash while storing", crashed_storing)

        reporter = ExceptionReporter(None, *exc_info)
        html, text = reporter.get_traceback_html(), reporter.get_traceback_text()
        watch.see("error report (HTML)", html)
        watch.see("error report (text, as e-mailed)", text)
        record = logging.LogRecord("django.request", logging.ERROR, __file__, 1, "Internal Server Error", None, exc_info)
        handler = AdminEmailHandler(include_html=True)
        handler.emit(record)
        for message in mail.outbox:
            watch.see("error e-mail", message.body + "".join(str(a[1]) for a in message.alternatives))

    watch.assert_clean()
    assert crashed.status_code == 500 and crashed_storing.status_code == 500
    if debug:  # the technical page is there, with the frames, minus the key
        assert "something unexpected went wrong" in crashed.content.decode() and "_call" in crashed.content.decode()
    assert mail.outbox and "headers" in html and "x-api-key" not in text  # the frames' variables were shown
    # Without DubDash's filter the same report does show the key: the filter is what keeps it out.
    plain = ExceptionReporter(None, *exc_info)
    plain.filter = SafeExceptionReporterFilter()
    assert stored in plain.get_traceback_html()


def test_the_watch_catches_a_key_that_is_printed_logged_or_rendered(keyed, sandbox, people, capfd, settings):
    """The test above must fail the day someone shows the key: prove each way out is watched."""
    superuser, boss, _ = people
    stored = canary("Stored")
    sandbox.add_token(stored, CANARY_NAME)
    store_through_the_pages(superuser=superuser, boss=boss, first=canary("First"), second=stored)

    for leak in ("print", "log", "page", "log-prefix"):
        watch = LeakWatch([stored])
        with watching(watch, capfd):
            key = keys.stored_api_key()
            if leak == "print":
                print(f"using key {key}")
            elif leak == "log":
                logging.getLogger("urllib3.connectionpool").debug("headers: %s", {"x-api-key": key})
            elif leak == "log-prefix":
                logging.getLogger("submissions.tracking.services").warning("key starts %s", key[:12])
            else:
                from django.http import HttpResponse

                watch.response("a page", HttpResponse(f"<p>{key}</p>"))
        assert watch.leaks(), f"a key that was leaked by {leak} went unnoticed"
