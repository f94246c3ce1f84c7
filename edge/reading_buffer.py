"""A bounded in-memory buffer of readings waiting for the uplink.

Bounded so that a long broker outage cannot eat a gateway's RAM: past the bound the oldest
readings go first, and every one that goes is counted.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable

from core.senml import Reading


class ReadingBuffer:
    """FIFO of readings with a hard bound; thread-safe."""

    def __init__(self, max_readings: int = 100_000) -> None:
        self._items: deque[Reading] = deque()
        self._max = max_readings
        self._lock = threading.Lock()
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._items)

    def extend(self, readings: Iterable[Reading]) -> None:
        """Append readings, dropping (and counting) the oldest ones beyond the bound."""
        with self._lock:
            self._items.extend(readings)
            overflow = len(self._items) - self._max
            for _ in range(max(overflow, 0)):
                self._items.popleft()
                self.dropped += 1

    def take(self, limit: int) -> list[Reading]:
        """Remove and return up to limit readings, oldest first."""
        with self._lock:
            n = min(limit, len(self._items))
            return [self._items.popleft() for _ in range(n)]

    def put_back(self, readings: list[Reading]) -> None:
        """Return readings that could not be sent to the front, keeping their order."""
        with self._lock:
            self._items.extendleft(reversed(readings))
