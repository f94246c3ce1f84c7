"""Firmware of a Hydreon RG-15 optical rain gauge on a pty (field-protocols.md, "Hydreon RG-15").

Commands are single letters, case-insensitive, processed on LF (CR ignored); replies end in
CRLF. Our DIP switch setting ``0000`` means imperial, low resolution, polling mode: so an
edge that forgets to send ``M``/``H``/``C`` gets imperial low-resolution lines, as it would
from a gauge with different switches. Resolution: high 0.01 mm / 0.001 in, low 0.2 mm /
0.01 in, printed with 2 / 1 (metric) and 3 / 2 (imperial) decimals. Accumulations are
floored to the resolution; the remainder of ``Acc`` carries over to the next read.

Faults (firmware_sim.faults): ``silence(until)`` stops the gauge answering and reporting
(its optics keep counting, so the first reading afterwards includes the rain meanwhile);
``restart()`` is a power cycle (boot header, DIP-switch settings, accumulators cleared);
``replace_port(port)`` moves the firmware to the pty of a replugged USB adapter.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from dataclasses import dataclass

from firmware_sim.pty_port import PtyPort
from firmware_sim.runner import Runner

log = logging.getLogger(__name__)

MM_PER_INCH = 25.4
BAUD_RATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600)
BOOT_HEADER = (
    ";Hydreon RG-15 Rain Gauge (firmware-sim)",
    ";Commands: R A P C H L I M S O K B X Y",
    "SW 1.000 2020.06.05",
    "Emitters 9 10 9 11",
    "EmTotal 39",
    "DIP 0000",
    "PwrDays 0",
    "Reset N",
)


class RainModel:
    """Dry spells and rain events of random length; intensity (mm/h) wanders during an event."""

    def __init__(self, rng: random.Random, *, mean_dry_s: float = 1200.0, mean_event_s: float = 900.0,
                 mean_intensity: float = 3.0) -> None:
        self._rng = rng
        self.mean_dry_s, self.mean_event_s, self.mean_intensity = mean_dry_s, mean_event_s, mean_intensity
        self.intensity = 0.0
        self.raining = False
        self.events = 0
        self._forced: float | None = None
        self._left = rng.expovariate(1 / mean_dry_s)

    def force(self, intensity: float | None) -> None:
        """Hold the intensity at a fixed mm/h (tests, demos); None returns to the random weather."""
        if intensity is not None and intensity < 0:
            raise ValueError(f"intensity must be >= 0 mm/h: {intensity}")
        if intensity and not self.raining:
            self.events += 1
        self._forced = intensity
        self.raining = bool(intensity)
        self.intensity = intensity or 0.0

    def step(self, dt: float) -> float:
        """Advance dt model seconds; returns the rain (mm) that fell meanwhile."""
        fallen = self.intensity * dt / 3600
        if self._forced is not None:
            return fallen
        self._left -= dt
        if self.raining:
            # A multiplicative random walk keeps the intensity positive and its changes relative.
            self.intensity *= math.exp(self._rng.gauss(0, 0.15 * math.sqrt(dt / 60)))
            self.intensity = min(150.0, max(0.1, self.intensity))
            if self._left <= 0:
                self.raining, self.intensity = False, 0.0
                self._left = self._rng.expovariate(1 / self.mean_dry_s)
        elif self._left <= 0:
            self.raining, self.events = True, self.events + 1
            self.intensity = min(150.0, self._rng.lognormvariate(math.log(self.mean_intensity), 0.7))
            self._left = self._rng.expovariate(1 / self.mean_event_s)
        return fallen


@dataclass(slots=True)
class GaugeSettings:
    """What the commands change; DIP 0000 gives the defaults."""

    metric: bool = False
    high_resolution: bool = False
    continuous: bool = False
    baud: int = 9600
    external_bucket: bool = False


class RG15Sim:
    """The gauge: answers commands on the pty and integrates the rain model every tick."""

    def __init__(self, port: PtyPort, rng: random.Random, *, tick: float = 1.0, time_scale: float = 1.0,
                 model: RainModel | None = None, power_up_header: bool = True) -> None:
        if tick <= 0 or time_scale <= 0:
            raise ValueError(f"tick and time_scale must be > 0: {tick}, {time_scale}")
        self.port = port
        self.model = model or RainModel(rng)
        self.tick, self.time_scale = tick, time_scale
        self.settings = GaugeSettings()
        self._lock = threading.Lock()
        self.acc_mm = 0.0  # since the last read
        self.event_mm = 0.0
        self.total_mm = 0.0
        self._events_seen = self.model.events
        self.lines_sent = 0
        self.readings_sent = 0  # R-style lines (polled or continuous)
        self.commands = 0
        self.unknown_commands = 0
        self.ignored_commands = 0  # commands that arrived while silent
        self.suppressed_lines = 0  # lines not sent because silent
        self.restarts = 0
        self._silent_until: float | None = None
        self._silent = False
        self._next_tick = 0.0
        self._runner = Runner(f"sim-rg15:{port.path}", self._step)
        if power_up_header:
            self._send_header()

    def start(self) -> None:
        """Run the firmware thread."""
        self._next_tick = time.monotonic() + self.tick
        self._runner.start()

    def stop(self) -> None:
        """Stop the firmware thread (the pty stays open until closed by its owner)."""
        self._runner.stop()

    def replace_port(self, port: PtyPort) -> None:
        """Talk on another pty from now on (the USB adapter was replugged and got a new one)."""
        with self._lock:
            self.port = port

    def silence(self, until: float | None = None) -> None:
        """Answer nothing and report nothing until monotonic time until (None: until resume())."""
        with self._lock:
            self._silent, self._silent_until = True, until

    def resume(self) -> None:
        """End a silence."""
        with self._lock:
            self._silent, self._silent_until = False, None

    @property
    def silent(self) -> bool:
        """True while the gauge says nothing."""
        with self._lock:
            return self._silent_now()

    def _silent_now(self) -> bool:
        # Caller holds the lock; a silence past its end time is over even if no one calls resume().
        if self._silent and self._silent_until is not None and time.monotonic() >= self._silent_until:
            self._silent, self._silent_until = False, None
        return self._silent

    def restart(self) -> None:
        """A power cycle: settings back to the DIP switches, accumulators cleared, the boot header sent."""
        with self._lock:
            self.restarts += 1
            self._apply("K", "")

    def set_rain(self, intensity_mm_h: float | None) -> None:
        """Force a rain intensity (mm/h), or None to return to the random weather."""
        with self._lock:
            self.model.force(intensity_mm_h)

    def set_totals(self, *, total_mm: float, event_mm: float = 0.0, acc_mm: float = 0.0) -> None:
        """Set the accumulators (mm), e.g. to check a known line end to end."""
        with self._lock:
            self.total_mm, self.event_mm, self.acc_mm = total_mm, event_mm, acc_mm

    def _step(self) -> None:
        line = self.port.read_line(min(0.1, max(0.0, self._next_tick - time.monotonic())))
        if line is not None:
            self.command(line.decode("ascii", errors="replace"))
        if time.monotonic() >= self._next_tick:
            self._next_tick = max(self._next_tick + self.tick, time.monotonic())
            self.advance(self.tick * self.time_scale)

    def advance(self, dt: float) -> None:
        """Integrate dt model seconds of rain; in continuous mode report a changed accumulation."""
        with self._lock:
            fallen = self.model.step(dt)
            if self.model.events != self._events_seen:
                self._events_seen = self.model.events
                self.event_mm = 0.0
            self.acc_mm += fallen
            self.event_mm += fallen
            self.total_mm += fallen
            if self.settings.continuous and self._floor(self.acc_mm) > 0 and not self._silent_now():
                self._send(self._reading_line())

    def command(self, line: str) -> None:
        """Process one command line (without its LF)."""
        text = line.strip()
        if not text:
            return
        letter, argument = text[0].upper(), text[1:].strip()
        with self._lock:
            if self._silent_now():
                self.ignored_commands += 1
                return
            self.commands += 1
            reply = self._apply(letter, argument)
            if reply is not None:
                self._send(reply)

    def _apply(self, letter: str, argument: str) -> str | None:
        s = self.settings
        if letter == "R":
            return self._reading_line()
        if letter == "A":
            acc = self._take_acc()
            return f"Acc  {acc} mm" if s.metric else f"Acc {acc} in"
        if letter in "PC":
            s.continuous = letter == "C"
            return letter.lower()
        if letter in "HL":
            s.high_resolution = letter == "H"
            return None
        if letter in "IM":
            s.metric = letter == "M"
            return letter.lower()
        if letter == "S":
            self.settings = GaugeSettings(baud=s.baud)
            return None
        if letter == "O":
            self.acc_mm = self.event_mm = self.total_mm = 0.0
            return None
        if letter == "K":
            self.settings = GaugeSettings()
            self.acc_mm = self.event_mm = self.total_mm = 0.0
            self._send_header()
            return None
        if letter == "B":
            if argument.isdigit() and int(argument) < len(BAUD_RATES):
                s.baud = BAUD_RATES[int(argument)]  # effective after the reply; a pty has no baud
            elif argument:
                self.unknown_commands += 1
                return None
            return f"Baud {s.baud}"
        if letter in "XY":
            s.external_bucket = letter == "X"
            return None
        self.unknown_commands += 1
        log.debug("%s: unknown command %r", self.port.name, letter + argument)
        return None

    def _resolution_mm(self) -> float:
        if self.settings.metric:
            return 0.01 if self.settings.high_resolution else 0.2
        return (0.001 if self.settings.high_resolution else 0.01) * MM_PER_INCH

    def _decimals(self) -> int:
        return (2 if self.settings.high_resolution else 1) + (0 if self.settings.metric else 1)

    def _floor(self, mm: float) -> float:
        # The small epsilon keeps 0.3 mm from printing as 0.29 after float accumulation.
        res = self._resolution_mm()
        return math.floor(mm / res + 1e-6) * res

    def _shown(self, mm: float) -> str:
        value = mm if self.settings.metric else mm / MM_PER_INCH
        return f"{value:.{self._decimals()}f}"

    def _take_acc(self) -> str:
        shown = self._floor(self.acc_mm)
        self.acc_mm = max(0.0, self.acc_mm - shown)  # a read clears Acc, keeping the remainder
        return self._shown(shown)

    def _reading_line(self) -> str:
        self.readings_sent += 1
        acc = self._take_acc()
        event, total = self._shown(self._floor(self.event_mm)), self._shown(self._floor(self.total_mm))
        rint = self._shown(self.model.intensity)
        if self.settings.metric:
            return f"Acc  {acc} mm, EventAcc  {event} mm, TotalAcc  {total} mm, RInt  {rint} mmph"
        return f"Acc {acc} in, EventAcc {event} in, TotalAcc {total} in, RInt {rint} iph"

    def _send_header(self) -> None:
        for line in BOOT_HEADER:
            self._send(line)

    def _send(self, line: str) -> None:
        if self._silent_now():
            self.suppressed_lines += 1
            return
        self.port.write_line(line)
        self.lines_sent += 1
