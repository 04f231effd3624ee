"""DubDash settings. Every value a deployment may change comes from the environment (see .env.example)."""

from datetime import timedelta
from pathlib import Path
from string import Formatter as _Formatter

from django.conf.global_settings import LANGUAGES as ALL_LANGUAGES
from django.core.exceptions import ImproperlyConfigured

from dubdash.env import StrictEnv

BASE_DIR = Path(__file__).resolve().parent.parent
env = StrictEnv()
# A local .env is a convenience for development; the real environment always wins.
StrictEnv.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)

_DEV_SECRET_KEY = "dev-only-insecure-secret-key-do-not-use-in-production"  # noqa: S105 - refused unless DEBUG
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. With DEBUG=false DubDash needs a real secret key: "
            "python -c 'import secrets; print(secrets.token_urlsafe(50))'"
        )
    SECRET_KEY = _DEV_SECRET_KEY
elif not DEBUG and (SECRET_KEY == _DEV_SECRET_KEY or len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5):
    raise ImproperlyConfigured("SECRET_KEY is too weak for DEBUG=false: use at least 50 random characters.")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "axes",  # login throttling (see "Security" below)
    "submissions",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "dubdash.security.SecurityHeadersMiddleware",  # Content-Security-Policy (see "Security" below)
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes requires: it turns a lockout flagged by its backend into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "dubdash.urls"
WSGI_APPLICATION = "dubdash.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "submissions.core.context_processors.dubdash",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the worker write while pages read; the timeout rides out short write locks.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
else:
    # A connection kept across requests (checked before reuse): opening one took 2.7 ms on loopback
    # without a password check, most of what a whole history page costs. 0: one per request (Django's default).
    DATABASES["default"]["CONN_MAX_AGE"] = env.non_negative_int("DATABASE_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "submissions:history"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# --- Review and e-mail (issue 12) ---
# Whether a member may approve a take they made themselves. Off: a second pair of eyes signs off.
ALLOW_SELF_APPROVAL = env.bool("ALLOW_SELF_APPROVAL", default=False)
# How e-mail leaves: django-environ's email_url, e.g. smtp+tls://user:password@smtp.example.com:587. The
# default, consolemail://, prints every message where `make run` shows its log.
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="DubDash <dubdash@localhost>")
# Seconds an SMTP exchange may take; well under OutgoingEmail.STUCK_AFTER.
EMAIL_TIMEOUT = env.positive_float("EMAIL_TIMEOUT", default=30.0)
EMAIL_MAX_ATTEMPTS = env.non_negative_int("EMAIL_MAX_ATTEMPTS", default=12)
EMAIL_RETRY_BASE_SECONDS = env.positive_float("EMAIL_RETRY_BASE_SECONDS", default=30.0)
EMAIL_RETRY_MAX_SECONDS = env.positive_float("EMAIL_RETRY_MAX_SECONDS", default=3600.0)
# The address links in e-mails point at (the worker has no request to read it from).
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

# Uploaded source files wait here until they are sent; they are never served.
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "var" / "media")
# The largest video or audio file a user may upload (each file). Uploads go straight to temporary files
# on disk, never memory, and a file stops being stored the moment it passes the limit.
UPLOAD_MAX_BYTES = env.non_negative_int("UPLOAD_MAX_BYTES", default=200 * 1024 * 1024)
if UPLOAD_MAX_BYTES < 1:
    raise ImproperlyConfigured("UPLOAD_MAX_BYTES must be at least 1.")
FILE_UPLOAD_HANDLERS = ["submissions.uploads.files.LimitedTemporaryFileUploadHandler"]

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Kept copies of outputs (submissions.outputs): a folder under MEDIA_ROOT, or an S3-compatible bucket when
# OUTPUT_S3_BUCKET is set (AWS S3, MinIO, Cloudflare R2, ...), which every machine of a deployment shares.
OUTPUT_S3_BUCKET = env.str("OUTPUT_S3_BUCKET", default="")
if OUTPUT_S3_BUCKET:
    _outputs_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": OUTPUT_S3_BUCKET,
            "endpoint_url": env.str("OUTPUT_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("OUTPUT_S3_REGION", default="") or None,
            "access_key": env.str("OUTPUT_S3_ACCESS_KEY_ID", default="") or None,
            "secret_key": env.str("OUTPUT_S3_SECRET_ACCESS_KEY", default="") or None,
            "location": env.str("OUTPUT_S3_PREFIX", default=""),
            "file_overwrite": False,
            "default_acl": None,
            # Downloads may redirect to a presigned link (OUTPUT_S3_REDIRECT): short-lived, one per click.
            "querystring_auth": True,
            "signature_version": "s3v4",  # presigned links: SigV2 is refused by most regions
            "querystring_expire": env.non_negative_int("OUTPUT_S3_LINK_SECONDS", default=300),
        },
    }
