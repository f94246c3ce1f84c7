"""Per-gateway batch sequence numbers: count gaps (lost batches) and duplicates (redeliveries)."""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(slots=True)
class SequenceStats:
    """Totals over all gateways."""

    gaps: int = 0
    duplicates: int = 0


class SequenceTracker:
    """Remembers the highest sequence number seen per gateway."""

    def __init__(self) -> None:
        self._highest: dict[str, int] = {}
        self._lock = threading.Lock()
        self.stats = SequenceStats()

    def observe(self, gateway: str, seq: int) -> None:
        """Record one batch: a jump forward counts the missing batches, a repeat counts a duplicate."""
        with self._lock:
            highest = self._highest.get(gateway)
            if highest is None or seq > highest:
                if highest is not None:
                    self.stats.gaps += seq - highest - 1
                self._highest[gateway] = seq
            else:
                # Redelivery after a reconnect, or a late batch that filled an earlier gap.
                self.stats.duplicates += 1

    def restart(self, gateway: str) -> None:
        """Forget a gateway's numbers: its birth message says it restarted and counts from 0 again."""
        with self._lock:
            self._highest.pop(gateway, None)
