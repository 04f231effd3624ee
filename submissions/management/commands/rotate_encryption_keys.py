"""Re-encrypt stored secrets with the first key of DUBDASH_ENCRYPTION_KEYS.

A rotation: put a new key first in DUBDASH_ENCRYPTION_KEYS (keeping the old ones after it), restart
DubDash, run this command, then remove the old keys. Running it twice does no harm."""

from django.core.management.base import BaseCommand, CommandError

from submissions.apikey import keys


class Command(BaseCommand):
    help = "Re-encrypt the stored Chamelaion API key with the first key of DUBDASH_ENCRYPTION_KEYS."

    def handle(self, *args, **options):
        try:
            rotated = keys.rotate_encryption()
        except keys.CredentialError as exc:
            raise CommandError(str(exc)) from None
        if rotated:
            self.stdout.write(
                "Re-encrypted the stored Chamelaion API key with the first key of DUBDASH_ENCRYPTION_KEYS. "
                "The other keys can now be removed from it."
            )
        else:
            self.stdout.write("No Chamelaion API key is stored in DubDash: nothing to re-encrypt.")
