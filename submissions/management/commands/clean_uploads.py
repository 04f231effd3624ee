"""`manage.py clean_uploads`: delete uploads of jobs that were never sent (the worker does it once a day)."""

from django.conf import settings
from django.core.management.base import BaseCommand

from submissions.uploads import cleanup


class Command(BaseCommand):
    help = "Delete uploaded files of jobs that could not be sent or were cancelled, after UPLOAD_KEEP_DAYS."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=None, help="Keep this many days (default UPLOAD_KEEP_DAYS).")

    def handle(self, *args, days, **options):
        report = cleanup.delete_unsent_uploads(older_than_days=settings.UPLOAD_KEEP_DAYS if days is None else days)
        for name in report.files:
            self.stdout.write(f"Deleted {name}")
        self.stdout.write(f"Deleted the uploads of {report.jobs} jobs that were never sent.")
