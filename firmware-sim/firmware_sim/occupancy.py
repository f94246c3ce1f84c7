"""Firmware of a LoRa presence / people-counter node: counts per interval, never identities.

Every ``report_interval`` seconds: ch1 presence (1 B, 0/1) and ch2 analog input = the
number of people counted during the interval. Presence follows a deterministic cycle of
``busy_seconds`` busy then ``quiet_seconds`` quiet, shifted by ``phase``; the counts in a
busy interval come from the node's seeded random generator.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from firmware_sim import lpp
from firmware_sim.air import Air
from firmware_sim.lora_node import LoraNode


class OccupancyNode(LoraNode):
    """One counter node; ``step(now)`` is called by its gateway's scheduler thread."""

    def __init__(
        self,
        address: str,
        air: Air,
        rng: random.Random,
        *,
        key: bytes,
        report_interval: float,
        busy_seconds: float,
        quiet_seconds: float,
        phase: float = 0.0,
        max_count: int = 6,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if report_interval <= 0 or busy_seconds < 0 or quiet_seconds < 0 or busy_seconds + quiet_seconds <= 0:
            raise ValueError("report_interval must be > 0 and busy + quiet seconds > 0")
        super().__init__(address, air, key=key, clock=clock)
        self._rng = rng
        self.report_interval = report_interval
        self.busy_seconds, self.quiet_seconds, self.phase = busy_seconds, quiet_seconds, phase
        self.max_count = max_count
        now = clock()
        self.epoch = now
        self._next_report = now + rng.uniform(0, report_interval)
        self.total_count = 0
        self.last_presence = False
        self.last_count = 0

    @property
    def next_due(self) -> float:
        """The clock time of the next uplink."""
        with self._lock:
            return self._next_report

    def present_at(self, now: float) -> bool:
        """Whether the cycle is in its busy part at clock time now."""
        period = self.busy_seconds + self.quiet_seconds
        return (now - self.epoch + self.phase) % period < self.busy_seconds

    def step(self, now: float) -> None:
        """Send the uplink if it is due."""
        with self._lock:
            if now < self._next_report:
                return
            self._next_report = now + self.report_interval
            presence = self.present_at(now)
            count = self._rng.randint(1, self.max_count) if presence else 0
            self.last_presence, self.last_count = presence, count
            self.total_count += count
            frame = self._frame(lpp.entry(1, lpp.PRESENCE, int(presence)) + lpp.entry(2, lpp.ANALOG_INPUT, count))
        self._send(frame)
