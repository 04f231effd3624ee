"""Make sure a newcomer can log in: create an administrator on first run, and say how to log in."""

import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the administrator account if missing and print how to log in."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument(
            "--password-file",
            default=str(Path(settings.BASE_DIR) / "var" / "admin-password.txt"),
            help="Where the generated password is kept (outside git) so later runs can print it again.",
        )
        parser.add_argument("--url", default="http://127.0.0.1:8000/")

    def handle(self, *args, username, password_file, url, **options):
        User = get_user_model()
        password_path = Path(password_file)
        user = User.objects.filter(username=username).first()
        if user is None:
            password = secrets.token_urlsafe(12)
            User.objects.create_superuser(username=username, email="", password=password)
            password_path.parent.mkdir(parents=True, exist_ok=True)
            password_path.write_text(password + "\n")
            password_path.chmod(0o600)
            self.stdout.write(self.style.SUCCESS(f"Created the administrator account {username!r}."))
        stored = password_path.read_text().strip() if password_path.exists() else ""
        if stored and user_has_password(username, stored):
            self.stdout.write(f"Log in at {url} as {username!r} with password {stored!r}")
        else:
            self.stdout.write(
                f"Log in at {url} as {username!r} with the password you set "
                f"(forgotten? python manage.py changepassword {username})."
            )


def user_has_password(username: str, password: str) -> bool:
    user = get_user_model().objects.get(username=username)
    return user.check_password(password)
