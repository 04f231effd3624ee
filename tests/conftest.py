import os

import pytest

# Playwright's sync API runs an event loop in the test thread; Django's ORM must still be usable there.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from submissions.sandbox import SandboxServer  # noqa: E402

CHROMIUM_PATH = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


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
def user(django_user_model):
    return django_user_model.objects.create_user(username="maria", password="dubbing-all-day")


@pytest.fixture
def other_user(django_user_model):
    return django_user_model.objects.create_user(username="kenji", password="dubbing-all-night")


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    # Debian's Chromium, never a downloaded browser. A missing binary makes the launch fail: the
    # browser tests fail loudly rather than skip.
    return {**browser_type_launch_args, "executable_path": CHROMIUM_PATH, "args": CHROMIUM_ARGS}


def pytest_report_header(config):
    from django.db import connection

    return f"database: {connection.vendor} ({connection.settings_dict['NAME']})"