else:
    _outputs_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"base_url": "/unserved/"}}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    "outputs": _outputs_storage,
}
# On S3, a download redirects to a presigned link to the object (same file name), so the bytes never pass
# through DubDash; false streams them through DubDash as on local storage.
OUTPUT_S3_REDIRECT = env.bool("OUTPUT_S3_REDIRECT", default=True)

# HTTPS hardening: on by default whenever DEBUG is off, each switch overridable for odd deployments.
_secure_default = not DEBUG
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=_secure_default)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=_secure_default)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=_secure_default)
SECURE_HSTS_SECONDS = env.non_negative_int("SECURE_HSTS_SECONDS", default=31536000 if _secure_default else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=_secure_default)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=_secure_default)
if env.bool("SECURE_PROXY_SSL_HEADER", default=False):
    # Only behind a proxy that sets X-Forwarded-Proto itself; otherwise clients could spoof HTTPS.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"

# --- Security: login throttling and browser-side protections ------------------------------------------
# Login throttling (django-axes): after AXES_FAILURE_LIMIT failed logins for one username from one IP
# address, that pair is locked out for AXES_COOLOFF_MINUTES (0: until an administrator unlocks it, in
# admin under "Access attempts"). Every attempt during a lockout, right or wrong, restarts the wait.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out pair before the password is checked
    "submissions.auth_backends.ModelBackendOneQuery",  # Django's ModelBackend, permissions in one query
]
AXES_FAILURE_LIMIT = env.non_negative_int("AXES_FAILURE_LIMIT", default=5)
if AXES_FAILURE_LIMIT < 1:
    raise ImproperlyConfigured("AXES_FAILURE_LIMIT must be at least 1.")
AXES_COOLOFF_MINUTES = env.non_negative_int("AXES_COOLOFF_MINUTES", default=15)
AXES_COOLOFF_TIME = timedelta(minutes=AXES_COOLOFF_MINUTES) if AXES_COOLOFF_MINUTES else None
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = True  # axes' default, relied on by the message
AXES_RESET_ON_SUCCESS = True  # a successful login forgets that account's earlier failures from that address
AXES_VERBOSE = False  # no start-up banner on every manage.py command; lockouts are still logged
AXES_LOCKOUT_CALLABLE = "dubdash.security.lockout_response"  # the lockout page, inside the normal layout
# The client's address: REMOTE_ADDR, unless DubDash runs behind AXES_IPWARE_PROXY_COUNT reverse proxies
# that each append to X-Forwarded-For (then the address the outermost proxy saw). Unset: no proxy; never
# set it without such proxies, or any client could pick the address it is throttled under.
AXES_IPWARE_PROXY_COUNT = env.non_negative_int("AXES_IPWARE_PROXY_COUNT", default=0) or None
AXES_CLIENT_IP_CALLABLE = "dubdash.security.client_ip_address"
# Response headers: Content-Security-Policy comes from dubdash.security.SecurityHeadersMiddleware; these
# are Django's own (X-Frame-Options DENY and Referrer-Policy same-origin are set just above).
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# --- end of the security block ------------------------------------------------------------------------

# The Chamelaion API. Without a key DubDash runs in sandbox mode against the local simulator.
CHAMELAION_API_KEY = env.str("CHAMELAION_API_KEY", default="").strip()
CHAMELAION_BASE_URL = env.http_url("CHAMELAION_BASE_URL", default="https://api.chamelaion.com/api")
CHAMELAION_SANDBOX_URL = env.http_url("CHAMELAION_SANDBOX_URL", default="http://127.0.0.1:8765/api")
CHAMELAION_CONNECT_TIMEOUT = env.positive_float("CHAMELAION_CONNECT_TIMEOUT", default=5)
CHAMELAION_READ_TIMEOUT = env.positive_float("CHAMELAION_READ_TIMEOUT", default=30)
# After a send whose outcome is unknown (timeout, dropped connection, 5xx), how long the job may still
# appear upstream. Until then DubDash only looks the job up; it never sends it again.
CHAMELAION_SETTLE_SECONDS = env.positive_float("CHAMELAION_SETTLE_SECONDS", default=60)

