"""`manage.py clean_uploads`: delete uploads of jobs that were never sent (the worker does it once a day)."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from submissions.uploads import cleanup


class Command(BaseCommand):
    help = "Delete uploaded files of jobs that could not be sent or were cancelled, after UPLOAD_KEEP_DAYS."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=None, help="Keep this many days (default UPLOAD_KEEP_DAYS).")

    def handle(self, *args, days, **options):
        if days is not None and days < 0:
            # A negative number of days reaches into the future: it would delete the files of jobs that
            # failed a moment ago, which are kept so that they can still be sent again.
            raise CommandError(
                f"--days must be 0 or more (it was {days}): it is how many days the files of unsent jobs are kept."
            )
        report = cleanup.delete_unsent_uploads(older_than_days=settings.UPLOAD_KEEP_DAYS if days is None else days)
        for name in report.files:
            self.stdout.write(f"Deleted {name}")
        self.stdout.write(f"Deleted the uploads of {report.jobs} jobs that were never sent.")
