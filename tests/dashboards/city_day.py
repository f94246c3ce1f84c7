"""A simulated day of the demo city in a real InfluxDB, for the dashboard query tests.

The last whole local day (Europe/Amsterdam) that ended at least an hour ago, fixed per session. The
firmware-sim device models run on a simulated clock at real cadences, their frames are decoded by the
edge's own converters, packed as SenML and run through the ingest's MessageConverter (readings,
commands, acks, dead letters: the service's real path) and through the rules' Intake into the real
Engine over rules/examples/city-rules.toml, evaluated every simulated minute; its ActionDispatcher's
commands go back to the devices as downlinks, and the devices' confirming reports give the acks.
Injected: two rain showers, people counted in the evening, one lamp failing, one device silent for an
hour, a few bad messages (dead letters). Every measurement is written with the services' own builders.

Simplifications (each says what is not the real path): the edge's actuator is modelled here on the
simulated clock with edge.downlinks (the real one runs a thread on the wall clock); the gauges are
polled once a minute (the edge polls every 10 s, in continuous mode); the LoRaWAN lights share their
gateway's simulated air (no network server), decoded with the edge's payload_readings as ns_bridge
does; gateway_status is written once a minute (the edge's status repeats its birth time); the rules'
service_health figures are computed here (rules.service_health.RulesHealth reads the wall clock).
"""

from __future__ import annotations

import hashlib
import math
import time as walltime
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import time as daytime
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

from core import topics
from core.commands import Ack, Command, parse_command
from core.influx import InfluxClient
from core.registry import Registry, WatchedRegistry
from core.senml import Reading
from core.service_health import HealthReporter, service_health_line
from core.topics import Channel
from edge.lora_keys import KeyRing
from firmware_sim.street_light import StreetLightNode
from ingest import device_status
from ingest.dead_letters import MEASUREMENT as DEAD_LETTER
from ingest.health import IngestHealth, sequence_line
from ingest.messages import MessageConverter
from ingest.metrics import IngestMetrics
from ingest.points import health_line, micros, status_line
from ingest.sequence import batch_line, count_sequences
from rules.actions import ActionDispatcher
from rules.alarm_store import Alarm, AlarmStore
from rules.intake import Intake, fold_staged
from rules.partition import Partition
from rules.rule_events import RuleEventWriter
from rules.rule_file import load_rules
from rules.service_build import build
from rules.service_metrics import IntakeCounts
from rules.transitions import Event, Transition
from tests.dashboards.city_gateway import SimClock, SimGateway

ZONE = ZoneInfo("Europe/Amsterdam")
CITY_RULES = Path(__file__).parents[2] / "rules" / "examples" / "city-rules.toml"
TICK = 60.0  # the rules evaluate, the gateways publish and report status once a simulated minute
HEALTH_INTERVAL = 10.0  # service_health, as core.service_health.DEFAULT_INTERVAL
WARM_UP = 3600.0  # simulated before the day and not written: every device has reported by midnight
DOWNLINK_DELAY = 0.5  # a command's way from the rules to the radio
GAUGE_POLL_AT = 30.0  # seconds into each minute
INGEST_WORKER, RULES_WORKER = "ingest-1", "rules-0"
FLUSH_LINES = 20_000

# What is injected, in local time of the day: (hour, minute).
FAILED_LAMP, FAILS_AT = "vs-sl-102", (21, 0)
SILENT_DEVICE, SILENT_FROM, SILENT_TO = "ws-sl-201", (2, 0), (3, 0)
PEOPLE_FROM, PEOPLE_TO = (18, 0), (23, 0)
SHOWERS = ((("vs-rg-001", "ws-rg-001"), (7, 30), (8, 30)), (("vs-rg-001",), (17, 0), (18, 15)))
SHOWER_PEAK = 4.0  # mm/h above the 0.8 mm/h a shower starts and ends with
# (local time, gateway, payload) of the bad messages: each becomes a dead letter of its own reason.
BAD_READINGS = (((4, 17), "gw-vs-01", b'[{"bn":"ws-sl-101/","n":"dim_level","u":"%","v":20.0,"bt":{t}}]'),
                ((11, 42), "gw-ws-01", b"\x00\x01 not a pack"),
                ((15, 5), "gw-vs-01", b'[{"bn":"vs-sl-101/","n":"colour","v":3.0,"bt":{t}}]'))


@dataclass(frozen=True, slots=True)
class Shower:
    """Rain (> 0.5 mm/h throughout) on these gauges from start to end (unix seconds)."""

    gauges: tuple[str, ...]
    wijken: tuple[str, ...]
    start: float
    end: float


