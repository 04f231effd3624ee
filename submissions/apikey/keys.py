"""The Chamelaion API key: the one a team admin stores in DubDash, and which key DubDash uses.

Precedence: the stored key, then CHAMELAION_API_KEY from the environment, then none at all (sandbox mode).

The stored key is encrypted at rest with Fernet: MultiFernet over DUBDASH_ENCRYPTION_KEYS, where the first
key encrypts and every key decrypts, so the encryption key can be rotated (rotate_encryption_keys). It is
write-only: nothing DubDash shows, logs or records holds more of it than its last four characters.

Which key is in use is read from the database on every call (one small query) so that a key set or removed
in any process is used by every process at once, without a restart; only the decryption is cached, per
process, under the row's updated_at and ciphertext.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from submissions.models import ApiCredential

logger = logging.getLogger(__name__)


KeySource = Literal["stored", "environment", "sandbox"]

MIN_KEY_LENGTH = 12  # so that showing the last four characters never shows most of a key
MAX_KEY_LENGTH = 500
MASK = "••••"

NOT_CONFIGURED = (
    "DubDash cannot store an API key: DUBDASH_ENCRYPTION_KEYS is not set, so it has no key to encrypt it with. "
    "An operator must set DUBDASH_ENCRYPTION_KEYS and restart DubDash (see README). Until then DubDash uses "
    "CHAMELAION_API_KEY from the environment, or sandbox mode without it."
)


# --- Failures -----------------------------------------------------------------------------------------


class CredentialError(Exception):
    """A problem with the stored key, in plain words. Safe to show and log: it never contains a key."""


class EncryptionNotConfigured(CredentialError):
    pass


class UndecryptableKey(CredentialError):
    pass


class InvalidApiKey(CredentialError):
    pass


# --- Keys seen by this process (for scrubbing error reports) ------------------------------------------

# The keys this process has held in memory: stored, decrypted or typed in. Error reports hide any variable
# that contains one (SecretScrubbingReporterFilter). Bounded: keys change rarely.
_seen_keys: OrderedDict[str, None] = OrderedDict()
_seen_lock = threading.Lock()
_SEEN_MAX = 16
# Shorter strings would match innocent text and hide too much; real keys are longer (MIN_KEY_LENGTH).
_SCRUB_MIN_LENGTH = 8


@sensitive_variables("key")
def _remember(key: str) -> None:
    if len(key) < _SCRUB_MIN_LENGTH:
        return
    with _seen_lock:
        _seen_keys[key] = None
        _seen_keys.move_to_end(key)
        while len(_seen_keys) > _SEEN_MAX:
            _seen_keys.popitem(last=False)


def known_secrets() -> list[str]:
    """Every API key and encryption key this process knows, to be hidden wherever it might show up."""
    with _seen_lock:
        found = set(_seen_keys)
    found.add(settings.CHAMELAION_API_KEY)
    found.update(settings.DUBDASH_ENCRYPTION_KEYS)
    return [secret for secret in found if len(secret) >= _SCRUB_MIN_LENGTH]


@sensitive_variables("secrets")
def scrub(text: str) -> str:
    """The text with any known key replaced by a mask. For text that comes from outside (an upstream
    error message, a token's display name): an API that echoes the key back must not make DubDash show it."""
    for secret in known_secrets():
        text = text.replace(secret, MASK)
    return text


# --- Showing and checking keys ------------------------------------------------------------------------


def mask(key: str) -> str:
    """How a key is shown: its last four characters, or none when it is too short to spare them."""
    return f"{MASK} {key[-4:]}" if len(key) >= MIN_KEY_LENGTH else MASK


@sensitive_variables("token")
def clean_api_key(token: str) -> str:
    """The key as it will be stored, or InvalidApiKey saying what is wrong (never echoing the key)."""
    token = token.strip()
    _remember(token)
    if not token:
        raise InvalidApiKey("Enter the API key.")
    if any(not 33 <= ord(char) <= 126 for char in token):
        raise InvalidApiKey(
            "An API key has only letters, digits and punctuation, without spaces or line breaks. Copy it again "
            "from Chamelaion and paste it."
        )
    if len(token) < MIN_KEY_LENGTH:
        raise InvalidApiKey(f"This is too short to be a Chamelaion API key (at least {MIN_KEY_LENGTH} characters).")
    if len(token) > MAX_KEY_LENGTH:
        raise InvalidApiKey(f"This is too long to be a Chamelaion API key (at most {MAX_KEY_LENGTH} characters).")
    return token


# --- Encryption ---------------------------------------------------------------------------------------


def encryption_configured() -> bool:
    return bool(settings.DUBDASH_ENCRYPTION_KEYS)


@functools.lru_cache(maxsize=4)
def _multi_fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys])


def _fernet() -> MultiFernet:
    keys = tuple(settings.DUBDASH_ENCRYPTION_KEYS)
    if not keys:
        raise EncryptionNotConfigured(NOT_CONFIGURED)
    return _multi_fernet(keys)


def _undecryptable_message() -> str:
    if not encryption_configured():
        return (
            "The stored Chamelaion API key cannot be decrypted: DUBDASH_ENCRYPTION_KEYS is not set. Set it again "
            "to the key the API key was stored with, or remove the stored key here to use CHAMELAION_API_KEY "
            "or sandbox mode."
        )
    return (
        "The stored Chamelaion API key cannot be decrypted with any key in DUBDASH_ENCRYPTION_KEYS: the key it "
        "was encrypted with was removed (or changed) before `manage.py rotate_encryption_keys` re-encrypted it. "
        "Put that key back at the end of DUBDASH_ENCRYPTION_KEYS, or set the API key again here. Nothing is "
        "sent to Chamelaion until then."
    )


