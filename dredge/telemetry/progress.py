"""The progress bar of ``dredge replay``: one line on a terminal, silent otherwise; safe to
call from the replay's threads."""

from __future__ import annotations

import sys
import threading
import time


class Progress:
    """A one-line progress bar on a terminal; silent otherwise."""

    def __init__(self, total: int, enabled: bool | None = None) -> None:
        self.total = total
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.t0 = time.perf_counter()
        self._last = 0.0
        self._lock = threading.Lock()  # replay's writer thread clears it, its caller updates

    def update(self, done: int, flows: int, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if not force and now - self._last < 0.2:
            return
        self._last = now
        width = 30
        filled = int(width * done / self.total) if self.total else width
        rate = flows / (now - self.t0) if now > self.t0 else 0.0
        with self._lock:
            sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} files  "
                             f"{flows:,} flows  {rate:,.0f} flows/s ")
            sys.stderr.flush()

    def clear(self) -> None:
        """Blank the bar's line so a log line can be written there."""
        if self.enabled:
            with self._lock:
                sys.stderr.write("\r\033[K")
                sys.stderr.flush()
                self._last = 0.0

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
