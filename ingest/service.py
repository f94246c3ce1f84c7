"""The ingest service: MQTT (shared subscription, QoS 1, manual acks) -> validation -> InfluxDB or spool.

At least once: a message is acknowledged to the broker only once its points are in InfluxDB or fsync'd
in this worker's spool (ingest/pipeline.py), so a crash, an InfluxDB outage or a kill -9 makes the
broker redeliver rather than lose it; InfluxDB overwrites an identical series+timestamp, which makes
redelivery harmless. All four channels are consumed through the share group, so with N workers each
message is handled by exactly one of them (a status or ack becomes one point, not N).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as paho

from core import topics
from core.influx import InfluxClient, InfluxError
from core.mqtt_service import MqttLink
from core.registry import WatchedRegistry
from core.service_health import HealthReporter
from core.settings import MqttSettings
from core.topics import Channel
from ingest import sequence
from ingest.device_status import DEFAULT_INTERVAL, DEFAULT_SILENT_AFTER, DeviceStatusJob
from ingest.health import DEFAULT_HEALTH_INTERVAL, SERVICE, IngestHealth, sequence_lines
from ingest.influx_writer import InfluxWriter
from ingest.messages import MessageConverter
from ingest.metrics import IngestMetrics
from ingest.pipeline import AckToken, PipelineConfig, WritePipeline
from ingest.points import TimeBounds
from ingest.spool import DEFAULT_MAX_AGE, DEFAULT_MAX_BYTES, Spool
from ingest.worker import WorkerClaim

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IngestConfig:
    """Everything tunable about one worker (the CLI's options)."""

    share_group: str = "ingest"
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    bounds: TimeBounds = field(default_factory=TimeBounds)
    receive_maximum: int = 10_000
    spool_max_bytes: int = DEFAULT_MAX_BYTES
    spool_max_age: float = DEFAULT_MAX_AGE
    audit_interval: float = 60.0
    audit_window: float = 3600.0
    status_interval: float = DEFAULT_INTERVAL  # device_status every this many s; 0: off
    silent_after: float = DEFAULT_SILENT_AFTER  # a device without a reading this long is silent
    health_interval: float = DEFAULT_HEALTH_INTERVAL  # service_health every this many s; 0: off


class RetireError(RuntimeError):
    """A retire could not finish: what the worker holds is not all in InfluxDB yet."""


class IngestService:
    """One ingest worker; run several with the same share group to spread the load."""

    def __init__(self, mqtt_settings: MqttSettings, influx: InfluxClient, registry: WatchedRegistry,
                 worker: WorkerClaim, config: IngestConfig | None = None) -> None:
        config = config or IngestConfig()
        self.worker = worker
        self.config = config
        self.metrics = IngestMetrics()
        self._influx = influx
        self._registry = registry
        self._converter = MessageConverter(registry, self.metrics, worker.name, config.bounds)
        self.spool = Spool(worker.directory / "spool", max_bytes=config.spool_max_bytes,
                           max_age=config.spool_max_age)
        self.pipeline = WritePipeline(InfluxWriter(influx), self.spool, self.metrics, release=self._release,
                                      config=config.pipeline, worker=worker.name, gemeente_of=self._gemeente_of)
        # Both in threads of their own: neither ever runs in (or waits for) the MQTT callbacks.
        self.device_status = DeviceStatusJob(influx, registry.get, interval=config.status_interval,
                                             silent_after=config.silent_after, metrics=self.metrics) \
            if config.status_interval > 0 else None
        self.health_reporter = HealthReporter(SERVICE, worker.name, IngestHealth(self.metrics).collect,
                                              self._submit_line, interval=config.health_interval) \
            if config.health_interval > 0 else None
        self._generation = 0
        self._pending_mids: set[int] = set()
        self._mids_lock = threading.Lock()
        self._closing = False
        self._retiring = False
        self._last_message_at = time.monotonic()
        self._stop = threading.Event()
        self._audit_thread = threading.Thread(target=self._audit_loop, name="ingest-audit", daemon=True)
        group = config.share_group
        self._subscriptions = [(topics.subscription(c, group), 1) for c in Channel]
        self.link = MqttLink(
            f"ingest {worker.name}", mqtt_settings, worker.client_id,
            subscriptions=self._subscriptions,
            on_message=self._on_message, on_connect=self._on_connect, manual_ack=True,
            receive_maximum=config.receive_maximum,
        )

    @property
    def connected(self) -> threading.Event:
        """Set while connected to the broker."""
        return self.link.connected

    def start(self) -> None:
        """Start writing (and replaying a spool left by an earlier run), then connect and consume."""
        self.pipeline.start()
        if self.config.audit_interval > 0:
            self._audit_thread.start()
        if not self._retiring:  # a retiring worker only drains its session
            for job in (self.device_status, self.health_reporter):
                if job is not None:
                    job.start()
        self.link.start()

    def stop(self, *, end_session: bool = False) -> None:
        """Stop taking messages, store or spool what is held and acknowledge it, then disconnect.

        end_session (for retire) also ends the MQTT session, once everything it held is stored.
        """
        self._closing = True  # later messages stay unacknowledged: the broker redelivers them to us
        self._stop.set()
        for job in (self.health_reporter, self.device_status):
            if job is not None:
                job.stop()
        self.pipeline.stop()
        self.link.stop(end_session=end_session and self.pipeline.idle())
        if self._audit_thread.is_alive():
            self._audit_thread.join(5)

    def retire(self, quiet_seconds: float = 2.0, timeout: float = 600.0) -> int:
        """Drain this worker's session for good: store what the broker queued for it, then end the session.

        mosquitto keeps giving a share group's messages to members whose persistent session is offline
        and queues them there; a worker name that never comes back would strand them until the
        session expires (24 h) and mosquitto drops them. Retiring unsubscribes first, so nothing new
        is queued, takes the backlog, and ends the session once the backlog is stored.
        Returns the number of messages drained.
        """
        self._retiring = True
        self.link.subscriptions = []
        self.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(0.2)
            quiet = time.monotonic() - self._last_message_at >= quiet_seconds
            if self.link.connected.is_set() and quiet and self.pipeline.idle():
                break
        drained = int(self.link.stats.messages)
        self.stop(end_session=True)
        if not self.pipeline.idle():
            raise RetireError(f"worker {self.worker.name}: {len(self.spool)} spooled batches are not yet in "
                              "InfluxDB; the session is kept: run the retire again once InfluxDB takes writes")
        return drained

    def health(self) -> dict[str, Any]:
        """Health for /healthz: the write path's, degraded while disconnected from the broker."""
        report = self.pipeline.health()
        report["worker"] = self.worker.name
        report["mqtt"] = "connected" if self.link.connected.is_set() else "disconnected"
        if report["status"] == "ok" and not self.link.connected.is_set():
            report["status"] = "degraded"
        return report

    # -- MQTT callbacks (paho's thread, guarded by MqttLink) --------------------------------------
    def _on_connect(self, _client: paho.Client) -> None:
        # Packet ids belong to the session: after a reconnect that resumed it, the broker redelivers
        # unacknowledged messages under the same ids, so acks still due stay valid. A session the
        # broker lost makes every id meaningless: those acks must never be sent.
        with self._mids_lock:
            if not self.link.session_present:
                self._generation += 1
                self._pending_mids.clear()
        if self._retiring:
            # No new share of the group for this session; what it has queued still comes.
            _client.unsubscribe([f for f, _ in self._subscriptions])

    def _on_message(self, msg: paho.MQTTMessage) -> None:
        if self._closing:
            return
        self._last_message_at = time.monotonic()
        now = time.time()
        with self._mids_lock:
            if msg.qos > 0 and msg.mid in self._pending_mids:
                return  # a redelivery of a message we hold: its lines and its ack are already queued
            token: AckToken | None = (msg.mid, msg.qos, self._generation) if msg.qos > 0 else None
            if token is not None:
                self._pending_mids.add(msg.mid)
        payload = msg.payload
        seq = None
        try:
            lines, seq = self._converter.convert(msg.topic, payload, now)
        except Exception as exc:  # a bug must cost one message (dead-lettered), never the consumer
            log.exception("ingest: converting a message on %s failed", msg.topic)
            lines = self._converter.internal_error(msg.topic, payload, now, exc)
        self.pipeline.submit(lines, token, seq, self._converter.times)

    def _release(self, tokens: list[AckToken]) -> None:
        with self._mids_lock:
            generation = self._generation
            for mid, qos, gen in tokens:
                if gen == generation:
                    self._pending_mids.discard(mid)
                    self.link.ack(mid, qos)

    def _submit_line(self, point: str) -> None:
        # The service's own points take the readings' path: spooled during an outage, never blocking.
        self.pipeline.submit([point], None)

    def _gemeente_of(self, gateway: str) -> str | None:
        known = self._registry.get().gateways.get(gateway)
        return known.gemeente if known is not None else None

    # -- sequence audit ---------------------------------------------------------------------------
    def _audit_loop(self) -> None:
        while not self._stop.wait(self.config.audit_interval):
            self.audit_sequences()

    def audit_sequences(self) -> dict[str, sequence.SequenceCounts]:
        """Gaps and duplicates per gateway from what all workers stored; sets the gauges and writes the
        gateway_sequence points (time floored to the audit interval, so that the workers' audits, which
        count the same stored batches, write one point per gateway and interval)."""
        try:
            counts = sequence.audit(self._influx, self.config.audit_window)
        except InfluxError as exc:
            log.debug("sequence audit skipped: %s", exc)
            return {}
        for gateway, c in counts.items():
            self.metrics.gaps.labels(gateway).set(c.gaps)
            self.metrics.duplicates.labels(gateway).set(c.duplicates)
        if counts:
            step = self.config.audit_interval or 1.0
            time_us = int(time.time() // step * step * 1_000_000)
            self.pipeline.submit(sequence_lines(counts, self._registry.get(), time_us), None)
        return counts