# The status worker (manage.py run_worker). A job is polled every (its age / 10) seconds, within these
# bounds: young jobs often, old ones rarely. Rounds start every WORKER_INTERVAL_SECONDS.
WORKER_INTERVAL_SECONDS = env.positive_float("WORKER_INTERVAL_SECONDS", default=2)
POLL_MIN_SECONDS = env.positive_float("POLL_MIN_SECONDS", default=3)
POLL_MAX_SECONDS = env.positive_float("POLL_MAX_SECONDS", default=120)
if POLL_MAX_SECONDS < POLL_MIN_SECONDS:
    raise ImproperlyConfigured("POLL_MAX_SECONDS must be at least POLL_MIN_SECONDS.")

# The outbox. One budget of generation requests per minute for the whole deployment (the API allows 60
# for the account); failed sends that may succeed later are retried with jittered exponential backoff
# until SEND_MAX_ATTEMPTS or SEND_MAX_AGE_SECONDS, then marked "could not be sent".
SEND_RATE_LIMIT_PER_MINUTE = env.non_negative_int("SEND_RATE_LIMIT_PER_MINUTE", default=60)
if SEND_RATE_LIMIT_PER_MINUTE < 1:
    raise ImproperlyConfigured("SEND_RATE_LIMIT_PER_MINUTE must be at least 1.")
SEND_MAX_ATTEMPTS = env.non_negative_int("SEND_MAX_ATTEMPTS", default=8)
SEND_MAX_AGE_SECONDS = env.positive_float("SEND_MAX_AGE_SECONDS", default=3600)
SEND_RETRY_BASE_SECONDS = env.positive_float("SEND_RETRY_BASE_SECONDS", default=2)
SEND_RETRY_MAX_SECONDS = env.positive_float("SEND_RETRY_MAX_SECONDS", default=300)

# Offered as target languages; codes are the BCP 47 tags Django already knows.
# Kept copies of outputs (submissions.outputs).
OUTPUT_KEEP = env.bool("OUTPUT_KEEP", default=True)
OUTPUT_MAX_BYTES = env.non_negative_int("OUTPUT_MAX_BYTES", default=4 * 1024**3)
if OUTPUT_MAX_BYTES < 1:
    raise ImproperlyConfigured("OUTPUT_MAX_BYTES must be at least 1.")
OUTPUT_COPY_CONNECT_TIMEOUT = env.positive_float("OUTPUT_COPY_CONNECT_TIMEOUT", default=10)
OUTPUT_COPY_READ_TIMEOUT = env.positive_float("OUTPUT_COPY_READ_TIMEOUT", default=60)
# One copy never takes longer than this (then it is retried): a stalled trickle must not hold the copier.
OUTPUT_COPY_MAX_SECONDS = min(1200.0, env.positive_float("OUTPUT_COPY_MAX_SECONDS", default=1200))
# Copying is paced so that it takes a bounded share of the worker's machine: polling
# and sending beside it keep their speed (make bench, "copying outputs beside polling").
OUTPUT_COPY_MAX_MB_PER_SECOND = env.positive_float("OUTPUT_COPY_MAX_MB_PER_SECOND", default=40)
OUTPUT_COPY_MAX_ATTEMPTS = env.non_negative_int("OUTPUT_COPY_MAX_ATTEMPTS", default=6)
OUTPUT_COPY_RETRY_BASE_SECONDS = env.positive_float("OUTPUT_COPY_RETRY_BASE_SECONDS", default=10)
OUTPUT_COPY_RETRY_MAX_SECONDS = env.positive_float("OUTPUT_COPY_RETRY_MAX_SECONDS", default=1800)
# Copies of jobs that completed before copying was on (or while it was off) are caught up at this pace.
OUTPUT_CATCH_UP_PER_MINUTE = env.non_negative_int("OUTPUT_CATCH_UP_PER_MINUTE", default=20)
# The download's file name. Fields: {title}, {language} (code), {language_name}, {take}, {reference_id},
# {request_id}, {id}. Made safe for every OS (no slashes, quotes or reserved names).
OUTPUT_FILENAME_TEMPLATE = env.str("OUTPUT_FILENAME_TEMPLATE", default="{title}_{language}_take{take}.mp4")
# Checked here, once: a malformed template would otherwise fail every download.
_NAME_FIELDS = {"title", "language", "language_name", "take", "reference_id", "request_id", "id"}
try:
    _named = {name for _text, name, _spec, _conv in _Formatter().parse(OUTPUT_FILENAME_TEMPLATE) if name is not None}
