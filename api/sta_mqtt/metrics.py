"""The publisher's counters: plain ints on the hot path (paho's network thread is their one writer),
exposed to Prometheus at scrape time, as the rules service does (rules/service_metrics.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

PREFIX = "smartcity_sta_mqtt"

_HELP = {
    "messages": "MQTT messages received on the readings topics",
    "bad_messages": "messages that are not a readable SenML pack or not on a gateway's readings topic",
    "observations": "readings accepted and published as Observations",
    "published": "MQTT messages published (an Observation goes to its Datastream's topic and the collection's)",
    "dropped_backlog": "Observations not published because the outgoing queue was full",
    "dropped_disconnected": "Observations not published because the broker was not connected",
}


@dataclass(slots=True)
class Counts:
    """Counted by the MQTT callback only; ``rejected`` by reason (the ingest's reasons and not_public)."""

    messages: int = 0
    bad_messages: int = 0
    observations: int = 0
    published: int = 0
    dropped_backlog: int = 0
    dropped_disconnected: int = 0
    rejected: dict[str, int] = field(default_factory=dict)


class _Collector(Collector):
    def __init__(self, counts: Counts, backlog: Callable[[], int]) -> None:
        self._counts = counts
        self._backlog = backlog

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        c = self._counts
        for f in fields(c):
            if f.name != "rejected":
                yield CounterMetricFamily(f"{PREFIX}_{f.name}", _HELP[f.name], value=getattr(c, f.name))
        rejected = CounterMetricFamily(f"{PREFIX}_rejected_records", "records not published, by reason",
                                       labels=["reason"])
        for reason, n in sorted(dict(c.rejected).items()):
            rejected.add_metric([reason], n)
        yield rejected
        yield GaugeMetricFamily(f"{PREFIX}_outgoing_queue", "MQTT packets waiting to be written to the broker",
                                value=self._backlog())


class Metrics:
    """The counts and a Prometheus registry of this service's own."""

    def __init__(self, backlog: Callable[[], int]) -> None:
        self.counts = Counts()
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(_Collector(self.counts, backlog))