@dataclass(slots=True)
class CityDay:
    """The simulated day in InfluxDB, what was injected, and what the platform did (for independent checks)."""

    influx: InfluxClient
    start: float  # unix seconds, local midnight; every point written lies in [start, end)
    end: float
    registry: Registry
    gemeenten: list[str]
    wijken: dict[str, list[str]]  # gemeente -> its wijken
    gateways: list[str]
    failed_lamp: str
    failed_at: float
    silent_device: str
    silent: tuple[float, float]  # its uplinks are lost in [from, to)
    showers: tuple[Shower, ...]
    people: tuple[float, float]  # the occupancy sensors count people in [from, to) only
    transitions: list[Transition] = field(default_factory=list)  # the engine's, reasserts included
    commands: list[Command] = field(default_factory=list)
    acks: list[tuple[float, Ack]] = field(default_factory=list)
    alarms: list[Alarm] = field(default_factory=list)  # the alarm store's occurrences
    dead_letters: list[str] = field(default_factory=list)  # their reasons
    points: dict[str, int] = field(default_factory=dict)  # points written per measurement
    build_seconds: float = 0.0


def day_bounds(now: float) -> tuple[float, float]:
    """(start, end): the last whole local day that ended at least an hour before now."""
    last = datetime.fromtimestamp(now - 3600, ZONE).date()
    end = datetime.combine(last, daytime(0), ZONE)
    return datetime.combine(last - timedelta(days=1), daytime(0), ZONE).timestamp(), end.timestamp()


def local(start: float, hm: tuple[int, int]) -> float:
    """Unix seconds of a local wall time on the day that starts at start."""
    return datetime.combine(datetime.fromtimestamp(start, ZONE).date(), daytime(*hm), ZONE).timestamp()


class _Events(RuleEventWriter):
    """The rules' own event writer, its points taken as they are queued (no thread, no second client)."""

    def __init__(self, influx: InfluxClient) -> None:
        super().__init__(influx)
        self.lines: list[str] = []

    def offer(self, item: str) -> bool:
        self.lines.append(item)
        return True


class _Writer:
    """Collects lines and writes those inside the day, in batches, counting the points per measurement."""

    def __init__(self, influx: InfluxClient, start: float, end: float) -> None:
        self.influx, self.lo, self.hi = influx, micros(start), micros(end)
        self.lines: list[str] = []
        self.counts: dict[str, int] = {}

    def add(self, text: str) -> None:
        self.lines.append(text)
        if len(self.lines) >= FLUSH_LINES:
            self.flush()

    def flush(self) -> None:
        keep = [x for x in self.lines if self.lo <= int(x.rpartition(" ")[2]) < self.hi]
        self.lines = []
        for x in keep:
            name = x.split(" ", 1)[0].split(",", 1)[0]
            self.counts[name] = self.counts.get(name, 0) + 1
        if keep:
            self.influx.write("\n".join(keep), precision="u")


class _Metrics(IngestMetrics):
    """IngestMetrics whose value() and total() read one registry scan per health report.

    IngestHealth.collect calls them seven times a report, and each call scans the whole registry
    (~0.7 ms): over a day of 10-s reports that was most of the fixture's time. Same figures, one scan.
    """

    def __init__(self) -> None:
        super().__init__()
        self.scan()

    def scan(self) -> None:
        """Take the samples the next value() and total() calls answer from."""
        self._values: dict[str, float] = {}
        self._totals: dict[str, float] = {}
        for family in self.registry.collect():
            for sample in family.samples:
                if not sample.labels:
                    self._values[sample.name] = sample.value
                self._totals[sample.name] = self._totals.get(sample.name, 0.0) + sample.value

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        return super().value(name, labels) if labels else self._values.get(name, 0.0)

    def total(self, name: str) -> float:
        return self._totals.get(name, 0.0)


