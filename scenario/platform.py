"""The platform's side of a simulated day: the ingest's conversion and the rules service's loop, in process.

The ingest's MessageConverter turns each message into the lines the service would write; the rules' Intake,
Engine and ActionDispatcher evaluate the same messages and publish commands back to the simulated gateways.
What the services compute from the wall clock (service_health of the rules, device_status) is computed here on
the simulated clock with the services' own builders (scenario/day.py lists every simplification).
"""

from __future__ import annotations

import math
import time as walltime
from collections.abc import Callable
from pathlib import Path

from core import topics
from core.influx import InfluxClient
from core.registry import Registry, WatchedRegistry
from core.senml import Reading
from core.service_health import HealthReporter, service_health_line
from core.topics import Channel
from ingest import device_status
from ingest.health import IngestHealth, sequence_line
from ingest.messages import MessageConverter
from ingest.metrics import IngestMetrics
from ingest.points import micros
from ingest.sequence import batch_line, count_sequences
from rules.actions import ActionDispatcher
from rules.alarm_store import AlarmState, AlarmStore
from rules.group_zones import GroupZones
from rules.intake import Intake, fold_staged
from rules.partition import Partition
from rules.rule_events import RuleEventWriter, alarm_line
from rules.rule_file import load_rules
from rules.service_build import build
from rules.service_metrics import IntakeCounts
from rules.transitions import Transition
from scenario.gateway import SimClock

HEALTH_INTERVAL = 10.0  # service_health, as core.service_health.DEFAULT_INTERVAL
INGEST_WORKER, RULES_WORKER = "ingest-1", "rules-0"
OPERATOR = "operator:scenario"  # who acknowledges the script's alarms
FLUSH_LINES = 20_000


class EventTap(RuleEventWriter):
    """The rules' own event writer, its points taken as they are queued (no thread, no second client)."""

    def __init__(self, influx: InfluxClient) -> None:
        super().__init__(influx)
        self.lines: list[str] = []

    def offer(self, item: str) -> bool:
        self.lines.append(item)
        return True


class DayWriter:
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


class ScanMetrics(IngestMetrics):
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


class Platform:
    """The ingest's MessageConverter and the rules service's Intake, Engine and ActionDispatcher."""

    def __init__(self, registry: Registry, registry_path: Path, rules_path: Path, state_dir: Path,  # noqa: PLR0917
                 influx: InfluxClient, clock: SimClock, emit: Callable[[str], None]) -> None:
        self.registry, self.clock, self.emit = registry, clock, emit
        self.metrics = ScanMetrics()
        self.ingest = MessageConverter(WatchedRegistry(registry_path), self.metrics, INGEST_WORKER)
        self.runtime = build(load_rules(rules_path), registry, Partition(), now=clock(), generation=0, mtime=0)
        self.counts = IntakeCounts()
        self.intake = Intake(self.runtime, self.counts, max_lateness=7 * 86400.0, max_skew=300.0, clock=clock,
                             wake=lambda: None)
        self.events = EventTap(influx)
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

    def acknowledge(self, rule: str, now: float) -> int:
        """An operator acknowledges every open alarm of rule, as `smartcity alarms ack` does; returns how many."""
        zones = GroupZones(self.registry)
        done = 0
        for a in self.alarms.open_alarms():
            if a.rule != rule or a.acknowledged_at is not None:
                continue
            self.alarms.acknowledge(a.id, OPERATOR, now)
            gemeente, wijk = zones.guess(a.group)
            self.emit(alarm_line(a.rule, a.group, a.severity, AlarmState.ACKNOWLEDGED, at=now, alarm_id=a.id,
                                 text=a.text, by=OPERATOR, gemeente=gemeente, wijk=wijk))
            done += 1
        return done

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


class DeviceStatusModel:
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
