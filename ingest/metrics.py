"""The ingest's Prometheus metrics, in a registry of each service's own (tests run several in one process)."""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_PREFIX = "smartcity_ingest"


class WindowStats:
    """Count, sum and maximum of a figure since the last take(): the per-interval means and maxima of the
    ingest's service_health points (a Prometheus histogram has no maximum). Fed once per batch, not per
    record; a lock because the writer thread adds while the health thread takes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._n = 0
        self._sum = 0.0
        self._max = float("-inf")

    def add(self, n: int, total: float, maximum: float) -> None:
        """Add n observations summing to total whose largest is maximum."""
        with self._lock:
            self._n += n
            self._sum += total
            self._max = max(self._max, maximum)

    def take(self) -> tuple[int, float, float]:
        """(count, sum, max) since the last take, and start again; max is -inf when count is 0."""
        with self._lock:
            out = (self._n, self._sum, self._max)
            self._n, self._sum, self._max = 0, 0.0, float("-inf")
        return out


class IngestMetrics:
    """Counters, gauges and the write-latency histogram of one ingest worker."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.messages = Counter(f"{_PREFIX}_messages", "MQTT messages received", ["channel"], registry=r)
        self.records = Counter(f"{_PREFIX}_records_accepted", "SenML records accepted for InfluxDB", registry=r)
        self.lines_stored = Counter(f"{_PREFIX}_points_written", "points (lines) stored in InfluxDB", registry=r)
        self.rejected = Counter(f"{_PREFIX}_rejected_records", "records refused, by reason", ["reason"],
                                registry=r)
        self.dead_letters = Counter(f"{_PREFIX}_dead_letters", "dead letters written, by reason", ["reason"],
                                    registry=r)
        self.refused_lines = Counter(f"{_PREFIX}_influx_refused_lines", "lines InfluxDB refused (400)",
                                     registry=r)
        self.write_seconds = Histogram(f"{_PREFIX}_write_seconds", "duration of one InfluxDB write request",
                                       buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
                                       registry=r)
        self.retries = Counter(f"{_PREFIX}_write_retries", "failed InfluxDB writes that will be retried",
                               ["reason"], registry=r)
        self.spooled = Counter(f"{_PREFIX}_spooled_batches", "batches written to the spool", registry=r)
        self.replayed = Counter(f"{_PREFIX}_replayed_batches", "spooled batches replayed into InfluxDB",
                                registry=r)
        self.spool_full = Counter(f"{_PREFIX}_spool_full", "times a batch found the spool full", registry=r)
        self.spool_errors = Counter(f"{_PREFIX}_spool_errors", "spool writes that failed (disk)", registry=r)
        self.spool_batches = Gauge(f"{_PREFIX}_spool_depth_batches", "batches waiting in the spool", registry=r)
        self.spool_bytes = Gauge(f"{_PREFIX}_spool_bytes", "bytes waiting in the spool", registry=r)
        self.spool_age = Gauge(f"{_PREFIX}_spool_oldest_seconds", "age of the oldest spooled batch", registry=r)
        self.pending_lines = Gauge(f"{_PREFIX}_pending_lines", "lines received, not yet written", registry=r)
        self.unacked = Gauge(f"{_PREFIX}_unacknowledged_messages", "messages received, not yet acknowledged",
                             registry=r)
        self.unsequenced = Counter(f"{_PREFIX}_unsequenced_batches", "SenML packs without seq, by gateway",
                                   ["gateway"], registry=r)
        self.gaps = Gauge(f"{_PREFIX}_sequence_gaps", "batches missing in the audit window, by gateway",
                          ["gateway"], registry=r)
        self.duplicates = Gauge(f"{_PREFIX}_sequence_duplicates", "batches received twice in the audit window",
                                ["gateway"], registry=r)
        self.callback_errors = Counter(f"{_PREFIX}_callback_errors", "unexpected errors caught in callbacks",
                                       registry=r)
        self.device_status_runs = Counter(f"{_PREFIX}_device_status_runs", "device_status rounds written",
                                          registry=r)
        self.device_status_failures = Counter(f"{_PREFIX}_device_status_failures",
                                              "device_status rounds that failed (InfluxDB away, a bug)",
                                              registry=r)
        # For service_health: write request durations (s) and reading ages when stored (s).
        self.write_window = WindowStats()
        self.age_window = WindowStats()

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        """A sample's current value (0 if never set); names as exposed, e.g. ..._messages_total."""
        found = self.registry.get_sample_value(name, labels or {})
        return 0.0 if found is None else found

    def total(self, name: str) -> float:
        """The sum of a sample over all its label values (e.g. dead letters of every reason)."""
        return sum(s.value for fam in self.registry.collect() for s in fam.samples if s.name == name)
