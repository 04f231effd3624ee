"""The moving parts of a deployment, for the chaos test and the benchmarks: real `manage.py run_worker`
processes on the caller's own database (started, SIGKILLed, stopped like a deployment does, output kept
in a file), and the web path (threads doing what web requests do)."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import traceback
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from submissions.batches import services as batch_services
from submissions.jobs import services as job_services
from submissions.outbox import sending

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


class WebPath:
    """Threads doing what web requests do while the workers run: submit (save, then send at once if the
    budget has room), submit a batch, "Send again" on a send a crash interrupted, and send a waiting
    submission that someone is looking at (it goes only if the budget has room)."""

    def __init__(
        self,
        user,
        reference_ids: list[str],
        *,
        threads: int,
        inputs: dict,
        new_work_share: float = 0.5,
        largest_batch: int = 5,
        pace: tuple[float, float] = (0.01, 0.06),
    ):
        self.user = user
        self.to_create = list(reference_ids)
        self.inputs = inputs
        self.new_work_share = new_work_share
        self.largest_batch = largest_batch
        self.pace = pace
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.pause = threading.Event()  # set: the web path sends nothing (no request comes in) meanwhile
        self.errors: list[str] = []
        self.calls: Counter = Counter()
        self.in_flight: Counter = Counter()
        self.threads = [threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(threads)]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def finish(self) -> bool:
        """Stop and wait for the threads; False if one hung."""
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)
        return not any(thread.is_alive() for thread in self.threads)

    @property
    def created_all(self) -> bool:
        with self.lock:
            return not self.to_create

    def _take(self, count: int) -> list[str]:
        with self.lock:
            taken, self.to_create = self.to_create[:count], self.to_create[count:]
            return taken

    def _run(self, number: int) -> None:
        from django.db import connection

        rng = random.Random(number)
        try:
            while not self.stop.is_set():
                if not self.pause.is_set():
                    self._one_request(rng)
                self.stop.wait(rng.uniform(*self.pace))
        except BaseException:
            self.errors.append(traceback.format_exc())
        finally:
            connection.close()  # this thread's own connection

    def _one_request(self, rng: random.Random) -> None:
        from django.utils import timezone

        from submissions.models import Submission

        if rng.random() < self.new_work_share:
            if rng.random() < 0.6:
                for reference in self._take(1):
                    with self._sending([reference]):
                        job_services.submit(user=self.user, reference_id=reference, **self.inputs)
                    self.calls["submit"] += 1
            else:
                rows = [{"reference_id": r, **self.inputs} for r in self._take(rng.randint(2, self.largest_batch))]
                if rows:
                    with self._sending([row["reference_id"] for row in rows]):
                        batch_services.create_batch(user=self.user, name=f"batch {rows[0]['reference_id']}", rows=rows)
                    self.calls["create_batch"] += 1
            return
        for row in Submission.objects.filter(state=Submission.State.SENDING):
            if row.is_stuck_sending:
                with self._sending([row.reference_id]):
                    job_services.send_again(submission=row)  # the admin's or the owner's "Send again"
                self.calls["send_again"] += 1
        due = list(Submission.objects.filter(state=Submission.State.PENDING, next_attempt_at__lte=timezone.now())[:20])
        if due:
            row = rng.choice(due)
            with self._sending([row.reference_id]):
                sending.send_if_room(submission=row)
            self.calls["send_if_room"] += 1

    @contextmanager
    def _sending(self, references: list[str]) -> Iterator[None]:
        with self.lock:
            self.in_flight.update(references)
        try:
            yield
        finally:
            with self.lock:
                self.in_flight.subtract(references)

    def sending_now(self) -> list[str]:
        """The reference ids the web path is sending at this moment."""
        with self.lock:
            return [reference for reference, n in self.in_flight.items() if n > 0]


def worker_env(*, connection, sandbox_url: str, deployment: dict, **extra: str) -> dict[str, str]:
    """A worker's environment: this process's database and sandbox, the given settings, and nothing
    inherited but the basics (so the caller's own environment cannot change the experiment)."""
    import os

    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "TMPDIR") if name in os.environ}
    env.update({name: str(value) if isinstance(value, (str, int)) else f"{value:g}" for name, value in deployment.items()})
    env.update(
        DJANGO_SETTINGS_MODULE="dubdash.settings",
        DEBUG="true",
        DATABASE_URL=database_url(connection),
        CHAMELAION_API_KEY="",
        CHAMELAION_SANDBOX_URL=sandbox_url,
        LOG_LEVEL="WARNING",
        **extra,
    )
    return env
