"""Whether the sandbox can be reached: serving, stopped for good, or down for an outage.

An outage is Chamelaion out of reach altogether. The listening socket is closed, so every connection is
refused and nothing reaches the sandbox, exactly as when the API is down; jobs, accounts and faults are
kept for when it comes back. A fault answer (500, a drop) cannot model this: those reach it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from .httpd import Listener

MAX_OUTAGE_SECONDS = 3600.0


class Reachability:
    """Owns the sandbox's Listener, if any: `listen` opens a new one on the same port after an outage."""

    def __init__(self, listener: Listener, listen: Callable[[], Listener]) -> None:
        self._listener: Listener | None = listener
        self._listen = listen
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._back_up_timer: threading.Timer | None = None

    @property
    def is_down(self) -> bool:
        return self._listener is None

    def start(self) -> None:
        """Serve in a background thread; the socket already listens, so clients can connect now."""
        with self._lock:
            if self._stopped.is_set():
                raise RuntimeError("this sandbox has been stopped; make a new one")
            if self._listener is not None:
                self._listener.serve_in_background()

    def stop(self) -> None:
        """Close the listener (if up) and every open connection, for good. Idempotent."""
        with self._lock:
            if self._stopped.is_set():
                return
            self._cancel_back_up_timer()
            if self._listener is not None:
                self._listener.close()
            self._stopped.set()

    def wait_stopped(self, timeout: float) -> bool:
        return self._stopped.wait(timeout)

    def go_down(self, *, seconds: float | None = None) -> None:
        """Refuse every connection until come_up(), or for `seconds` (then back by itself)."""
        with self._lock:
            if self._stopped.is_set():
                raise RuntimeError("this sandbox has been stopped")
            self._cancel_back_up_timer()
            if self._listener is not None:
                self._listener.close()
                self._listener = None
            if seconds is not None:
                self._back_up_timer = threading.Timer(seconds, self.come_up)
                self._back_up_timer.daemon = True
                self._back_up_timer.start()

    def come_up(self) -> None:
        """Listen again, on the same port, and serve. Does nothing if the sandbox is up or stopped."""
        with self._lock:
            self._cancel_back_up_timer()
            if self._listener is None and not self._stopped.is_set():
                self._listener = self._listen()
                self._listener.serve_in_background()

    def _cancel_back_up_timer(self) -> None:
        timer, self._back_up_timer = self._back_up_timer, None
        if timer is not None and timer is not threading.current_thread():
            timer.cancel()


def outage_seconds(payload: dict[str, Any]) -> float:
    """The control endpoint's body: {"seconds": N}, 0 < N <= an hour (a demo must come back by itself)."""
    seconds = payload.get("seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds <= MAX_OUTAGE_SECONDS:
        raise ValueError(f"seconds must be a number above 0 and at most {MAX_OUTAGE_SECONDS:g}")
    return float(seconds)
