"""How long a retry waits: one rule for everything the worker retries (sends, copies of outputs)."""

from __future__ import annotations

import random
from datetime import timedelta


def backoff(attempts: int, *, base: float, cap: float, asked: float | None = None) -> timedelta:
    """Jittered exponential backoff: half to full of base * 2^(attempts-1), capped, never sooner than asked.
    `attempts` counts the failures that should grow the wait (probes during an outage must not)."""
    exponent = min(max(0, attempts - 1), 62)  # 2.0 ** 1024 overflows; the cap is reached long before 62
    ceiling = min(cap, base * 2**exponent)
    # Jitter spreads retries apart; nothing about it needs to be unpredictable to anyone.
    return timedelta(seconds=max(random.uniform(ceiling / 2, ceiling), asked or 0))  # noqa: S311
