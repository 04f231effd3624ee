"""The production settings module, fed a test environment: the suite exercises the same env parsing."""

import os

os.environ.update(
    {
        "DEBUG": "false",
        "SECRET_KEY": "tests-only-4q8Zr2LmN7xVb1KpW9sDf3GhJ6tYc0UeAo5iRz8XwQnMvB",
        "CHAMELAION_API_KEY": "",
        # The test client and the live server speak plain HTTP.
        "SECURE_SSL_REDIRECT": "false",
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
        "SECURE_HSTS_SECONDS": "0",
    }
)

from dubdash.settings import *  # noqa: F403

# No collectstatic before tests: serve static files from the source folders.
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STATIC_ROOT = None  # type: ignore[assignment]  # nothing is collected in tests; WhiteNoise serves from the finders
WHITENOISE_USE_FINDERS = True

# A file, not Django's shared-cache in-memory database: there, concurrent writers fail at once with
# "table is locked" instead of waiting, unlike the real (file, WAL) database the worker tests model.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # One file per run, so two test runs in the same tree never share (and corrupt) a database. var/ is
    # not in git: a fresh clone has to make it.
    (BASE_DIR / "var").mkdir(exist_ok=True)  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "var" / f"test-db-{os.getpid()}.sqlite3")}  # noqa: F405

# Uploads and kept outputs of a test run go to a folder of its own, deleted when the process ends: never
# into the project's var/media, which `make run` uses.
import atexit  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402

MEDIA_ROOT = Path(tempfile.mkdtemp(prefix="dubdash-test-media-"))  # noqa: F405
atexit.register(shutil.rmtree, MEDIA_ROOT, ignore_errors=True)
