"""Simulated time for a scenario: durations such as ``"90s"``, ``"10m"``, ``"1h30m"``, and a clock that runs fast.

A scenario speaks simulated seconds throughout; with ``speed`` S, S simulated seconds pass per
real second, so a LoRa node reporting every ``"10m"`` transmits every 600 / S real seconds.
Written here rather than reused from ``rules/durations.py``: the simulator must not import the
server side.

>>> parse_duration("1h30m"), parse_duration("90s"), parse_duration(2.5), parse_duration("250ms")
(5400.0, 90.0, 2.5, 0.25)
>>> format_duration(5400.0), format_duration(0.25)
('1h30m', '250ms')
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable

UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_WHOLE = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$")
MAX_SECONDS = 366 * 86400.0  # a year of simulated time: anything longer is a typo


class DurationError(ValueError):
    """A duration that cannot be read; the message shows the value and the accepted forms."""


def parse_duration(value: object) -> float:
    """Seconds of a duration: a number of seconds, or a string of number+unit parts (ms, s, m, h, d)."""
    if isinstance(value, bool):  # bool is an int to Python, never a duration to a person
        raise DurationError(f"a duration must be a number of seconds or a string like '90s', got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        if not _WHOLE.match(text):
            raise DurationError(f"not a duration: {value!r} (write e.g. '90s', '10m', '1h30m', '500ms', '2d')")
        seconds = sum(float(number) * UNITS[unit] for number, unit in _PART.findall(text))
    else:
        raise DurationError(f"a duration must be a number of seconds or a string like '90s', got {value!r}")
    if not math.isfinite(seconds) or seconds < 0:
        raise DurationError(f"a duration must be finite and >= 0: {value!r}")
    if seconds > MAX_SECONDS:
        raise DurationError(f"a duration of more than a year is surely a mistake: {value!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest h/m/s spelling of a duration (ms below a second), for messages and logs."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    parts = []
    rest = round(seconds, 3)
    for unit in ("d", "h", "m"):
        whole = int(rest // UNITS[unit])
        if whole:
            parts.append(f"{whole}{unit}")
            rest -= whole * UNITS[unit]
    if rest or not parts:
        parts.append(f"{rest:g}s")
    return "".join(parts)


class ScenarioClock:
    """Simulated seconds since start(): real seconds since then times ``speed``."""

    def __init__(self, speed: float, clock: Callable[[], float] = time.monotonic) -> None:
        if not math.isfinite(speed) or speed <= 0:
            raise ValueError(f"speed must be > 0 simulated seconds per real second: {speed}")
        self.speed = speed
        self._clock = clock
        self.started_at: float | None = None  # the underlying clock's time at sim time 0

    def start(self) -> None:
        """Make now simulated time 0."""
        self.started_at = self._clock()

    @property
    def started(self) -> bool:
        """True once start() was called."""
        return self.started_at is not None

    def now(self) -> float:
        """Simulated seconds since start (0 before it)."""
        return self.real_elapsed() * self.speed

    def real_elapsed(self) -> float:
        """Real seconds since start (0 before it)."""
        return 0.0 if self.started_at is None else self._clock() - self.started_at

    def real(self, simulated: float) -> float:
        """How many real seconds a simulated span lasts."""
        return simulated / self.speed

    def deadline(self, simulated: float) -> float:
        """The underlying clock's time at which simulated time reaches the given value."""
        if self.started_at is None:
            raise RuntimeError("clock not started")
        return self.started_at + simulated / self.speed
