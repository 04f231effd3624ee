"""Where Django finds DubDash's auth backend: this dotted path is what AUTHENTICATION_BACKENDS names and
what every login stores in its session, so it stays here (a session naming a path no longer listed is
logged out). The backend itself lives with the shared infrastructure, in submissions.core.auth_backends."""

from submissions.core.auth_backends import ModelBackendOneQuery

__all__ = ["ModelBackendOneQuery"]
