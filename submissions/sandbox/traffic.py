"""What the sandbox has seen of its /api traffic: counters by kind and status, and the latest paths."""

from __future__ import annotations

import threading
from collections import deque

RECENT_PATHS = 200  # request paths kept, as received, for tests of what a client puts on the wire
_COUNTERS = ("requests", "health", "generate", "uploads", "get", "list", "users_me", "dropped", "faults")
_STATUSES = (200, 400, 401, 404, 405, 412, 413, 429, 500, 502)  # counted even while still 0


def zeroed_stats() -> dict[str, int]:
    return dict.fromkeys([*_COUNTERS, *(f"status_{status}" for status in _STATUSES)], 0)


class Traffic:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stats = zeroed_stats()
        self._paths: deque[str] = deque(maxlen=RECENT_PATHS)

    def count(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._stats[key] = self._stats.get(key, 0) + 1

    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self._stats)

    def record_path(self, path: str) -> None:
        with self._lock:
            self._paths.append(path)

    def paths(self) -> list[str]:
        with self._lock:
            return list(self._paths)

    def reset(self) -> None:
        with self._lock:
            self._stats = zeroed_stats()
            self._paths.clear()