@dataclass(frozen=True)
class _Decrypted:
    version: tuple[datetime, str, tuple[str, ...]]  # the row's updated_at and ciphertext, and the keys
    key: str = field(repr=False)


_decrypted: _Decrypted | None = None  # replaced whole, never mutated: safe to read from any thread


def _decrypt(updated_at: datetime, ciphertext: str) -> str:
    global _decrypted
    keys = tuple(settings.DUBDASH_ENCRYPTION_KEYS)
    version = (updated_at, ciphertext, keys)
    cached = _decrypted
    if cached is not None and cached.version == version:
        return cached.key
    if not keys:
        raise UndecryptableKey(_undecryptable_message())
    try:
        key = _multi_fernet(keys).decrypt(ciphertext.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError):
        raise UndecryptableKey(_undecryptable_message()) from None
    _remember(key)
    _decrypted = _Decrypted(version, key)
    return key


# --- Reading ------------------------------------------------------------------------------------------


def _stored_row() -> tuple[datetime, str] | None:
    """(updated_at, ciphertext) of the stored key, or None: one small query."""
    try:
        return (
            ApiCredential.objects.filter(pk=ApiCredential.SINGLETON_PK)
            .values_list("updated_at", "encrypted_token")
            .first()
        )
    except DatabaseError:
        # Only one failure means "nothing stored": the table does not exist yet (new code started before
        # `migrate`). Anything else is a real database problem and must not silently switch keys.
        if ApiCredential._meta.db_table in connection.introspection.table_names():
            raise
        return None


def stored_api_key() -> str | None:
    """The stored key, decrypted; None when none is stored. UndecryptableKey when the configured
    encryption keys cannot decrypt it."""
    row = _stored_row()
    return None if row is None else _decrypt(*row)


@dataclass(frozen=True)
class ActiveKey:
    """The key DubDash uses now and where it comes from. `key` is blank in sandbox mode, and when the
    stored key cannot be decrypted (`problem` says why): that is never papered over with another key."""

    source: KeySource
    key: str = field(default="", repr=False)
    problem: str = ""


def active_key() -> ActiveKey:
    """The stored key wins over the environment's; neither means sandbox mode. One small query."""
    row = _stored_row()
    if row is not None:
        try:
            return ActiveKey("stored", _decrypt(*row))
        except UndecryptableKey as exc:
            return ActiveKey("stored", problem=str(exc))
    if settings.CHAMELAION_API_KEY:
        return ActiveKey("environment", settings.CHAMELAION_API_KEY)
    return ActiveKey("sandbox")


def key_source(*, stored: bool) -> KeySource:
    """The precedence, for callers that already know whether a key is stored."""
    if stored:
        return "stored"
    return "environment" if settings.CHAMELAION_API_KEY else "sandbox"


def has_stored_key() -> bool:
    return _stored_row() is not None


def active_key_source() -> KeySource:
    return key_source(stored=has_stored_key())


# --- Changing -----------------------------------------------------------------------------------------


@sensitive_variables("token", "cleaned")
def store_api_key(*, token: str, user: Any) -> ApiCredential:
    """Store (or replace) the key, encrypted. Used at once by every process: no restart."""
    cleaned = clean_api_key(token)
    ciphertext = _fernet().encrypt(cleaned.encode("utf-8")).decode("ascii")
    credential, created = ApiCredential.objects.update_or_create(
        pk=ApiCredential.SINGLETON_PK,
        defaults={
            "encrypted_token": ciphertext,
            "last_four": cleaned[-4:],
            "updated_at": timezone.now(),
            "updated_by": user if getattr(user, "is_authenticated", False) else None,
        },
    )
    logger.info(
        "Chamelaion API key %s by %s: now %s", "stored" if created else "replaced", _who(user), mask(cleaned)
    )
    return credential


def clear_api_key(*, user: Any) -> bool:
    """Remove the stored key (DubDash falls back to CHAMELAION_API_KEY, or sandbox mode). False when
    there was none."""
    deleted, _ = ApiCredential.objects.filter(pk=ApiCredential.SINGLETON_PK).delete()
    if deleted:
        logger.info("Stored Chamelaion API key removed by %s; now using: %s", _who(user), active_key_source())
    return bool(deleted)


def rotate_encryption() -> bool:
    """Re-encrypt the stored key with the first of DUBDASH_ENCRYPTION_KEYS, so older keys can then be
    removed from it. False when nothing is stored. The key itself and updated_at do not change; other
    processes notice the new ciphertext at their next read."""
    fernet = _fernet()
    with transaction.atomic():
        row = (
            ApiCredential.objects.select_for_update()
            .filter(pk=ApiCredential.SINGLETON_PK)
            .values_list("encrypted_token", flat=True)
            .first()
        )
        if row is None:
            return False
        try:
            rotated = fernet.rotate(row.encode("ascii")).decode("ascii")
        except InvalidToken:
            raise UndecryptableKey(_undecryptable_message()) from None
        ApiCredential.objects.filter(pk=ApiCredential.SINGLETON_PK).update(encrypted_token=rotated)
    logger.info("Stored Chamelaion API key re-encrypted with the first of DUBDASH_ENCRYPTION_KEYS")
    return True


def _who(user: Any) -> str:
    return user.get_username() if getattr(user, "is_authenticated", False) else "DubDash"
