"""The commands behind `make run`, run as real processes."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_ensure_admin_creates_once_and_prints_the_login(tmp_path, capsys, django_user_model):
    password_file = tmp_path / "admin-password.txt"
    call_command("ensure_admin", password_file=str(password_file))
    first = capsys.readouterr().out
    password = password_file.read_text().strip()
    assert "Created the administrator account 'admin'." in first
    assert f"as 'admin' with password {password!r}" in first
    admin = django_user_model.objects.get(username="admin")
    assert admin.is_superuser and admin.check_password(password)
    assert oct(password_file.stat().st_mode & 0o777) == "0o600"

    call_command("ensure_admin", password_file=str(password_file))
    second = capsys.readouterr().out
    assert "Created" not in second and f"with password {password!r}" in second
    assert django_user_model.objects.filter(username="admin").count() == 1

    admin.set_password("changed-by-the-admin")
    admin.save()
    call_command("ensure_admin", password_file=str(password_file))
    assert "with the password you set" in capsys.readouterr().out


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(url: str, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own http://127.0.0.1 server
                return response.status
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_rundev_serves_dashboard_and_sandbox_and_stops_both_on_ctrl_c(tmp_path):
    web, sandbox = free_port(), free_port()
    env = {
        **{name: os.environ[name] for name in ("PATH", "HOME", "LANG", "TMPDIR") if name in os.environ},
        "DEBUG": "true",
        "CHAMELAION_API_KEY": "",
        "CHAMELAION_SANDBOX_URL": f"http://127.0.0.1:{sandbox}/api",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=120)
    process = subprocess.Popen(
        [sys.executable, "manage.py", "rundev", "--port", str(web), "--sandbox-port", str(sandbox)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        assert wait_for(f"http://127.0.0.1:{web}/login/") == 200
        assert wait_for(f"http://127.0.0.1:{sandbox}/api/health") == 200
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert "Stopped." in output
    time.sleep(0.5)
    assert not listening(web) and not listening(sandbox)
