"""Firmware of a LoRa parking-spot sensor (as Nedap SENSIT or Nwave): events on change, plus a heartbeat.

A car arrives or leaves at random (exponential stays with means ``mean_occupied`` and
``mean_free`` seconds, from the node's seeded generator). The sensor reports the new state
``debounce`` seconds after a change that lasted that long -- a car manoeuvring in and out
of the spot is not an event -- and repeats the current state every ``heartbeat_interval``.
Payload: ch1 presence (1 B) = occupied.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from firmware_sim import lpp
from firmware_sim.air import Air
from firmware_sim.lora_node import LoraNode


class ParkingNode(LoraNode):
    """One in-ground spot sensor; ``step(now)`` is called by its gateway's scheduler thread."""

    def __init__(
        self,
        address: str,
        air: Air,
        rng: random.Random,
        *,
        key: bytes,
        heartbeat_interval: float,
        mean_occupied: float,
        mean_free: float,
        debounce: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if heartbeat_interval <= 0 or mean_occupied <= 0 or mean_free <= 0 or debounce < 0:
            raise ValueError("heartbeat_interval and the mean stays must be > 0 s, debounce >= 0 s")
        super().__init__(address, air, key=key, clock=clock)
        self._rng = rng
        self.heartbeat_interval, self.debounce = heartbeat_interval, debounce
        self.mean_occupied, self.mean_free = mean_occupied, mean_free
        now = clock()
        self.occupied = rng.random() < mean_occupied / (mean_occupied + mean_free)
        self._next_change = now + self._stay()
        self._reported: bool | None = None
        self._next_report = now + rng.uniform(0, heartbeat_interval)
        self.changes = 0
        self.events = 0  # reports sent because of a change (the rest are heartbeats)

    def _stay(self) -> float:
        return self._rng.expovariate(1 / (self.mean_occupied if self.occupied else self.mean_free))

    @property
    def next_due(self) -> float:
        """The clock time of the next change or uplink."""
        with self._lock:
            return min(self._next_report, self._next_change)

    def step(self, now: float) -> None:
        """Move the car in or out when its time comes; send an event or heartbeat when due."""
        with self._lock:
            while now >= self._next_change:
                self.occupied = not self.occupied
                self.changes += 1
                changed_at = self._next_change
                self._next_change = changed_at + self._stay()
                if self._next_change - changed_at >= self.debounce:
                    self._next_report = min(self._next_report, changed_at + self.debounce)
            if now < self._next_report:
                return
            if self.occupied != self._reported and self._reported is not None:
                self.events += 1
            self._reported = self.occupied
            self._next_report = now + self.heartbeat_interval
            frame = self._frame(lpp.entry(1, lpp.PRESENCE, int(self.occupied)))
        self._send(frame)
