"""`manage.py sandbox`: run the Chamelaion API simulator on loopback until SIGINT/SIGTERM.

A thin wrapper: options, banner and signal handling live in submissions.sandbox.server
so that `python -m submissions.sandbox.server` behaves the same without Django.
"""

from django.core.management.base import BaseCommand, CommandError

from submissions.sandbox.server import add_cli_arguments, run_cli


class Command(BaseCommand):
    help = "Run the local Chamelaion API sandbox (loopback only) until Ctrl-C or SIGTERM."

    requires_system_checks = ()  # none: the sandbox needs neither the database nor Django's checks
    requires_migrations_checks = False

    def add_arguments(self, parser):
        add_cli_arguments(parser)

    def handle(self, *args, **options):
        def write(line: str) -> None:
            self.stdout.write(line)
            self.stdout.flush()  # whoever launched us may be waiting for the URL on a pipe

        try:
            run_cli(options, write)
        except (ValueError, OSError) as error:
            raise CommandError(str(error)) from error
