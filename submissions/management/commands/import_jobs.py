"""`manage.py import_jobs`: add the account's jobs made outside DubDash (scripts, other tools)."""

from django.core.management.base import BaseCommand, CommandError

from submissions import chamelaion
from submissions.tracking import imports


class Command(BaseCommand):
    help = "Import jobs made outside DubDash on the same Chamelaion account, without duplicating any."

    def handle(self, *args, **options):
        try:
            report = imports.import_external_jobs()
        except chamelaion.ChamelaionError as error:
            raise CommandError(error.user_message) from error
        self.stdout.write(
            f"Looked at {report.seen} jobs: imported {report.imported}, already known {report.already_known} "
            f"({report.api_calls} API calls)."
        )
