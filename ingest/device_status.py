"""``device_status``: every registry device's state (ok, fault, silent) as one point per interval.

The city-overview map colours each device by its status. It is derived from what InfluxDB holds, not
from what this worker happened to receive, so that N workers (each seeing only its share of the
messages) compute the same thing: per kind one InfluxQL statement asks for each device's last reading
of a metric every report of the kind carries, and one more for the latest value of the kind's fault
metric (street_light: lamp_failure). All statements go in one request, bounded in time by the
point's own time T (floored to a whole interval) and a look-back of silent_after plus a margin, so
two workers asking at T + a few seconds see the same data and write the same point (same series,
same timestamp: InfluxDB keeps one).

- silent: no reading for silent_after seconds (age_s -1 when none at all in the look-back);
- fault: the latest reading of the fault metric is true;
- ok: otherwise. Silent wins over fault: a device that stopped talking is the bigger problem.

Per device the work is two dict lookups and one f-string; the tag prefix of each device is built once
per registry version, so 100,000 devices take a fraction of a second. The job runs in a daemon thread
of its own, never in the MQTT callbacks; a failing round (InfluxDB away) is logged, counted, and the
next interval tries again: a status is a snapshot, so nothing is spooled or retried.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

from core.influx import InfluxClient, InfluxError
from core.kinds import KINDS
from core.line_protocol import escape_tag
from core.log_limit import LogLimiter
from core.registry import Device, Registry
from ingest.metrics import IngestMetrics

log = logging.getLogger(__name__)

MEASUREMENT = "device_status"
STATUS_OK, STATUS_FAULT, STATUS_SILENT = "ok", "fault", "silent"
CODES = {STATUS_OK: 0, STATUS_FAULT: 1, STATUS_SILENT: 2}
DEFAULT_INTERVAL = 60.0
DEFAULT_SILENT_AFTER = 1800.0
MAX_MARGIN = 3600.0  # the look-back is silent_after plus min(silent_after, this)
WRITE_CHUNK = 10_000  # lines per InfluxDB request
# A metric every report of the kind carries (edge/device_codecs.py's layouts, the RG-15's report).
LIVENESS = {"street_light": "power", "rain_gauge": "rain_intensity", "occupancy": "presence",
            "parking_spot": "occupied", "traffic_light": "bike_priority"}
FAULTS = {"street_light": "lamp_failure"}

# Everything after "status=" up to the age, per status: the constant part of each line.
_STATUS_FIELDS = {s: f'status="{s}",code={float(c)!r},age_s=' for s, c in CODES.items()}
_float_repr = float.__repr__
Key = tuple[str, str]  # (kind, device)


def tag_prefix(device: Device) -> str:
    """The constant head of a device's device_status line: measurement, tags, lat and lon."""
    # Tag keys in sorted order (as InfluxDB prefers), written out: this runs for every device of a registry.
    tags = (("device", device.id), ("gateway", device.gateway), ("gemeente", device.gemeente), ("kind", device.kind),
            ("wijk", device.wijk))
    tag_part = "".join([f",{k}={escape_tag(v)}" for k, v in tags if v])
    return f"{MEASUREMENT}{tag_part} lat={_float_repr(float(device.lat))},lon={_float_repr(float(device.lon))},"


def status_line(device: Device, status: str, age_s: float, time_us: int) -> str:
    """One device_status point: status ok|fault|silent, its code, age_s (-1: no reading in the look-back)."""
    fields = _STATUS_FIELDS.get(status)
    if fields is None:
        raise ValueError(f"device status must be one of {', '.join(CODES)}: {status!r}")
    if not math.isfinite(age_s):
        raise ValueError(f"age_s must be finite: {age_s!r}")
    return f"{tag_prefix(device)}{fields}{float(age_s)!r} {time_us}"


def classify(last_us: int | None, fault: bool, time_us: int, silent_after: float) -> tuple[str, float]:
    """(status, age_s) of a device whose last reading is at last_us (None: none in the look-back)."""
    if last_us is None:
        return STATUS_SILENT, -1.0
    age = max(0.0, (time_us - last_us) / 1e6)
    if age >= silent_after:
        return STATUS_SILENT, age
    return (STATUS_FAULT if fault else STATUS_OK), age


def look_back(silent_after: float) -> float:
    """Seconds of readings a round looks at: enough to tell an age past silent_after, bounded."""
    return silent_after + min(silent_after, MAX_MARGIN)


