import os
import re

import pytest

# Playwright's sync API runs an event loop in the test thread; Django's ORM must still be usable there.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from submissions import roles
from submissions.sandbox import SandboxServer
from tests.factories import Cast, make_member
from tests.fakes import fake_chamelaion  # noqa: F401 - a fixture: pytest finds it here, for every test

CHROMIUM_PATH = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Short-cached reads (submissions.shortcache) outlive a test's rolled-back rows: start each test without them."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(scope="session")
def sandbox_server():
    server = SandboxServer(port=0, job_seconds=30)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def sandbox(sandbox_server, settings):
    """A clean sandbox, with DubDash in sandbox mode pointed at it and short timeouts."""
    sandbox_server.reset()
    settings.CHAMELAION_API_KEY = ""
    settings.CHAMELAION_SANDBOX_URL = sandbox_server.base_url
    settings.CHAMELAION_CONNECT_TIMEOUT = 2
    settings.CHAMELAION_READ_TIMEOUT = 0.5
    settings.CHAMELAION_SETTLE_SECONDS = 0.2
    yield sandbox_server
    sandbox_server.reset()


@pytest.fixture
def disk(settings, tmp_path):
    """Where stored uploads (MEDIA_ROOT, tmp_path / "media") and Django's temporary upload files
    (tmp_path / "tmp") go, both empty at first: for tests that look at what is left on disk."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.FILE_UPLOAD_TEMP_DIR = tmp_path / "tmp"
    settings.FILE_UPLOAD_TEMP_DIR.mkdir()
    return tmp_path


@pytest.fixture
def cast(db):
    """The shared cast: one member per role and account kind (cast.viewer, cast.submitter, cast.team_admin,
    cast.staff_team_admin, cast.superuser, cast.no_role), each made the first time a test asks."""
    return Cast(made={})


@pytest.fixture
def user(db):
    """A producer: the Submitter role."""
    return make_member("maria", role=roles.SUBMITTER)


@pytest.fixture
def other_user(db):
    return make_member("kenji", role=roles.SUBMITTER, password="dubbing-all-night")


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def logged_in_page(page, live_server, django_user_model):
    """A real Chromium page, logged in as a producer (the Submitter role)."""
    from playwright.sync_api import expect

    make_member("maria", role=roles.SUBMITTER)
    page.goto(live_server.url + "/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/$"))
    page.get_by_label("Username").fill("maria")
    page.get_by_label("Password").fill("dubbing-all-day")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="My submissions")).to_be_visible()
    return page


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    # Debian's Chromium, never a downloaded browser. A missing binary makes the launch fail: the
    # browser tests fail loudly rather than skip.
    return {**browser_type_launch_args, "executable_path": CHROMIUM_PATH, "args": CHROMIUM_ARGS}


def pytest_report_header(config):
    from django.db import connection

    return f"database: {connection.vendor} ({connection.settings_dict['NAME']})"
