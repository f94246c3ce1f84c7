"""Series and trailing windows of the reference engine: one object per series and per (series, over).

Written to read like rules/README.md ("Series", "Values at evaluation time"), one reading at a time.
Missing is None throughout. State converts to and from plain data for snapshots.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from rules.rule_model import WINDOW_BUCKETS, SeriesFn


@dataclass(slots=True)
class Series:
    """One (device, metric): its latest reading by event time and its latest received wall time."""

    received: float  # before any reading: when the engine started (or the reload that added it)
    t: float | None = None
    value: float | None = None

    def add(self, value: float, t: float, received: float) -> None:
        """Fold one reading: of equal event times the later-arriving one wins."""
        if self.t is None or t >= self.t:
            self.t, self.value = t, value
        self.received = max(self.received, received)

    def last(self, now: float, stale_after: float) -> float | None:
        """The latest value, or None if there is none or it is older than stale_after at now."""
        if self.t is None or now - self.t > stale_after:
            return None
        return self.value

    def silence(self, now: float) -> float:
        """Wall seconds since a reading was last received (never missing)."""
        return now - self.received

    def to_data(self) -> dict[str, Any]:
        """Plain data for a snapshot."""
        return {"t": self.t, "value": self.value, "received": self.received}

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Series:
        """The inverse of to_data."""
        return cls(float(data["received"]), _opt(data["t"]), _opt(data["value"]))


@dataclass(slots=True)
class Bucket:
    """The readings of one bucket k: aggregates plus the earliest and latest reading by event time."""

    k: int
    count: int
    total: float
    low: float
    high: float
    first_t: float
    first_v: float
    last_t: float
    last_v: float

    @classmethod
    def of(cls, k: int, value: float, t: float) -> Bucket:
        """A bucket holding one reading."""
        return cls(k, 1, value, value, value, t, value, t, value)

    def add(self, value: float, t: float) -> None:
        """Fold another reading of the same bucket."""
        self.count += 1
        self.total += value
        self.low = min(self.low, value)
        self.high = max(self.high, value)
        if t < self.first_t:  # ties: the first to arrive stays the earliest
            self.first_t, self.first_v = t, value
        if t >= self.last_t:  # ties: the last to arrive becomes the latest
            self.last_t, self.last_v = t, value


class Ring:
    """The trailing window of one series for one `over`: 12 cells of over/12 seconds by event time."""

    def __init__(self, over: float) -> None:
        self.over = over
        self.width = over / WINDOW_BUCKETS
        self.cells: list[Bucket | None] = [None] * WINDOW_BUCKETS

    def bucket_of(self, t: float) -> int:
        """The bucket number k = floor(t / w) of a time."""
        return math.floor(t / self.width)

    def add(self, value: float, t: float) -> bool:
        """Fold one reading; False if it was dropped for an older bucket than its cell holds."""
        k = self.bucket_of(t)
        cell = self.cells[k % WINDOW_BUCKETS]
        if cell is None or k > cell.k:
            self.cells[k % WINDOW_BUCKETS] = Bucket.of(k, value, t)
            return True
        if k < cell.k:
            return False
        cell.add(value, t)
        return True

    def window(self, now: float) -> list[Bucket]:
        """The buckets with floor(now / w) - 12 < k <= floor(now / w), oldest first."""
        newest = self.bucket_of(now)
        inside = [c for c in self.cells if c is not None and newest - WINDOW_BUCKETS < c.k <= newest]
        return sorted(inside, key=lambda c: c.k)

    def value(self, fn: SeriesFn, now: float) -> float | None:
        """A windowed function at now; None with no reading in the window (and rate over no time)."""
        buckets = self.window(now)
        if not buckets:
            return None
        count = sum(b.count for b in buckets)
        total = 0.0
        for b in buckets:
            total += b.total
        first, latest = buckets[0], buckets[-1]  # buckets split time, so these hold the extremes
        if fn is SeriesFn.COUNT:
            return float(count)
        if fn is SeriesFn.SUM:
            return total
        if fn is SeriesFn.MEAN:
            return total / count
        if fn is SeriesFn.MIN:
            return min(b.low for b in buckets)
        if fn is SeriesFn.MAX:
            return max(b.high for b in buckets)
        if fn is SeriesFn.DELTA:
            return latest.last_v - first.first_v
        if fn is SeriesFn.RATE:
            if latest.last_t == first.first_t:
                return None
            return (latest.last_v - first.first_v) / (latest.last_t - first.first_t)
        raise ValueError(f"{fn} is not a windowed function")

    def to_data(self) -> list[list[float] | None]:
        """Per cell None or [k, count, total, low, high, first_t, first_v, last_t, last_v], for a snapshot."""
        return [None if c is None else [c.k, c.count, c.total, c.low, c.high, c.first_t, c.first_v,
                                        c.last_t, c.last_v] for c in self.cells]

    def load(self, cells: list[list[float] | None]) -> None:
        """Replace the cells by those of a snapshot (to_data's output)."""
        self.cells = [None if c is None else Bucket(int(c[0]), int(c[1]), *(float(x) for x in c[2:]))
                      for c in cells]


def _opt(x: Any) -> float | None:
    return None if x is None else float(x)
