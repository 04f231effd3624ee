"""The Chamelaion API sandbox: a local, stdlib-only simulator of the provider's HTTP API.

``python manage.py sandbox`` (or ``python -m submissions.sandbox.server``) runs it on loopback.
`server.SandboxServer` puts the pieces together: `store` (accounts, jobs, clock, rate windows),
`contract` (validation and the provider's error messages), `api`, `media` and `control` (the areas
of the site, each with its route table from `routing`), `faults`, `bad_replies` and `outage` (what
goes wrong on purpose), `traffic` (what it has seen) and `httpd` (sockets and HTTP/1.1).
"""

from .faults import Faults
from .server import SandboxServer
from .store import DEMO_TOKEN, QUOTA_USED_UP_TOKEN, REVOKED_TOKEN

__all__ = ["DEMO_TOKEN", "QUOTA_USED_UP_TOKEN", "REVOKED_TOKEN", "Faults", "SandboxServer"]
