"""Firmware of a LoRa traffic-light controller at a junction with a cycle lane (bike priority on request).

Every ``report_interval`` seconds it sends ch1 digital output = bike priority in effect (0/1)
and ch2 analog input = the signal cycle time in seconds. A bike-priority downlink (ch1 digital
output, 1 = on, 0 = off) is taken over at the start of the next signal cycle -- a controller
never cuts a running green or amber short -- and confirmed by an extra report then. With bike
priority the cycle is longer, because the cyclists' green is.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from firmware_sim import lpp
from firmware_sim.air import Air
from firmware_sim.lora_node import LoraNode


class TrafficLightNode(LoraNode):
    """One junction controller; ``step(now)`` is called by its gateway's scheduler thread."""

    def __init__(
        self,
        address: str,
        air: Air,
        rng: random.Random,
        *,
        key: bytes,
        report_interval: float,
        cycle_time: float = 90.0,
        priority_cycle_time: float = 110.0,
        switch_delay: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if report_interval <= 0 or cycle_time <= 0 or priority_cycle_time <= 0:
            raise ValueError("report_interval and the cycle times must be > 0 s")
        super().__init__(address, air, key=key, clock=clock)
        self.report_interval = report_interval
        self.cycle_time, self.priority_cycle_time = cycle_time, priority_cycle_time
        # How long until the running cycle ends; scaled down with the report interval in a demo.
        self.switch_delay = min(2.0, report_interval / 4) if switch_delay is None else switch_delay
        self._bike_priority = False
        self._requested: bool | None = None  # taken over at the next cycle start
        self._switch_at = 0.0
        self.switches = 0
        self._next_report = clock() + rng.uniform(0, report_interval)

    @property
    def bike_priority(self) -> bool:
        """Whether bike priority is in effect now."""
        with self._lock:
            return self._bike_priority

    @property
    def next_due(self) -> float:
        """The clock time of the next uplink or of a pending switch."""
        with self._lock:
            return min(self._next_report, self._switch_at) if self._requested is not None else self._next_report

    def _command(self, payload: bytes) -> bool:
        enabled = lpp.parse_switch(payload)
        if enabled is None:
            return False
        if enabled != self._bike_priority or self._requested is not None:
            self._requested = enabled
            self._switch_at = self._clock() + self.switch_delay
        else:
            self._next_report = min(self._next_report, self._clock())  # already so: confirm now
        return True

    def step(self, now: float) -> None:
        """Take over a requested state at the cycle start; send the uplink if it is due."""
        with self._lock:
            if self._requested is not None and now >= self._switch_at:
                if self._requested != self._bike_priority:
                    self.switches += 1
                self._bike_priority, self._requested = self._requested, None
                self._next_report = now  # report the new state at once
            if now < self._next_report:
                return
            self._next_report = now + self.report_interval
            cycle = self.priority_cycle_time if self._bike_priority else self.cycle_time
            frame = self._frame(lpp.entry(1, lpp.DIGITAL_OUTPUT, int(self._bike_priority))
                                + lpp.entry(2, lpp.ANALOG_INPUT, cycle))
        self._send(frame)