class DeviceStatusJob:
    """Writes device_status for every device of registry() each interval (aligned to whole intervals)."""

    def __init__(self, influx: InfluxClient, registry: Callable[[], Registry], *,
                 interval: float = DEFAULT_INTERVAL, silent_after: float = DEFAULT_SILENT_AFTER,
                 metrics: IngestMetrics | None = None, clock: Callable[[], float] = time.time) -> None:
        if interval <= 0 or silent_after <= 0:
            raise ValueError(f"status interval and silent_after must be > 0 s: {interval}, {silent_after}")
        self._influx, self._registry, self._metrics, self._clock = influx, registry, metrics, clock
        self.interval, self.silent_after = interval, silent_after
        # Run a little after each boundary, so readings stamped just before it have been stored.
        self.delay = min(2.0, interval / 10)
        self.runs = 0
        self.failures = 0
        self._prefixes: list[tuple[str, str, str]] = []  # (device id, kind, line head) of _cached
        self._cached: Registry | None = None
        self._log_limit = LogLimiter(300.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ingest-device-status", daemon=True)

    def start(self) -> None:
        """Start the thread (the first round comes at the next interval boundary)."""
        self._thread.start()

    def stop(self) -> None:
        """Stop and wait for the thread (a round under way finishes first, up to 10 s)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)

    def _run(self) -> None:
        while True:
            now = self._clock()
            wait = self.interval - now % self.interval + self.delay
            if wait > self.interval:
                wait -= self.interval
            if self._stop.wait(wait):
                return
            self.run_once()

    def run_once(self, now: float | None = None) -> int:
        """One round, for the interval boundary at or before now; returns the points written (0 on failure).

        Never raises: a failure is logged (once per 5 minutes for a lasting outage) and counted.
        """
        try:
            written = self._round(self._clock() if now is None else now)
        except Exception as exc:  # the thread must outlive InfluxDB outages and our own bugs alike
            self.failures += 1
            if self._metrics is not None:
                self._metrics.device_status_failures.inc()
            if self._log_limit.allow():
                if isinstance(exc, InfluxError):
                    log.warning("device_status round failed (next one in %.0f s): %s", self.interval, exc)
                else:
                    log.exception("device_status round failed")
            return 0
        self.runs += 1
        if self._metrics is not None:
            self._metrics.device_status_runs.inc()
        return written

    def lines(self, now: float) -> list[str]:
        """The round's lines for the boundary at or before now (queries InfluxDB; raises InfluxError)."""
        registry = self._registry()
        if registry is not self._cached:
            self._prefixes = [(d.id, d.kind, tag_prefix(d)) for d in registry.devices.values()]
            self._cached = registry
        time_us = int(now // self.interval * self.interval * 1_000_000)
        seen, faults = self._latest({kind for _, kind, _ in self._prefixes}, time_us)
        silent_us = int(self.silent_after * 1_000_000)
        fields = _STATUS_FIELDS
        f_ok, f_fault, f_silent = fields[STATUS_OK], fields[STATUS_FAULT], fields[STATUS_SILENT]
        out = []
        for device, kind, prefix in self._prefixes:
            last = seen.get((kind, device))
            if last is None:
                out.append(f"{prefix}{f_silent}-1.0 {time_us}")
                continue
            age_us = time_us - last if last < time_us else 0
            head = f_silent if age_us >= silent_us else f_fault if faults.get((kind, device)) is True else f_ok
            out.append(f"{prefix}{head}{_float_repr(age_us / 1e6)} {time_us}")
        return out

    def _round(self, now: float) -> int:
        lines = self.lines(now)
        for i in range(0, len(lines), WRITE_CHUNK):
            self._influx.write("\n".join(lines[i:i + WRITE_CHUNK]))
        return len(lines)

    def _latest(self, kinds: set[str], time_us: int) -> tuple[dict[Key, int], dict[Key, object]]:
        """(kind, device) -> time of its last reading, and -> its latest fault-metric value."""
        if not kinds:
            return {}, {}
        since = time_us - int(look_back(self.silent_after) * 1_000_000)
        where = f"WHERE time > {since}u AND time <= {time_us}u GROUP BY \"device\""
        statements = []
        for kind in sorted(kinds):
            metric = LIVENESS.get(kind) or next(iter(KINDS[kind].metrics))
            statements.append(f'SELECT last("{metric}") AS "seen" FROM "{kind}" {where}')
            if kind in FAULTS:
                statements.append(f'SELECT last("{FAULTS[kind]}") AS "fault" FROM "{kind}" {where}')
        seen: dict[Key, int] = {}
        faults: dict[Key, object] = {}
        for s in self._influx.query("; ".join(statements), epoch="u"):
            device = s.tags.get("device", "")
            if not s.values:
                continue
            t, value = s.values[0][0], s.values[0][1]
            if s.columns[1] == "seen":
                seen[(s.name, device)] = int(t)
            else:
                faults[(s.name, device)] = value
        return seen, faults
