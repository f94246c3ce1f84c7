"""Uplink packs validated against the registry and folded into line protocol, and the other channels' points.

One line per device and timestamp, with every metric of that moment as a field: fewer, wider points
are cheaper for InfluxDB to index than one point per metric. Timestamps are microseconds, the
precision a float of unix seconds carries (two readings in the same millisecond stay two points).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from core.commands import Ack, Command
from core.line_protocol import line
from core.numbers import finite_float
from core.senml_columns import Columns
from ingest.series_table import SeriesTable

_float_repr = float.__repr__
DEFAULT_MAX_LATENESS = 7 * 86400.0
DEFAULT_MAX_SKEW = 300.0
# Late-write markers. The API's $count caches the count of a day once the day ended more than
# SETTLE_S (+ its own margin) ago. A reading older than SETTLE_S when it is packed (a gateway's backlog,
# a redelivered message) may still land in such a day: with it, in the same batch (so the marker is
# never missing when the point is there), goes one point of LATE_MEASUREMENT per (measurement, UTC
# day) it touches, and the API counts that day again when it sees a marker it has not seen.
SETTLE_S = 3600.0
LATE_MEASUREMENT = "late_write"
ALL_MEASUREMENTS = "*"  # a marker for every measurement (a spooled batch replayed late: pipeline)
DAY_US = 86_400 * 1_000_000


def micros(t: float) -> int:
    """Unix seconds as integer microseconds (the ingest's write precision)."""
    return int(t * 1_000_000 + 0.5)


class UniqueMicros:
    """Receive timestamps in microseconds that never repeat: two points received in one microsecond
    by one worker stay two points. Not thread-safe: one per thread that stamps."""

    def __init__(self) -> None:
        self._last = 0

    def __call__(self, now: float) -> int:
        self._last = max(self._last + 1, micros(now))
        return self._last


@dataclass(frozen=True, slots=True)
class TimeBounds:
    """Readings older than max_lateness or more than max_skew ahead of the ingest's clock are refused."""

    max_lateness: float = DEFAULT_MAX_LATENESS
    max_skew: float = DEFAULT_MAX_SKEW

    def admits(self, value: object, now: float) -> bool:
        """True if value is a finite unix time within the bounds around now (pack_lines inlines this)."""
        t = finite_float(value)
        return t is not None and now - self.max_lateness <= t <= now + self.max_skew


@dataclass(slots=True)
class Rejects:
    """The rejected records of one message: a count and the first message per reason."""

    counts: dict[str, int] = field(default_factory=dict)
    first: dict[str, str] = field(default_factory=dict)

    def add(self, reason: str, message: str, n: int = 1) -> None:
        """Count n rejections for reason; keep the first message as the example."""
        self.counts[reason] = self.counts.get(reason, 0) + n
        self.first.setdefault(reason, message)

    @property
    def total(self) -> int:
        """All rejections of the message."""
        return sum(self.counts.values())


DEFAULT_BOUNDS = TimeBounds()


def pack_lines(gateway: str, cols: Columns, table: SeriesTable, *, now: float, rejects: Rejects,
               bounds: TimeBounds = DEFAULT_BOUNDS) -> list[str]:
    """Line protocol for the valid records of a pack from gateway; each bad record is counted in rejects."""
    for err in cols.errors:
        rejects.add("bad_record", err)
    specs = table.specs
    earliest = now - bounds.max_lateness
    latest = now + bounds.max_skew
    # Fields as a list: a metric sent twice for one time appears twice in the line, and InfluxDB keeps
    # the last, as a dict would (checked against influxd 1.6), at less cost per record.
    points: dict[tuple[str, int], list[str]] = {}
    for name, value, when, unit in zip(cols.names, cols.values, cols.times, cols.units, strict=True):
        spec = specs.get(name)
        if spec is None:
            reason, message = table.why_unknown(name)
            rejects.add(reason, message)
            continue
        if spec.gateway != gateway:
            # Readings count only from the gateway the registry assigns the device to.
            rejects.add("wrong_gateway", f"device {spec.device!r} belongs to {spec.gateway!r}, not {gateway!r}")
            continue
        if spec.boolean:
            if value is True:
                text = "true"
            elif value is False:
                text = "false"
            else:
                rejects.add("wrong_type", f"{name}: expected a boolean (vb), got {value!r:.40}")
                continue
        elif type(value) is float:
            text = _float_repr(value)
        else:
            rejects.add("wrong_type", f"{name}: expected a number (v), got {value!r:.40}")
            continue
        if unit is not None and unit != spec.unit:
            rejects.add("wrong_unit", f"{name}: unit {unit[:20]!r}, the registry says {spec.unit!r}")
            continue
        if not earliest <= when <= latest:
            if when < earliest:
                rejects.add("too_late", f"{name}: reading {now - when:.0f} s old, more than the "
                                        f"{bounds.max_lateness:.0f} s accepted")
            else:
                rejects.add("future", f"{name}: reading {when - now:.0f} s ahead of the ingest's clock, "
                                      f"more than the {bounds.max_skew:.0f} s accepted")
            continue
        key = (spec.prefix, int(when * 1_000_000 + 0.5))
        fields = points.get(key)
        if fields is None:
            points[key] = [spec.key + text]
        else:
            fields.append(spec.key + text)
    lines = [f"{prefix}{','.join(fields)} {ts}" for (prefix, ts), fields in points.items()]
    # One C-level min over the batch's times, no per-record work: markers only for a batch with late readings.
    if cols.times and min(cols.times) < now - SETTLE_S and points:
        lines += late_lines(gateway, points, micros(now))
    return lines


def late_lines(gateway: str, points: dict[tuple[str, int], list[str]], now_us: int) -> list[str]:
    """Markers of the (measurement, day) pairs of the points older than SETTLE_S (see SETTLE_S)."""
    settle_us = now_us - int(SETTLE_S * 1_000_000)
    days: dict[tuple[str, int], int] = {}
    for prefix, ts in points:
        if ts < settle_us:
            key = (prefix.split(",", 1)[0].rstrip(), ts - ts % DAY_US)
            days[key] = days.get(key, 0) + 1
    return [late_line(gateway, m, day, n, now_us) for (m, day), n in days.items()]


def late_line(gateway: str, measurement: str, day_us: int, n: int, now_us: int) -> str:
    """One late-write marker: n points were written at now_us into measurement's day starting at day_us."""
    return line(LATE_MEASUREMENT, {"day": str(day_us), "gateway": gateway or "-", "measurement": measurement},
                {"n": n}, now_us)


def replay_late_lines(created: float, now: float, max_skew: float = DEFAULT_MAX_SKEW) -> list[str]:
    """Markers for a spooled batch replayed more than SETTLE_S / 2 after it was spooled: its readings were
    not late when packed but land late now, in days from created - SETTLE_S (what pack_lines left
    unmarked) to created + max_skew, of any measurement."""
    if now - created <= SETTLE_S / 2:
        return []
    lo = micros(created - 2 * SETTLE_S)  # (packed at most a little before it was spooled)
    hi = micros(created + max_skew)
    return [late_line("spool", ALL_MEASUREMENTS, day, 0, micros(now))
            for day in range(lo - lo % DAY_US, hi + 1, DAY_US)]


def _place(tags: dict[str, str], gemeente: str | None, wijk: str | None = None) -> dict[str, str]:
    """tags with the registry's gemeente (and wijk) added where known (so dashboards can filter by them)."""
    if gemeente:
        tags["gemeente"] = gemeente
    if wijk:
        tags["wijk"] = wijk
    return tags


def status_line(gateway: str, state: str, time_us: int, seq: int | None = None, gemeente: str | None = None) -> str:
    """A gateway birth/will message as a point of gateway_status (gemeente: the gateway's, if registered)."""
    fields: dict[str, float | int | bool | str] = {"state": state, "online": state == "online"}
    if seq is not None:
        fields["seq"] = seq
    return line("gateway_status", _place({"gateway": gateway}, gemeente), fields, time_us)


HEALTH_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MAX_HEALTH_FIELDS = 100


def health_fields(health: object) -> dict[str, float]:
    """The numeric counters of an edge status' ``health`` object; raises ValueError naming what is wrong.

    Every value is stored as a float, so a counter that is sometimes an int never clashes with
    the field's type in InfluxDB; names are checked so a gateway cannot make arbitrary fields.
    """
    if not isinstance(health, dict) or not health or len(health) > MAX_HEALTH_FIELDS:
        raise ValueError(f"status 'health' must be an object of 1-{MAX_HEALTH_FIELDS} counters")
    fields: dict[str, float] = {}
    for name, value in health.items():
        if not isinstance(name, str) or not HEALTH_NAME.match(name):
            raise ValueError(f"health counter name {str(name)[:70]!r} is not lower-case letters, digits and '_'")
        number = finite_float(value)
        if number is None or isinstance(value, bool):
            raise ValueError(f"health counter {name} must be a finite number: {str(value)[:40]}")
        fields[name] = number
    return fields


def health_line(gateway: str, fields: dict[str, float], time_us: int, gemeente: str | None = None) -> str:
    """An edge agent's health counters as a point of gateway_health (gemeente: the gateway's, if registered)."""
    return line("gateway_health", _place({"gateway": gateway}, gemeente), dict(fields), time_us)


def command_line(gateway: str, cmd: Command, gemeente: str | None = None, wijk: str | None = None) -> str:
    """A command as a point of the command measurement (Grafana shows these as annotations); gemeente and
    wijk are the target device's, where the registry knows it."""
    fields: dict[str, float | int | bool | str] = {"id": cmd.id}
    for key, value in cmd.params.items():
        if isinstance(value, int | float | bool | str):
            fields[key] = float(value) if isinstance(value, int) and not isinstance(value, bool) else value
    tags = {"gateway": gateway, "device": cmd.device, "action": cmd.action.value, "origin": cmd.origin}
    return line("command", _place(tags, gemeente, wijk), fields, micros(cmd.issued_at))


def ack_line(gateway: str, ack: Ack, time_us: int, gemeente: str | None = None, wijk: str | None = None) -> str:
    """A command acknowledgement as a point of command_ack (gemeente, wijk: the device's, where known)."""
    tags = {"gateway": gateway, "device": ack.device, "status": ack.status.value}
    return line("command_ack", _place(tags, gemeente, wijk), {"id": ack.id, "detail": ack.detail}, time_us)
