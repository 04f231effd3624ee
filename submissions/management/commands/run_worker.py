"""`manage.py run_worker`: send what waits in the outbox, follow every job in flight until Chamelaion says it
is finished, and keep a copy of every output. Three loops in three threads, so a long send backlog, a slow
copy of a large video and status polling never delay one another. The keeper also catches up on older jobs'
copies at a gentle pace and, once a day, deletes uploads of jobs that were never sent."""

import logging
import signal
import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections, connection

from submissions.outbox import worker as outbox
from submissions.outputs import services as outputs
from submissions.tracking import services as tracking
from submissions.uploads import cleanup

CATCH_UP_EVERY_SECONDS = 60.0
CLEAN_UP_EVERY_SECONDS = 24 * 3600.0

logger = logging.getLogger("submissions.worker")
MAX_BACKOFF_SECONDS = 120.0


def seconds_before_next_round(*, interval: float, failures: int, asked: float) -> float:
    """After failures in a row, back off exponentially (the API or the network is struggling), up to a
    cap; a wait the API asked for (429 Retry-After) or a problem needs is honoured as well."""
    backoff = min(MAX_BACKOFF_SECONDS, interval * 2**failures) if failures else interval
    return max(backoff, asked)


class Command(BaseCommand):
    help = "Send waiting submissions and refresh jobs in flight, until SIGTERM or Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="One send pass and one refresh round, then exit.")
        parser.add_argument(
            "--interval", type=float, default=None, help="Seconds between rounds (default WORKER_INTERVAL_SECONDS)."
        )

    def handle(self, *args, once, interval, **options):
        interval = settings.WORKER_INTERVAL_SECONDS if interval is None else interval
        stop = threading.Event()
        if once:
            self._send_pass(stop, seconds=interval, wait_for_budget=False)
            self._refresh_round()
            self._keep_pass(stop, seconds=interval)
            return
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        self.stdout.write(f"Worker started: a round every {interval:g} s. Ctrl-C or SIGTERM stops it.")
        sender = threading.Thread(target=self._send_loop, args=(stop, interval), name="outbox", daemon=True)
        sender.start()
        keeper = threading.Thread(target=self._keep_loop, args=(stop, interval), name="keeper", daemon=True)
        keeper.start()
        self._refresh_loop(stop, interval)
        sender.join(timeout=30)
        keeper.join(timeout=30)
        self.stdout.write("Worker stopped.")

    # Sending ----------------------------------------------------------------------------------------

    def _send_loop(self, stop: threading.Event, interval: float) -> None:
        try:
            while not stop.is_set():
                attempted = self._send_pass(stop, seconds=interval, wait_for_budget=True)
                close_old_connections()
                if not attempted:
                    stop.wait(self._idle_wait(interval))
        finally:
            connection.close()  # this thread's own connection

    def _send_pass(self, stop: threading.Event, *, seconds: float, wait_for_budget: bool) -> int:
        try:
            attempted = outbox.send_due(seconds=seconds, stop=stop, wait_for_budget=wait_for_budget)
        except Exception:  # a bug or a database hiccup must not stop the loop
            logger.exception("Send pass crashed; the next pass will try again")
            return 0
        if attempted:
            self.stdout.write(f"Outbox: {attempted} sends attempted")
        return attempted

    def _idle_wait(self, interval: float) -> float:
        try:
            return outbox.seconds_until_next_due(cap=interval)
        except Exception:  # a database hiccup: wait the usual interval, then look again
            return interval

    # Keeping copies of outputs, and cleaning up -----------------------------------------------------

    def _keep_loop(self, stop: threading.Event, interval: float) -> None:
        next_catch_up = next_clean_up = time.monotonic()
        try:
            while not stop.is_set():
                now = time.monotonic()
                if now >= next_catch_up:
                    found = self._guarded("Catching up on copies", self._catch_up)
                    # Jobs completing from now on get their copy as they complete: once a catch-up finds
                    # fewer than it may take, older jobs are done, and the query over every completed
                    # job need not run each minute (it looks again daily, in case copying was off).
                    caught_up = found is not None and found < settings.OUTPUT_CATCH_UP_PER_MINUTE
                    next_catch_up = now + (CLEAN_UP_EVERY_SECONDS if caught_up else CATCH_UP_EVERY_SECONDS)
                if now >= next_clean_up:
                    self._guarded("Cleaning up uploads", self._clean_up)
                    next_clean_up = now + CLEAN_UP_EVERY_SECONDS
                copied = self._keep_pass(stop, seconds=interval)
                close_old_connections()
                if not copied:
                    stop.wait(interval)
        finally:
            connection.close()  # this thread's own connection

    def _keep_pass(self, stop: threading.Event, *, seconds: float) -> int:
        copied = self._guarded("Copy pass", lambda: outputs.copy_due(seconds=seconds, stop=stop)) or 0
        if copied:
            self.stdout.write(f"Outputs: {copied} copies attempted")
        return copied

    @staticmethod
    def _catch_up() -> int:
        return outputs.catch_up(limit=settings.OUTPUT_CATCH_UP_PER_MINUTE)

    def _clean_up(self) -> None:
        outputs.forget_half_done_copies()
        report = cleanup.delete_unsent_uploads(older_than_days=settings.UPLOAD_KEEP_DAYS)
        if report.jobs:
            self.stdout.write(f"Uploads: deleted the files of {report.jobs} jobs that were never sent")

    @staticmethod
    def _guarded(what: str, work):
        try:
            return work()
        except Exception:  # a bug or a database hiccup must not stop the loop
            logger.exception("%s crashed; the next pass will try again", what)
            return None

    # Refreshing ------------------------------------------------------------------------------------

    def _refresh_loop(self, stop: threading.Event, interval: float) -> None:
        failures = 0
        while not stop.is_set():
            report = self._refresh_round()
            failures = failures + 1 if report is None or report.failed else 0
            close_old_connections()  # a long-lived process must not hold a connection the database dropped
            asked = report.wait if report else 0
            stop.wait(seconds_before_next_round(interval=interval, failures=failures, asked=asked))

    def _refresh_round(self):
        try:
            report = tracking.refresh_round()
        except Exception:  # a bug or a database hiccup must not stop the loop
            logger.exception("Refresh round crashed; the next round will try again")
            return None
        if report.jobs or report.failed:
            self.stdout.write(
                f"{report.jobs} jobs, {report.updated} updated, {report.missing} missing, "
                f"{report.api_calls} API calls"
                + (f"; {report.unstored} not stored (asked about again later)" if report.unstored else "")
                + (f"; stopped early: {report.error}" if report.error else "")
            )
        return report
