"""Reads that nearly every page makes and that change rarely, kept in Django's cache for a few seconds.

Saving or deleting one of the models a value is read from forgets it at once (signals, connected in
SubmissionsConfig.ready): in every process when CACHES is shared (Redis, memcached), in this process with
the default per-process cache. Then a change made by another process (the worker raising a problem,
another web process storing a key) shows within SECONDS."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.db.models.signals import post_delete, post_save

SECONDS = 5

REGISTRY: list[ShortCached] = []


@dataclass(frozen=True)
class ShortCached:
    key: str
    load: Callable[[], Any]  # never returns None: None means "not cached"
    models: tuple[str, ...]  # "app_label.ModelName": a change to any of them forgets the value

    def __post_init__(self) -> None:
        REGISTRY.append(self)

    def get(self) -> Any:
        value = cache.get(self.key)
        if value is None:
            value = self.load()
            cache.set(self.key, value, SECONDS)
        return value

    def forget(self, **signal_kwargs: Any) -> None:
        cache.delete(self.key)


def connect_signals() -> None:
    from django.apps import apps

    for cached in REGISTRY:
        for label in cached.models:
            model = apps.get_model(label)
            for signal in (post_save, post_delete):
                signal.connect(cached.forget, sender=model, weak=False, dispatch_uid=f"{cached.key}:{label}")
