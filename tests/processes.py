"""manage.py in a fresh process, as a deployment starts it: configuration is read from the environment
exactly once there. A bare environment: nothing from the test process (whose settings changed os.environ)
leaks in."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRODUCTION_LIKE = {
    "DEBUG": "false",
    "SECRET_KEY": "k3Jx9-Qm2vT7pLw4Zr8Nc1Yb6Hd0Sf5Ga3Ue9Ko2Wi7Xt4Rq1Vn8Mj6Ep0Cz5By3",
    "ALLOWED_HOSTS": "dubdash.example.com",
    "DATABASE_URL": "sqlite:////tmp/dubdash-settings-test.sqlite3",
}


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    """`manage.py args` with only PATH, HOME, LANG and TMPDIR from here, no DEBUG or SECRET_KEY unless `env`
    gives them."""
    clean = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "TMPDIR") if name in os.environ}
    clean.update({"DJANGO_SETTINGS_MODULE": "dubdash.settings", "DEBUG": "", "SECRET_KEY": ""}, **env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60
    )
