"""The sandbox's outage knob: Chamelaion out of reach altogether. The listening socket is closed, so every
connection is refused and nothing reaches the sandbox, exactly as when the API is down; jobs, accounts and
faults are kept for when it comes back. A fault answer (500, a drop) cannot model this: those reach it."""

from __future__ import annotations

import threading
from typing import Any

MAX_OUTAGE_SECONDS = 3600.0


class OutageMixin:
    """For SandboxServer: it provides _httpd, _thread, _lifecycle, _stopped and _serve_in_thread()."""

    _httpd: Any
    _thread: threading.Thread | None
    _lifecycle: threading.Lock
    _stopped: threading.Event
    _back_up_timer: threading.Timer | None = None

    @property
    def is_down(self) -> bool:
        return self._httpd is None

    def go_down(self, *, seconds: float | None = None) -> None:
        """Refuse every connection until come_up(), or for `seconds` (then back by itself)."""
        with self._lifecycle:
            if self._stopped.is_set():
                raise RuntimeError("this sandbox has been stopped")
            self._cancel_back_up_timer()
            if self._httpd is not None:
                if self._thread is not None:
                    self._httpd.shutdown()
                    self._thread.join(timeout=5)
                    self._thread = None
                self._httpd.close_connections()
                self._httpd.server_close()
                self._httpd = None
            if seconds is not None:
                self._back_up_timer = threading.Timer(seconds, self.come_up)
                self._back_up_timer.daemon = True
                self._back_up_timer.start()

    def come_up(self) -> None:
        """Listen again, on the same port. Does nothing if the sandbox is up."""
        with self._lifecycle:
            self._cancel_back_up_timer()
            if self._httpd is None and not self._stopped.is_set():
                self._httpd = self._new_httpd()
                self._serve_in_thread()

    def _cancel_back_up_timer(self) -> None:
        timer, self._back_up_timer = self._back_up_timer, None
        if timer is not None and timer is not threading.current_thread():
            timer.cancel()

    def _new_httpd(self) -> Any:
        raise NotImplementedError

    def _serve_in_thread(self) -> None:
        raise NotImplementedError


def outage_seconds(payload: dict[str, Any]) -> float:
    """The control endpoint's body: {"seconds": N}, 0 < N <= an hour (a demo must come back by itself)."""
    seconds = payload.get("seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds <= MAX_OUTAGE_SECONDS:
        raise ValueError(f"seconds must be a number above 0 and at most {MAX_OUTAGE_SECONDS:g}")
    return float(seconds)
