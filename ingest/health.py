"""The ingest's own health in InfluxDB: ``service_health`` every few seconds, ``gateway_sequence`` per audit.

``IngestHealth.collect`` turns the worker's counters (ingest/metrics.py) into one interval's figures:
rates are counter deltas over the seconds since the last collect; the write time and the reading age
come from the per-interval windows the writer thread feeds once per batch (the age of a stored batch
is its store time minus its readings' times, from the (n, sum, min) each message brings, so no
per-record work); depths are the gauges' current values. A mean or maximum of an interval without
any write is left out of the point (not 0: no write is not an instant one).

Both measurements take the ingest's normal write path (``WritePipeline.submit``): a point is one
short line every few seconds, submit never blocks, and during an InfluxDB outage the points are
spooled with the readings, so the dashboards show afterwards how deep the spool got and when.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from core.line_protocol import line
from core.registry import Registry
from ingest.metrics import IngestMetrics
from ingest.sequence import SequenceCounts

SERVICE = "ingest"
SEQUENCE_MEASUREMENT = "gateway_sequence"
DEFAULT_HEALTH_INTERVAL = 10.0
_NAN = float("nan")


def sequence_line(gateway: str, gemeente: str | None, counts: SequenceCounts, time_us: int) -> str:
    """One gateway's audit-window counts as a point of gateway_sequence (gemeente left out if unknown)."""
    tags = {"gateway": gateway}
    if gemeente:
        tags["gemeente"] = gemeente
    fields: dict[str, float | int | bool | str] = {"gaps": float(counts.gaps), "duplicates": float(counts.duplicates),
                                                   "batches": float(counts.batches)}
    return line(SEQUENCE_MEASUREMENT, tags, fields, time_us)


def sequence_lines(counts: Mapping[str, SequenceCounts], registry: Registry, time_us: int) -> list[str]:
    """The gateway_sequence points of one audit, each with its gateway's gemeente from the registry."""
    out = []
    for gateway, c in sorted(counts.items()):
        known = registry.gateways.get(gateway)
        out.append(sequence_line(gateway, known.gemeente if known is not None else None, c, time_us))
    return out


class IngestHealth:
    """collect() -> the service_health fields of the interval since the previous collect."""

    def __init__(self, metrics: IngestMetrics, clock: Callable[[], float] = time.monotonic) -> None:
        self._metrics = metrics
        self._clock = clock
        self._last = self._counters()
        self._last_at = clock()

    def _counters(self) -> tuple[float, float, float, float]:
        m = self._metrics
        return (m.value("smartcity_ingest_records_accepted_total"), m.value("smartcity_ingest_points_written_total"),
                m.total("smartcity_ingest_dead_letters_total"), m.total("smartcity_ingest_rejected_records_total"))

    def collect(self) -> dict[str, float]:
        """The interval's figures; the next interval starts now."""
        m = self._metrics
        now = self._clock()
        counters = self._counters()
        seconds = max(now - self._last_at, 1e-6)
        records, points, dead, rejected = (c - p for c, p in zip(counters, self._last, strict=True))
        self._last, self._last_at = counters, now
        writes, write_sum, write_max = m.write_window.take()
        aged, age_sum, age_max = m.age_window.take()
        return {
            "records_per_s": records / seconds,
            "points_per_s": points / seconds,
            "write_ms_mean": write_sum / writes * 1000 if writes else _NAN,
            "write_ms_max": write_max * 1000 if writes else _NAN,
            "age_ms_mean": age_sum / aged * 1000 if aged else _NAN,
            "age_ms_max": age_max * 1000 if aged else _NAN,
            "spool_batches": m.value("smartcity_ingest_spool_depth_batches"),
            "spool_bytes": m.value("smartcity_ingest_spool_bytes"),
            "pending_lines": m.value("smartcity_ingest_pending_lines"),
            "dead_letters": dead,
            "rejected": rejected,
        }
