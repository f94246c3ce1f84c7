"""The ingest service: MQTT (shared subscription, QoS 1, manual acks) -> validation -> InfluxDB.

At-least-once: a message is acknowledged to the broker only after its points are in
InfluxDB, so a crash or an InfluxDB outage makes the broker redeliver rather than lose it;
InfluxDB overwrites an identical series+timestamp, which makes redelivery harmless.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, field

import paho.mqtt.client as paho
from paho.mqtt.reasoncodes import ReasonCode

from core import jsonfast, mqtt, topics
from core.commands import CommandError, parse_ack, parse_command
from core.influx import InfluxClient, InfluxError
from core.registry import WatchedRegistry
from core.senml import SenMLError, decode
from core.settings import MqttSettings
from core.topics import Channel, TopicError
from ingest.points import Rejects, ack_line, command_line, pack_lines, status_line
from ingest.sequence import SequenceTracker

log = logging.getLogger(__name__)


@dataclass(slots=True)
class IngestStats:
    """What the service has done since it started."""

    messages: int = 0
    lines_written: int = 0
    writes: int = 0
    write_failures: int = 0
    bad_messages: int = 0
    rejects: Rejects = field(default_factory=Rejects)


class IngestService:
    """One ingest worker; run several with the same share group to spread the load."""

    def __init__(self, mqtt_settings: MqttSettings, influx: InfluxClient, registry: WatchedRegistry, *,
                 client_id: str = "smartcity-ingest", share_group: str = "ingest",
                 flush_interval: float = 0.2, batch_lines: int = 10_000, max_pending_lines: int = 200_000):
        self._settings = mqtt_settings
        self._influx = influx
        self._registry = registry
        self._flush_interval = flush_interval
        self._batch_lines = batch_lines
        self._max_pending = max_pending_lines
        self._share_group = share_group
        self.stats = IngestStats()
        self.sequences = SequenceTracker()
        self._cond = threading.Condition()
        self._lines: list[str] = []
        self._acks: list[tuple[int, int]] = []
        self._stopping = threading.Event()
        self._flusher = threading.Thread(target=self._flush_loop, name="ingest-flush", daemon=True)
        self._client = mqtt.new_client(mqtt_settings, client_id, manual_ack=True)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self.connected = threading.Event()

    def start(self) -> None:
        """Connect and start consuming."""
        self._flusher.start()
        mqtt.connect(self._client, self._settings)
        self._client.loop_start()

    def stop(self) -> None:
        """Stop consuming, write what is buffered, then acknowledge it and disconnect."""
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        self._flusher.join(timeout=30)
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(self, client: paho.Client, _userdata: object, _flags: object, reason: ReasonCode,
                    _props: object) -> None:
        if reason.is_failure:
            log.error("MQTT connect refused: %s", reason)
            return
        group = self._share_group
        client.subscribe([
            (topics.subscription(Channel.READINGS, group), 1),
            # Status, commands and acks are few; every worker records them, and identical points
            # overwrite each other in InfluxDB.
            (topics.subscription(Channel.STATUS), 1),
            (topics.subscription(Channel.COMMANDS), 1),
            (topics.subscription(Channel.ACKS), 1),
        ])
        self.connected.set()
        log.info("ingest connected to %s:%d", self._settings.host, self._settings.port)

    def _on_message(self, client: paho.Client, _userdata: object, msg: paho.MQTTMessage) -> None:
        now = time.time()
        self.stats.messages += 1
        lines: list[str] = []
        try:
            parsed = topics.parse(msg.topic)
            if parsed.channel is Channel.READINGS:
                pack = decode(msg.payload, now)
                self.sequences.observe(parsed.gateway, pack.seq)
                lines = pack_lines(parsed.gateway, pack, self._registry.get(), self.stats.rejects)
            elif parsed.channel is Channel.STATUS:
                status = jsonfast.loads(msg.payload)
                state = status.get("state") if isinstance(status, dict) else None
                if not isinstance(state, str):
                    raise ValueError(f"status needs a string 'state': {status!r}")
                if state == "online":
                    self.sequences.restart(parsed.gateway)
                lines = [status_line(parsed.gateway, state, now)]
            elif parsed.channel is Channel.COMMANDS:
                lines = [command_line(parsed.gateway, parse_command(msg.payload))]
            else:
                lines = [ack_line(parsed.gateway, parse_ack(msg.payload), now)]
        except (TopicError, SenMLError, CommandError, ValueError) as exc:
            # A bad message is counted and acknowledged: redelivering it would not make it good.
            self.stats.bad_messages += 1
            self.stats.rejects.add("bad_message", f"{msg.topic}: {exc}")
            log.warning("rejected message on %s: %s", msg.topic, exc)
        with self._cond:
            # Backpressure: while InfluxDB is down, stop reading from the broker rather than grow
            # without bound; the broker keeps the messages (max_queued_messages 0).
            while len(self._lines) >= self._max_pending and not self._stopping.is_set():
                self._cond.wait(1.0)
            self._lines.extend(lines)
            self._acks.append((msg.mid, msg.qos))
            if len(self._lines) >= self._batch_lines:
                self._cond.notify_all()

    def _flush_loop(self) -> None:
        while True:
            with self._cond:
                if not self._stopping.is_set() and len(self._lines) < self._batch_lines:
                    self._cond.wait(self._flush_interval)
                lines, acks = self._lines, self._acks
                self._lines, self._acks = [], []
                self._cond.notify_all()
            if lines or acks:
                self._write_until_done(lines)
                for mid, qos in acks:
                    if qos > 0:
                        self._client.ack(mid, qos)
            if self._stopping.is_set():
                with self._cond:
                    if not self._lines and not self._acks:
                        return

    def _write_until_done(self, lines: list[str]) -> None:
        delay = 0.5
        for start in range(0, len(lines), self._batch_lines):
            chunk = lines[start:start + self._batch_lines]
            while True:
                try:
                    self._influx.write("\n".join(chunk), precision="ms")
                    self.stats.writes += 1
                    self.stats.lines_written += len(chunk)
                    break
                except InfluxError as exc:
                    self.stats.write_failures += 1
                    if not exc.retryable:
                        # InfluxDB rejected the data itself (e.g. a field type conflict); retrying
                        # cannot help. Count it and move on so one bad batch does not block all.
                        self.stats.rejects.add("influx_rejected", str(exc))
                        log.error("InfluxDB rejected %d lines: %s", len(chunk), exc)
                        break
                    if self._stopping.is_set():
                        log.error("InfluxDB unavailable at shutdown; %d lines stay unacknowledged "
                                  "and will be redelivered: %s", len(chunk), exc)
                        raise SystemExit(1) from exc
                    log.warning("InfluxDB write failed, retrying in %.1f s: %s", delay, exc)
                    time.sleep(delay * (0.5 + random.random()))
                    delay = min(delay * 2, 30.0)
