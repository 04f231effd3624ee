"""The stored Chamelaion API key (submissions.apikey.keys encrypts and reads it)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class ApiCredential(models.Model):
    """The Chamelaion API key a team admin set in DubDash (the settings page or admin). At most one row,
    enforced by the database: its primary key can only be 1. It takes precedence over CHAMELAION_API_KEY.

    The key is stored Fernet-encrypted (submissions.credentials, DUBDASH_ENCRYPTION_KEYS), never in plain
    text; only its last four characters are kept readable, to show which key is in use."""

    SINGLETON_PK = 1

    id = models.PositiveSmallIntegerField(primary_key=True, default=SINGLETON_PK, editable=False)
    encrypted_token = models.TextField(editable=False)
    last_four = models.CharField(max_length=4, editable=False)
    # Set on every change (not auto_now, so a queryset update sets it too): each process caches the
    # decrypted key under it and the ciphertext, so a change made elsewhere is seen at the next query.
    updated_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, editable=False, related_name="+"
    )

    class Meta:
        verbose_name = "Chamelaion API key"
        verbose_name_plural = "Chamelaion API key"
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="api_credential_single_row")]

    def __str__(self) -> str:
        return f"Chamelaion API key •••• {self.last_four}" if self.last_four else "Chamelaion API key"