class _Platform:
    """The ingest's MessageConverter and the rules service's Intake, Engine and ActionDispatcher."""

    def __init__(self, registry: Registry, registry_path: Path, state_dir: Path, influx: InfluxClient,  # noqa: PLR0917
                 clock: SimClock, emit: Callable[[str], None]) -> None:
        self.registry, self.clock, self.emit = registry, clock, emit
        self.metrics = _Metrics()
        self.ingest = MessageConverter(WatchedRegistry(registry_path), self.metrics, INGEST_WORKER)
        self.runtime = build(load_rules(CITY_RULES), registry, Partition(), now=clock(), generation=0, mtime=0)
        self.counts = IntakeCounts()
        self.intake = Intake(self.runtime, self.counts, max_lateness=7 * 86400.0, max_skew=300.0, clock=clock,
                             wake=lambda: None)
        self.events = _Events(influx)
        self.alarms = AlarmStore(state_dir / "alarms.sqlite")
        self.dispatcher = ActionDispatcher(self.runtime.engine.slots, self._publish, alarms=self.alarms,
                                           events=self.events, zones=self.runtime.zones)
        self.published: list[tuple[str, bytes]] = []
        self.reporter = HealthReporter("ingest", INGEST_WORKER, IngestHealth(self.metrics, clock).collect, emit,
                                       interval=HEALTH_INTERVAL, clock=clock)
        self.batches: dict[str, list[tuple[float, str, int]]] = {g: [] for g in registry.gateways}
        self.seqs: dict[str, list[int]] = {}
        self.records: dict[str, int] = {}
        self.pending_lines = 0
        self.times: list[tuple[int, float, float]] = []
        # The rules worker's interval figures (rules/service_health.py's fields).
        self.evaluations, self.eval_s, self.eval_max, self.commands, self.lag_max = 0, 0.0, 0.0, 0, -math.inf
        self.readings_before = 0

    def _publish(self, gateway: str, payload: bytes) -> None:
        self.published.append((gateway, payload))

    def message(self, gateway: str, channel: Channel, payload: bytes, now: float) -> list[str]:
        """What the ingest writes for one message (also handed to the rules' intake if it is readings)."""
        topic = topics.topic(gateway, channel)
        lines, packseq = self.ingest.convert(topic, payload, now)
        for x in lines:
            self.emit(x)
        self.pending_lines += len(lines)
        times = getattr(self.ingest, "times", None)
        if times is not None:
            self.times.append(times)
        if packseq is not None:
            gw, seq, records = packseq
            self.seqs.setdefault(gw, []).append(seq)
            self.records[gw] = self.records.get(gw, 0) + records
            self.batches[gw].append((now, "batch", seq))
        if channel is Channel.READINGS:
            self.intake.on_message(topic, payload)
        return lines

    def store(self, now: float) -> None:
        """The pipeline's write of the minute: its ingest_batch points, the write and age figures."""
        time_us = self.ingest.clock_us(now)
        for gw, seqs in sorted(self.seqs.items()):
            self.emit(batch_line(gw, seqs, self.records[gw], INGEST_WORKER, time_us,
                                 gemeente=self.registry.gateways[gw].gemeente))
            self.pending_lines += 1
        if self.pending_lines:
            write_s = 0.002 + 2e-6 * self.pending_lines  # modelled: a loopback influxd's time per batch
            self.metrics.write_window.add(1, write_s, write_s)
            self.metrics.lines_stored.inc(self.pending_lines)
        for n, total, earliest in self.times:
            self.metrics.age_window.add(n, n * now - total, now - earliest)
        self.seqs, self.records, self.pending_lines, self.times = {}, {}, 0, []

    def evaluate(self, now: float) -> list[Transition]:
        """One evaluator step of the rules service (fold, evaluate, dispatch); the commands are in published."""
        started = walltime.perf_counter()
        oldest = fold_staged(self.runtime, self.intake.take())
        transitions = self.runtime.engine.evaluate(now)
        if transitions:
            self.commands += self.dispatcher.dispatch(transitions, now).commands
        seconds = walltime.perf_counter() - started
        self.evaluations += 1
        self.eval_s += seconds
        self.eval_max = max(self.eval_max, seconds)
        if isinstance(oldest, float) and math.isfinite(oldest):
            self.lag_max = max(self.lag_max, now - oldest)
        for x in self.events.lines:
            self.emit(x)
        self.events.lines = []
        return transitions

    def report(self, now: float) -> None:
        """service_health of both services for the interval ending now."""
        self.metrics.scan()
        self.reporter.report_once()
        readings = self.counts.readings_used
        n = self.evaluations
        fields = {"readings_per_s": (readings - self.readings_before) / HEALTH_INTERVAL, "evaluations": float(n),
                  "eval_ms_mean": self.eval_s * 1000 / n if n else math.nan,
                  "eval_ms_max": self.eval_max * 1000 if n else math.nan, "commands": float(self.commands),
                  "held": 0.0, "lag_ms_max": self.lag_max * 1000 if math.isfinite(self.lag_max) else math.nan}
        self.emit(service_health_line("rules", RULES_WORKER, fields, micros(now)))
        self.readings_before = readings
        self.evaluations, self.eval_s, self.eval_max, self.commands, self.lag_max = 0, 0.0, 0.0, 0, -math.inf

    def sequences(self, now: float, window: float = 3600.0) -> None:
        """gateway_sequence of the audit window ending now (ingest.sequence.count_sequences)."""
        for gw, events in sorted(self.batches.items()):
            events[:] = [e for e in events if e[0] > now - window]
            self.emit(sequence_line(gw, self.registry.gateways[gw].gemeente, count_sequences(events), micros(now)))


