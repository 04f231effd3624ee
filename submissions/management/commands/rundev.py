"""`make run`: the sandbox and the dashboard side by side, all stopped together on Ctrl-C."""

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from submissions.apikey.clients import is_sandbox_mode


class Command(BaseCommand):
    help = "Run the dashboard on 127.0.0.1, the status worker and (in sandbox mode) the sandbox until Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--sandbox-port", type=int, default=8765)
        parser.add_argument("--job-seconds", type=float, default=30.0)

    def handle(self, *args, port, sandbox_port, job_seconds, **options):
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        commands = []
        if is_sandbox_mode():
            commands.append(
                [*manage, "sandbox", "--port", str(sandbox_port), "--job-seconds", str(job_seconds)]
            )
        commands.append([*manage, "runserver", f"127.0.0.1:{port}"])
        commands.append([*manage, "run_worker"])

        # Each child leads its own process group so that stopping it also stops what it started
        # (runserver's autoreloader runs the real server in a grandchild).
        # Our own interpreter and manage.py with fixed arguments: no outside input reaches the command.
        children = [subprocess.Popen(command, start_new_session=True) for command in commands]  # noqa: S603
        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        self.stdout.write(f"DubDash on http://127.0.0.1:{port}/ — press Ctrl-C to stop everything.")
        try:
            while not stopping and all(child.poll() is None for child in children):
                time.sleep(0.2)
        finally:
            for child in children:
                terminate(child)
        exited = (0, -signal.SIGTERM, None)
        failed = [command[2] for command, child in zip(commands, children, strict=True) if child.returncode not in exited]
        if failed and not stopping:
            self.stderr.write(f"Stopped because {', '.join(failed)} exited.")
            sys.exit(1)
        self.stdout.write("Stopped.")


def terminate(child: subprocess.Popen, grace: float = 5.0) -> None:
    if child.poll() is not None:
        return
    try:
        os.killpg(child.pid, signal.SIGTERM)
        child.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    except ProcessLookupError:
        pass
