"""The gateway's MQTT link: birth and last will, SenML batches from the durable queue at QoS 1,
commands in, acks out, and the status with the health counters every ``status_interval``.

Every flush seals the readings the queue holds into numbered batches and hands each batch to paho
once. A batch leaves the queue only when its PUBACK arrives; after a reconnect paho itself sends
again what it had not had acknowledged, and after a restart of the agent every batch still in the
queue is sent again. So a batch is sent twice only on an honest redelivery, when a PUBACK was lost.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import deque
from collections.abc import Callable

import paho.mqtt.client as paho

from core import jsonfast, topics
from core.commands import Ack, Command, CommandError, parse_command
from core.log_limit import LogLimiter
from core.mqtt_service import MqttLink, Will
from core.settings import MqttSettings
from core.topics import Channel
from edge.durable_queue import DurableQueue

log = logging.getLogger(__name__)

AGENT_VERSION = "smartcity-edge/0.2.0"


class Uplink:
    """Publishes the queue's batches every flush_interval; hands validated commands to on_command."""

    def __init__(self, gateway: str, settings: MqttSettings, queue: DurableQueue,
                 on_command: Callable[[Command], None], *, flush_interval: float = 1.0,
                 batch_size: int = 500, max_inflight: int = 50, status_interval: float = 60.0,
                 health: Callable[[], dict[str, float]] | None = None) -> None:
        self.gateway = gateway
        self._queue = queue
        self._on_command = on_command
        self._flush_interval = flush_interval
        self._batch_size = batch_size
        self._max_inflight = max_inflight
        self._status_interval = status_interval
        self._health = health
        self._since = time.time()  # of the last birth
        self._next_status = time.monotonic() + status_interval
        self.status_reports = 0
        self._ack_lock = threading.Lock()
        self._last_ack_at = 0.0
        self.flush_errors = 0
        self._flush_error_log = LogLimiter(60.0)
        self.batches_sent = 0  # acknowledged by the broker
        self.readings_sent = 0
        self.bad_commands = 0
        self._inflight: dict[int, int] = {}  # paho mid -> seq; only the flush thread touches it
        self._acked_mids: deque[tuple[int, bool]] = deque()  # (mid, refused) from paho's thread
        self.refused_batches = 0
        self._handed_up_to = -1  # highest seq given to paho by this process
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._publish_loop, name=f"uplink-{gateway}", daemon=True)
        self.link = MqttLink(
            f"gateway {gateway}", settings, f"smartcity-edge-{gateway}",
            subscriptions=[(topics.topic(gateway, Channel.COMMANDS), 1)], on_message=self._on_message,
            on_connect=self._announce, on_publish=lambda mid, refused: self._acked_mids.append((mid, refused)),
            will=Will(topics.topic(gateway, Channel.STATUS), jsonfast.dumps({"state": "offline"})),
        )
        self._client = self.link.client

    @property
    def connected(self) -> threading.Event:
        """Set while connected to the broker (readings wait in the queue while it is not)."""
        return self.link.connected

    @property
    def seq(self) -> int:
        """The seq of the next batch (persisted in the queue, so it carries on after a restart)."""
        return self._queue.next_seq

    def start(self) -> None:
        """Connect (retrying in the background) and start publishing."""
        self.link.start()
        self._thread.start()

    def stop(self, drain_seconds: float = 5.0) -> None:
        """While connected, send what is queued (for up to drain_seconds), announce offline, disconnect.

        What is not acknowledged by then stays in the queue on disk and goes at the next start.
        """
        self._stop.set()
        self._thread.join(timeout=10)
        deadline = time.monotonic() + drain_seconds
        while (len(self._queue) or self._inflight) and self.connected.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)
            self._guarded(self.flush)
        if self.connected.is_set():
            info = self._client.publish(topics.topic(self.gateway, Channel.STATUS),
                                        jsonfast.dumps({"state": "offline"}), qos=1, retain=True)
            info.wait_for_publish(timeout=5)
        self.link.stop()

    def send_ack(self, ack: Ack) -> None:
        """Publish a command acknowledgement (queued by paho if the link is down), stamped with its time.

        The times of one agent's acks strictly increase (by at least a microsecond): the ingest stores each
        ack at its own time, and two acks of one device and status at the same time would be one point.
        """
        if ack.at is None:
            with self._ack_lock:
                self._last_ack_at = max(round(time.time(), 6), round(self._last_ack_at + 1e-6, 6))
                ack = dataclasses.replace(ack, at=self._last_ack_at)
        self._client.publish(topics.topic(self.gateway, Channel.ACKS), ack.to_json(), qos=1)

    def status(self) -> dict[str, object]:
        """The status message: online since the last birth, the next seq, and the health counters now."""
        message: dict[str, object] = {"state": "online", "agent": AGENT_VERSION, "since": self._since,
                                      "seq": self.seq, "at": round(time.time(), 3)}
        if self._health is not None:
            message["health"] = self._health()
        return message

    def _announce(self, client: paho.Client) -> None:
        self._since = time.time()
        client.publish(topics.topic(self.gateway, Channel.STATUS), jsonfast.dumps(self.status()), qos=1, retain=True)

    def _report_status(self) -> None:
        # Retained, so a dashboard or an operator subscribing later sees the latest counters at once.
        if time.monotonic() < self._next_status or not self.connected.is_set():
            return
        self._next_status = time.monotonic() + self._status_interval
        try:
            message = jsonfast.dumps(self.status())
        except Exception:  # a counter source that fails must not stop the readings
            log.exception("gateway %s: health report failed", self.gateway)
            return
        self._client.publish(topics.topic(self.gateway, Channel.STATUS), message, qos=1, retain=True)
        self.status_reports += 1

    def _on_message(self, msg: paho.MQTTMessage) -> None:
        try:
            command = parse_command(msg.payload)
        except CommandError as exc:
            self.bad_commands += 1
            log.warning("gateway %s: rejected command on %s: %s", self.gateway, msg.topic, exc)
            return
        self._on_command(command)

    def _publish_loop(self) -> None:
        while not self._stop.wait(self._flush_interval):
            self._guarded(self.flush)
            self._guarded(self._report_status)
        self._guarded(self.flush)

    def _guarded(self, step: Callable[[], None]) -> None:
        # The queue failing (a full disk: SQLite refuses to seal) must not end the only thread that
        # publishes: it tries again next round, and sends what is queued once there is space again.
        try:
            step()
        except Exception:
            self.flush_errors += 1
            if self._flush_error_log.allow():
                log.exception("gateway %s: publishing round failed (%d so far); trying again", self.gateway,
                              self.flush_errors)

    def flush(self) -> None:
        """Forget acknowledged batches, seal what is pending, hand new batches to paho while connected."""
        with self._flush_lock:
            self._collect_acks()
            self._queue.expire()
            while self._queue.seal(self._batch_size) is not None:
                pass
            while self.connected.is_set() and len(self._inflight) < self._max_inflight:
                batches = self._queue.sealed(after=self._handed_up_to, limit=self._max_inflight - len(self._inflight))
                if not batches:
                    return
                for batch in batches:
                    info = self._client.publish(topics.topic(self.gateway, Channel.READINGS), batch.payload, qos=1)
                    if info.rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN):
                        # Not queued by paho: it stays in our queue and goes with a later flush.
                        log.warning("gateway %s: batch %d not accepted by paho: %s", self.gateway, batch.seq,
                                    paho.error_string(info.rc))
                        return
                    # NO_CONN at QoS 1 means paho queued it and sends it on reconnect: it is in flight.
                    self._inflight[info.mid] = batch.seq
                    self._handed_up_to = batch.seq

    def _collect_acks(self) -> None:
        seqs = []
        while self._acked_mids:
            mid, refused = self._acked_mids.popleft()
            seq = self._inflight.pop(mid, None)
            if seq is None:
                continue
            if refused:
                # The broker answered with a failure (e.g. its ACL refuses our topic): not delivered. The
                # batch stays in the queue and goes again at the next start; the count makes it visible.
                self.refused_batches += 1
                log.error("gateway %s: the broker refused batch %d (check this gateway's account and ACL)",
                          self.gateway, seq)
                continue
            seqs.append(seq)
        if seqs:
            self.readings_sent += self._queue.acknowledged(seqs)
            self.batches_sent += len(seqs)
