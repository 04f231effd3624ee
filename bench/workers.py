"""Real `manage.py run_worker` processes on the caller's own database, for the chaos test and the
benchmarks: started, SIGKILLed, stopped like a deployment does, their output kept in a file."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent


def database_url(connection) -> str:
    """The database this process uses, as the DATABASE_URL of a worker process."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    if connection.vendor != "postgresql":
        raise RuntimeError(f"worker processes on {connection.vendor} are not supported")
    credentials = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    host = quote(db["HOST"] or "localhost", safe="")
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{credentials}@{host}{port}/{quote(db['NAME'], safe='')}"


class Worker:
    """One `manage.py run_worker` process; its output goes to a file, read when something fails."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path):
        self.name = name
        self.env = env
        self.log_path = Path(log_dir) / f"{name}.log"
        self.process: subprocess.Popen | None = None
        self.runs = 0

    def start(self) -> None:
        self.runs += 1
        interval = self.env.get("WORKER_INTERVAL_SECONDS", "0.2")
        with open(self.log_path, "a") as log:
            log.write(f"--- start #{self.runs}\n")
            log.flush()
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "run_worker", "--interval", interval],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no clean-up, no chance to finish the send in progress."""
        if self.alive():
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM, as a deployment stops a worker; SIGKILL if it does not stop in time. Returns the
        exit code (None: it had to be killed)."""
        if not self.alive():
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def output(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def sends_attempted(self) -> int:
        """From the lines the worker prints after each send pass ("Outbox: N sends attempted")."""
        return sum(int(line.split()[1]) for line in self.output().splitlines() if line.startswith("Outbox: "))
