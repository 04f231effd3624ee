"""django-environ, made strict: a typo in a deployment's environment must stop start-up, not silently
turn a security setting off."""

from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


class StrictEnv(environ.Env):
    def bool(self, var, default=environ.Env.NOTSET):
        raw = self.str(var, default="" if default is not environ.Env.NOTSET else environ.Env.NOTSET)
        if raw == "" and default is not environ.Env.NOTSET:
            return default
        value = raw.strip().lower()
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise ImproperlyConfigured(f"{var} must be true or false, not {raw!r}")

    def positive_float(self, var, default):
        raw = self.str(var, default=str(default))
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
        if not value > 0:
            raise ImproperlyConfigured(f"{var} must be a positive number of seconds, not {raw!r}")
        return value

    def non_negative_int(self, var, default):
        raw = self.str(var, default=str(default))
        if not raw.strip().isdigit():
            raise ImproperlyConfigured(f"{var} must be a whole number of 0 or more, not {raw!r}")
        return int(raw)

    def http_url(self, var, default):
        raw = self.str(var, default=default).strip().rstrip("/")
        parts = urlsplit(raw)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ImproperlyConfigured(f"{var} must be an absolute http(s) URL, not {raw!r}")
        return raw
