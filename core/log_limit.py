"""A limiter for log lines of a recurring problem: one line per interval, the rest counted (no log floods)."""

from __future__ import annotations

import time


class LogLimiter:
    """Allows one log record per interval and counts the ones it held back."""

    def __init__(self, interval: float = 10.0) -> None:
        self.interval = interval
        self._next = 0.0
        self.suppressed = 0

    def allow(self) -> bool:
        """True if a record may be logged now; otherwise counts it as suppressed."""
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self.interval
            return True
        self.suppressed += 1
        return False

    def take_suppressed(self) -> int:
        """How many records were held back since the last call (for "N similar not logged")."""
        n, self.suppressed = self.suppressed, 0
        return n
