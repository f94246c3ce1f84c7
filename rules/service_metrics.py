"""The rules worker's counters: plain attributes on the hot path, exposed to Prometheus at scrape time.

A prometheus_client Counter takes a lock on every inc(); the MQTT callback updates a dozen counts
per message, so they are plain ints here and a collector reads them when /metrics is scraped.
Each counter has one writing thread (noted below), so no lock is needed and none is lost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

PREFIX = "smartcity_rules"


@dataclass(slots=True)
class IntakeCounts:
    """Counted by the MQTT callback (paho's network thread) only."""

    messages: int = 0
    bad_messages: int = 0  # not a readings topic, or not a readable SenML pack
    bad_records: int = 0
    readings_used: int = 0  # staged for the engine
    not_used: int = 0
    wrong_gateway: int = 0
    too_late: int = 0
    future: int = 0
    bad_value: int = 0
    publish_failures: int = 0  # commands the broker refused (PUBACK with a failure reason, e.g. ACL)


@dataclass(slots=True)
class EvaluatorCounts:
    """Counted by the evaluator thread only."""

    evaluations: int = 0
    evaluation_seconds: float = 0.0
    transitions: int = 0
    commands_published: int = 0
    publish_refused: int = 0  # commands paho would not queue (PublishError)
    evaluation_errors: int = 0
    reloads: int = 0
    swap_failures: int = 0  # a new build that could not take over the running state (counted as a reload failure)


@dataclass(slots=True)
class HousekeeperCounts:
    """Counted by the housekeeping thread (reloads, snapshot files) only."""

    reload_failures: int = 0
    snapshots: int = 0
    snapshot_failures: int = 0
    snapshot_load_failures: int = 0


_HELP = {
    "messages": "MQTT messages received",
    "bad_messages": "messages that were not a readable SenML pack on a readings topic",
    "bad_records": "SenML records that break the format",
    "readings_used": "readings accepted and folded into the engine",
    "not_used": "readings of series no rule reads",
    "wrong_gateway": "readings from a gateway the registry does not assign the device to",
    "too_late": "readings older than --max-lateness",
    "future": "readings more than --max-skew ahead of the worker's clock",
    "bad_value": "readings with a string value",
    "evaluations": "evaluations of the rules",
    "evaluation_seconds": "seconds spent folding, evaluating and dispatching",
    "transitions": "slot transitions (activate, clear, reassert)",
    "commands_published": "commands handed to MQTT",
    "evaluation_errors": "evaluations or dispatches that raised (logged; the evaluator carries on)",
    "reloads": "reloads of rule file or registry that took effect",
    "reload_failures": "reloads that failed (logged; the previous rules keep running)",
    "snapshots": "state snapshots written",
    "snapshot_failures": "state snapshots that could not be written",
    "snapshot_load_failures": "snapshots found corrupt at start (the worker started afresh)",
}


class RulesMetrics:
    """All counters of one worker and the CollectorRegistry that exposes them."""

    def __init__(self, extra_counters: Callable[[], dict[str, int]],
                 gauges: Callable[[], dict[str, float]]) -> None:
        self.intake = IntakeCounts()
        self.evaluator = EvaluatorCounts()
        self.housekeeper = HousekeeperCounts()
        self._extra_counters = extra_counters
        self._gauges = gauges
        self.registry = CollectorRegistry()  # no auto_describe: collect() reads a service still being built
        self.registry.register(_Collector(self))

    def values(self) -> dict[str, float]:
        """Every counter by its short name, then the engine's and the dispatcher's (extra_counters)."""
        out: dict[str, float] = {}
        for group in (self.intake, self.evaluator, self.housekeeper):
            for f in fields(group):
                out[f.name] = getattr(group, f.name)
        # Two threads see failures of each kind; one counter for each kind of trouble is what an operator wants.
        out["publish_failures"] = out["publish_failures"] + out.pop("publish_refused")
        out["reload_failures"] = out["reload_failures"] + out.pop("swap_failures")
        out.update(self._extra_counters())
        return out

    def value(self, name: str) -> float:
        """One counter by its short name (0 if unknown), for tests and the stop summary."""
        return self.values().get(name, 0)

    def gauges(self) -> dict[str, float]:
        """The current gauges (series, slots, subscribed gateways, ...)."""
        return self._gauges()


class _Collector(Collector):
    def __init__(self, metrics: RulesMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        for name, value in self._metrics.values().items():
            help_text = _HELP.get(name) or f"{name.replace('_', ' ')} (from the engine, dispatcher and senders)"
            if name == "publish_failures":
                help_text = "commands that could not be published (refused by paho or by the broker)"
            yield CounterMetricFamily(f"{PREFIX}_{name}", help_text, value=value)
        for name, value in self._metrics.gauges().items():
            yield GaugeMetricFamily(f"{PREFIX}_{name}", f"current {name.replace('_', ' ')}", value=value)
