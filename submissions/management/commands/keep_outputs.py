"""`manage.py keep_outputs`: keep copies of the outputs of jobs that completed before copying was on."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from submissions.outputs import services as outputs


class Command(BaseCommand):
    help = (
        "Queue a copy of every completed job's output that DubDash does not keep yet (the worker copies them "
        "in turn); with --copy, copy them here too, one at a time."
    )

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=100_000, help="Queue at most this many (newest first).")
        parser.add_argument("--copy", action="store_true", help="Also copy them in this process, one at a time.")
        parser.add_argument("--pause", type=float, default=1.0, help="Seconds between copies with --copy (gentle on Chamelaion).")

    def handle(self, *args, limit, copy, pause, **options):
        if not settings.OUTPUT_KEEP:
            raise CommandError("OUTPUT_KEEP is false: DubDash keeps no copies of outputs.")
        queued = outputs.catch_up(limit=limit)
        self.stdout.write(f"Queued {queued} copies of outputs.")
        if copy:
            copied = outputs.copy_all_due(pause=pause)
            self.stdout.write(f"Attempted {copied} copies.")
