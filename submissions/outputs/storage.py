"""Where kept copies of outputs live: the `outputs` entry of STORAGES (a folder under MEDIA_ROOT by default,
any S3-compatible store through django-storages when the environment says so; see settings)."""

from __future__ import annotations

from typing import Any

from django.core.files.storage import Storage, storages
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


def _forget(*, setting: str, **kwargs: Any) -> None:
    if setting == "STORAGES":
        _storage._wrapped = empty  # type: ignore[assignment]


setting_changed.connect(_forget)