except ValueError as _error:
    raise ImproperlyConfigured(f"OUTPUT_FILENAME_TEMPLATE is malformed: {_error}") from None
if _named - _NAME_FIELDS or not _named:
    raise ImproperlyConfigured(
        f"OUTPUT_FILENAME_TEMPLATE may use only {{{'}, {'.join(sorted(_NAME_FIELDS))}}} (and at least one of them)."
    )
# The history's "Download ticked (ZIP)": at most this many jobs in one ZIP.
HISTORY_ZIP_MAX_JOBS = env.non_negative_int("HISTORY_ZIP_MAX_JOBS", default=100)
# Uploaded files of jobs that were never sent (could not be sent, or cancelled) are deleted after this.
UPLOAD_KEEP_DAYS = env.non_negative_int("UPLOAD_KEEP_DAYS", default=7)

DUBBING_LANGUAGES = sorted(((code, str(name)) for code, name in ALL_LANGUAGES), key=lambda item: item[1])

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "{asctime} {levelname} {name}: {message}", "style": "{"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Django adds its own console handler; without this every line would print twice.
        "django": {"level": "INFO"},
        # urllib3 logs request lines at DEBUG; keep it quiet even when the app is verbose.
        "urllib3": {"level": "WARNING"},
    },
}

# --- Encryption of stored secrets (the Chamelaion API key set on the settings page) -------------------
# DUBDASH_ENCRYPTION_KEYS: comma-separated Fernet keys. The first encrypts, every one decrypts
# (MultiFernet), so a rotation is: put a new key first, restart, run `python manage.py
# rotate_encryption_keys` (re-encrypts what is stored with the first key), then drop the old key.
# Make a key: python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"
# Unset with DEBUG=true: a key derived from SECRET_KEY, for development only (whoever knows SECRET_KEY,
# and the built-in one is public, can decrypt). Unset with DEBUG=false: nothing can be stored (the
# settings page says why), while CHAMELAION_API_KEY and sandbox mode work as before.
from cryptography.fernet import Fernet as _Fernet  # noqa: E402

DUBDASH_ENCRYPTION_KEYS = [key.strip() for key in env.str("DUBDASH_ENCRYPTION_KEYS", default="").split(",") if key.strip()]
for _position, _key in enumerate(DUBDASH_ENCRYPTION_KEYS, start=1):
    try:
        _Fernet(_key)
    except ValueError:
        # Never the value itself in the message: it is a secret, and start-up errors end up in logs.
        raise ImproperlyConfigured(
            f"DUBDASH_ENCRYPTION_KEYS: key number {_position} is not a Fernet key (32 random bytes in url-safe "
            "base64, 44 characters). Make one with: python -c \"from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())\""
        ) from None
if not DUBDASH_ENCRYPTION_KEYS and DEBUG:
    import base64 as _base64
    import hashlib as _hashlib

    DUBDASH_ENCRYPTION_KEYS = [
        _base64.urlsafe_b64encode(_hashlib.sha256(b"dubdash-dev-encryption-key\0" + SECRET_KEY.encode()).digest()).decode()
    ]
# Error reports (the DEBUG error page, error e-mails) list every frame's local variables: this filter
# also hides any variable that holds a known API key, whatever its name (the request headers inside the
# HTTP client, for example).
DEFAULT_EXCEPTION_REPORTER_FILTER = "submissions.apikey.reporting.SecretScrubbingReporterFilter"
# --- end of the stored-secrets block -------------------------------------------------------------------
