"""`manage.py run_worker`: follow every job in flight until Chamelaion says it is finished."""

import logging
import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections

from submissions import tracking

logger = logging.getLogger("submissions.worker")
MAX_BACKOFF_SECONDS = 120.0


def seconds_before_next_round(*, interval: float, failures: int, asked: float) -> float:
    """After failures in a row, back off exponentially (the API or the network is struggling), up to a
    cap; a wait the API asked for (429 Retry-After) or a problem needs is honoured as well."""
    backoff = min(MAX_BACKOFF_SECONDS, interval * 2**failures) if failures else interval
    return max(backoff, asked)


class Command(BaseCommand):
    help = "Refresh the status of jobs in flight, round after round, until SIGTERM or Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Run one round, then exit (tests, cron).")
        parser.add_argument(
            "--interval", type=float, default=None, help="Seconds between rounds (default WORKER_INTERVAL_SECONDS)."
        )

    def handle(self, *args, once, interval, **options):
        interval = settings.WORKER_INTERVAL_SECONDS if interval is None else interval
        stop = threading.Event()
        if not once:
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda *_: stop.set())
            self.stdout.write(f"Worker started: a round every {interval:g} s. Ctrl-C or SIGTERM stops it.")
        failures = 0
        while not stop.is_set():
            report = self._round()
            failures = failures + 1 if report is None or report.failed else 0
            if report is not None and (report.jobs or report.failed):
                self.stdout.write(
                    f"{report.jobs} jobs, {report.updated} updated, {report.missing} missing, "
                    f"{report.api_calls} API calls" + (f"; stopped early: {report.error}" if report.error else "")
                )
            if once:
                break
            close_old_connections()  # a long-lived process must not hold a connection the database dropped
            stop.wait(seconds_before_next_round(interval=interval, failures=failures, asked=report.wait if report else 0))
        if not once:
            self.stdout.write("Worker stopped.")

    def _round(self):
        try:
            return tracking.refresh_round()
        except Exception:  # noqa: BLE001 - a bug or a database hiccup must not stop the loop
            logger.exception("Refresh round crashed; the next round will try again")
            return None