class _DeviceStatus:
    """device_status as ingest.device_status.DeviceStatusJob computes it, from the readings as they are stored."""

    def __init__(self, registry: Registry) -> None:
        self.devices = sorted(registry.devices.values(), key=lambda d: d.id)
        self.kinds = {d.id: d.kind for d in self.devices}
        self.seen: dict[str, float] = {}
        self.fault: dict[str, tuple[float, bool]] = {}

    def stored(self, readings: list[Reading]) -> None:
        for r in readings:
            kind = self.kinds[r.device]
            if r.metric == device_status.LIVENESS[kind]:
                self.seen[r.device] = max(self.seen.get(r.device, r.time), r.time)
            if r.metric == device_status.FAULTS.get(kind) and isinstance(r.value, bool):
                self.fault[r.device] = (r.time, r.value)

    def lines(self, now: float) -> list[str]:
        interval = device_status.DEFAULT_INTERVAL
        time_us = int(now // interval * interval * 1_000_000)
        since = time_us / 1e6 - device_status.look_back(device_status.DEFAULT_SILENT_AFTER)
        out = []
        for d in self.devices:
            seen = self.seen.get(d.id)
            fault = self.fault.get(d.id)
            status, age = device_status.classify(micros(seen) if seen is not None and seen > since else None,
                                                 fault is not None and fault[0] > since and fault[1], time_us,
                                                 device_status.DEFAULT_SILENT_AFTER)
            out.append(device_status.status_line(d, status, age, time_us))
        return out


def _shower_rain(shower: Shower, t: float) -> float:
    """mm/h on a shower's gauges at t: 0.8 at its edges, SHOWER_PEAK more in the middle, 0 outside."""
    if not shower.start <= t < shower.end:
        return 0.0
    return 0.8 + SHOWER_PEAK * math.sin(math.pi * (t - shower.start) / (shower.end - shower.start))


def simulate(influx: InfluxClient, registry: Registry, registry_path: Path, state_dir: Path, *,
             start: float, end: float) -> CityDay:
    """Run the day (after WARM_UP of unwritten lead-in) and write it to influx; what happened, as a CityDay."""
    began = walltime.perf_counter()
    clock = SimClock(start - WARM_UP)
    wijken: dict[str, list[str]] = {}
    for d in registry.devices.values():
        wijken.setdefault(d.gemeente, [])
        if d.wijk not in wijken[d.gemeente]:
            wijken[d.gemeente].append(d.wijk)
    showers = tuple(Shower(g, tuple(sorted({registry.devices[x].wijk for x in g})), local(start, a), local(start, b))
                    for g, a, b in SHOWERS)
    day = CityDay(influx, start, end, registry, sorted(wijken), {g: sorted(w) for g, w in wijken.items()},
                  sorted(registry.gateways), FAILED_LAMP, local(start, FAILS_AT), SILENT_DEVICE,
                  (local(start, SILENT_FROM), local(start, SILENT_TO)), showers,
                  (local(start, PEOPLE_FROM), local(start, PEOPLE_TO)))
    writer = _Writer(influx, start, end)
    platform = _Platform(registry, registry_path, state_dir, influx, clock, writer.add)

    def on_ack(gateway: str, ack: Ack, now: float) -> None:
        platform.message(gateway, Channel.ACKS, ack.to_json(), now)
        if start <= now < end:
            day.acks.append((now, ack))

    keys = KeyRing(master=hashlib.sha256(b"smartcity city day").digest())
    gateways = {g: SimGateway(g, registry.devices_of(g), keys, clock, on_ack, day.people) for g in day.gateways}
    lamp = gateways[registry.devices[FAILED_LAMP].gateway].nodes[FAILED_LAMP]
    silent_gw = gateways[registry.devices[SILENT_DEVICE].gateway]
    statuses = _DeviceStatus(registry)
    bad = [(local(start, hm), gw, payload) for hm, gw, payload in BAD_READINGS]

    def each(fn: Callable[[SimGateway, float], None]) -> Callable[[float], None]:
        def run(at: float) -> None:
            for g in gateways.values():
                fn(g, at)
        return run

    t0 = clock.t
    while t0 < end:
        # Injections for this minute.
        for gw in gateways.values():
            for device, (gauge, _) in gw.gauges.items():
                gauge.set_rain(max((_shower_rain(s, t0) for s in showers if device in s.gauges), default=0.0))
        cast(StreetLightNode, lamp).lamp_failure = t0 >= day.failed_at
        if day.silent[0] <= t0 < day.silent[0] + TICK:
            silent_gw.air.mute(silent_gw.address[SILENT_DEVICE], until=day.silent[1])
        events: list[tuple[float, Callable[[float], None]]] = [
            (t0 + DOWNLINK_DELAY, each(SimGateway.transmit)), (t0 + GAUGE_POLL_AT, each(SimGateway.poll_gauges)),
            *((t0 + k * HEALTH_INTERVAL, platform.report) for k in range(1, int(TICK / HEALTH_INTERVAL)))]
        for at, fn in sorted(events, key=lambda e: e[0]):
            for gw in gateways.values():
                gw.step_nodes(at)
            clock.t = at
            fn(at)
        t1 = t0 + TICK
        for gw in gateways.values():
            gw.step_nodes(t1)
        clock.t = t1
        _tick(platform, gateways, statuses, day, now=t1, bad=[(g, p) for at, g, p in bad if abs(at - t1) < 1])
        t0 = t1
    writer.flush()
    if platform.reporter.errors:
        raise AssertionError(f"{platform.reporter.errors} ingest service_health reports failed (see the log)")
    day.alarms = [a for a in platform.alarms.history(limit=10_000) if start <= a.raised_at < end]
    platform.alarms.close()
    day.points = dict(sorted(writer.counts.items()))
    day.build_seconds = walltime.perf_counter() - began
    return day


def _tick(platform: _Platform, gateways: dict[str, SimGateway], statuses: _DeviceStatus, day: CityDay, *,
          now: float, bad: list[tuple[str, bytes]]) -> None:
    """The end of a simulated minute: status, packs, the ingest's write, the rules' step, device_status."""
    recording = day.start <= now < day.end
    for gw in gateways.values():
        gw.expire(now)
        gemeente = day.registry.gateways[gw.id].gemeente
        platform.emit(status_line(gw.id, "online", micros(now), gw.seq, gemeente=gemeente))
        platform.emit(health_line(gw.id, gw.health(now), micros(now), gemeente=gemeente))
        readings = list(gw.readings)
        payload = gw.pack()
        if payload is not None:
            platform.message(gw.id, Channel.READINGS, payload, now)
            statuses.stored(readings)
    for gateway, raw in bad:
        text = raw.replace(b"{t}", str(now - 5).encode())
        for x in platform.message(gateway, Channel.READINGS, text, now):
            if x.startswith(DEAD_LETTER + ","):
                day.dead_letters.append(x.split("reason=", 1)[1].split(",", 1)[0])
    platform.store(now)
    transitions = platform.evaluate(now)
    for gateway, payload in platform.published:
        platform.message(gateway, Channel.COMMANDS, payload, now)
        cmd = parse_command(payload)
        gateways[gateway].submit(cmd, now)
        if recording:
            day.commands.append(cmd)
    platform.published = []
    if recording:
        day.transitions.extend(transitions)
    platform.report(now)
    for x in statuses.lines(now):
        platform.emit(x)
    platform.sequences(now)


def active_periods(day: CityDay, rule: str, group: str) -> list[tuple[float, float]]:
    """The [activate, clear) intervals of one slot in the day (an interval open at the end ends at day.end)."""
    out: list[tuple[float, float]] = []
    opened: float | None = None
    for t in day.transitions:
        if (t.rule, t.group) != (rule, group) or t.event is Event.REASSERT:
            continue
        if t.event is Event.ACTIVATE:
            opened = t.time
        elif opened is not None:
            out.append((opened, t.time))
            opened = None
    if opened is not None:
        out.append((opened, day.end))
    return out


def query_rows(day: CityDay, q: str) -> list[dict[str, Any]]:
    """Every row of every series of an InfluxQL query on the day's database (times in unix seconds)."""
    return [{**s.tags, **row, "time": row["time"] / 1e6} for s in day.influx.query(q, epoch="u") for row in s.rows()]
