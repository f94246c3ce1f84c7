"""Firmware of a LoRa street-light controller (a TALQ LampActuator/LampMonitor subset).

Every ``report_interval`` seconds it sends one uplink: ch1 percentage = dim level, ch2
power (W), ch3 energy (kWh, cumulative), ch4 voltage (V), ch5 temperature (C), ch6 digital
input = lamp failure. A dim downlink (ch1 percentage) addressed to it is applied at once
and confirmed by an extra uplink ``confirm_delay`` seconds later, as real controllers do.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from firmware_sim import lpp
from firmware_sim.air import Air
from firmware_sim.lora_node import LoraNode


class StreetLightNode(LoraNode):
    """One lamp controller; ``step(now)`` is called by its gateway's scheduler thread."""

    def __init__(
        self,
        address: str,
        air: Air,
        rng: random.Random,
        *,
        key: bytes,
        report_interval: float,
        rated_power: float = 40.0,
        standby_power: float = 0.5,
        confirm_delay: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if report_interval <= 0:
            raise ValueError(f"report_interval must be > 0 s: {report_interval}")
        super().__init__(address, air, key=key, clock=clock)
        self._rng = rng
        self.report_interval = report_interval
        self.rated_power, self.standby_power = rated_power, standby_power
        self.confirm_delay = min(2.0, report_interval / 4) if confirm_delay is None else confirm_delay
        self._level = 100
        self.lamp_failure = False
        # A lamp that has been in service a while: its meter does not start at zero.
        self.energy_kwh = round(rng.uniform(50, 2000), 3)
        now = clock()
        self._last_step = now
        # Staggered first report, so the nodes of one gateway do not all transmit at once.
        self._next_report = now + rng.uniform(0, report_interval)

    @property
    def level(self) -> int:
        """The current light level, 0-100 %."""
        with self._lock:
            return self._level

    @property
    def next_due(self) -> float:
        """The clock time of the next uplink."""
        with self._lock:
            return self._next_report

    def power(self) -> float:
        """Active power (W) at the current level."""
        with self._lock:
            return self._power()

    def _power(self) -> float:
        if self.lamp_failure or self._level == 0:
            return self.standby_power
        noise = 1 + self._rng.gauss(0, 0.01)
        return self.standby_power + self.rated_power * self._level / 100 * noise

    def _command(self, payload: bytes) -> bool:
        # A dim command (ch1 percentage) applies at once and is confirmed by an early report.
        level = lpp.parse_percentage(payload)
        if level is None or level > 100:
            return False
        now = self._clock()
        self._integrate(now)
        self._level = level
        self._next_report = min(self._next_report, now + self.confirm_delay)
        return True

    def _integrate(self, now: float) -> None:
        # Energy follows the power at the level that was on during the elapsed time.
        self.energy_kwh += self._power() * max(0.0, now - self._last_step) / 3.6e6
        self._last_step = now

    def step(self, now: float) -> None:
        """Send the uplink if it is due."""
        with self._lock:
            if now < self._next_report:
                return
            self._integrate(now)
            self._next_report = now + self.report_interval
            frame = self._frame(b"".join((
                lpp.entry(1, lpp.PERCENTAGE, self._level),
                lpp.entry(2, lpp.POWER, self._power()),
                lpp.entry(3, lpp.ENERGY, self.energy_kwh),
                lpp.entry(4, lpp.VOLTAGE, 230 + self._rng.gauss(0, 1.5)),
                lpp.entry(5, lpp.TEMPERATURE, 12 + self._level * 0.1 + self._rng.gauss(0, 0.3)),
                lpp.entry(6, lpp.DIGITAL_INPUT, int(self.lamp_failure)),
            )))
        self._send(frame)
