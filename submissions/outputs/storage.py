"""Where kept copies of outputs live: the `outputs` entry of STORAGES (a folder under MEDIA_ROOT by default,
any S3-compatible store through django-storages when the environment says so; see settings)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from django.core.files.storage import FileSystemStorage, Storage, storages
from django.core.signals import setting_changed
from django.utils.functional import LazyObject, empty

ALIAS = "outputs"


class _OutputsStorage(LazyObject):
    """storages["outputs"], looked up when first used (as Django's default_storage is), and again after the
    STORAGES setting changes (a test's S3 server)."""

    def _setup(self) -> None:
        self._wrapped = storages[ALIAS]


_storage = _OutputsStorage()


def outputs_storage() -> Storage:
    # The model's FileField calls this once, at import: it gets the lazy proxy, never a fixed backend, and
    # migrations record this function, not the deployment's choice.
    return _storage  # type: ignore[return-value]


def is_s3() -> bool:
    return type(storages[ALIAS]).__module__.startswith("storages.backends.s3")


PARTIAL_FOLDER = "outputs/.partial"


def spool_dir() -> str | None:
    """Where a copy is downloaded before it is stored: on local storage, a folder inside it, so that storing
    is a rename on the same filesystem (never a second copy of the bytes, never /tmp filling up); on S3,
    the system's temporary folder (None)."""
    backend = storages[ALIAS]
    if not isinstance(backend, FileSystemStorage):
        return None
    folder = Path(backend.path(PARTIAL_FOLDER))
    folder.mkdir(parents=True, exist_ok=True)
    return str(folder)


def sweep_partials(*, older_than_seconds: float) -> int:
    """Delete downloads a dead worker left half-done (a copy under way is never this old); how many."""
    folder = spool_dir()
    if folder is None:
        return 0
    deleted = 0
    for entry in os.scandir(folder):
        if entry.is_file() and time.time() - entry.stat().st_mtime > older_than_seconds:
            Path(entry.path).unlink(missing_ok=True)
            deleted += 1
    return deleted


def _forget(*, setting: str, **kwargs: Any) -> None:
    if setting == "STORAGES":
        _storage._wrapped = empty  # type: ignore[assignment]


setting_changed.connect(_forget)
