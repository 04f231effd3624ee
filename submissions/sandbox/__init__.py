"""The Chamelaion API sandbox: a local, stdlib-only simulator of the provider's HTTP API.

See ``server.py`` for the behaviour; ``python manage.py sandbox`` runs it on loopback.
"""

from .server import DEMO_TOKEN, QUOTA_USED_UP_TOKEN, REVOKED_TOKEN, Faults, SandboxServer

__all__ = ["DEMO_TOKEN", "QUOTA_USED_UP_TOKEN", "REVOKED_TOKEN", "Faults", "SandboxServer"]
