"""The gateway's MQTT link: birth and last will, SenML batches at QoS 1, commands in, acks out."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import paho.mqtt.client as paho

from core import jsonfast, senml, topics
from core.commands import Ack, Command, CommandError, parse_command
from core.mqtt_service import MqttLink, Will
from core.settings import MqttSettings
from core.topics import Channel
from edge.reading_buffer import ReadingBuffer

log = logging.getLogger(__name__)

AGENT_VERSION = "smartcity-edge/0.1.0"


class Uplink:
    """Publishes buffered readings every flush_interval; hands validated commands to on_command."""

    def __init__(self, gateway: str, settings: MqttSettings, buffer: ReadingBuffer,
                 on_command: Callable[[Command], None], *, flush_interval: float = 1.0,
                 batch_size: int = 500) -> None:
        self.gateway = gateway
        self._settings = settings
        self._buffer = buffer
        self._on_command = on_command
        self._flush_interval = flush_interval
        self._batch_size = batch_size
        self.seq = 0
        self.batches_sent = 0
        self.readings_sent = 0
        self.bad_commands = 0
        self._last_publish: paho.MQTTMessageInfo | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._publish_loop, name=f"uplink-{gateway}", daemon=True)
        self.link = MqttLink(
            f"gateway {gateway}", settings, f"smartcity-edge-{gateway}",
            subscriptions=[(topics.topic(gateway, Channel.COMMANDS), 1)], on_message=self._on_message,
            on_connect=self._announce,
            will=Will(topics.topic(gateway, Channel.STATUS), jsonfast.dumps({"state": "offline"})),
        )
        self._client = self.link.client

    @property
    def connected(self) -> threading.Event:
        """Set while connected to the broker (readings are buffered while it is not)."""
        return self.link.connected

    def start(self) -> None:
        """Connect (retrying in the background) and start publishing."""
        self.link.start()
        self._thread.start()

    def stop(self) -> None:
        """Send what is buffered if connected, announce going offline, disconnect."""
        self._stop.set()
        self._thread.join(timeout=10)
        if self._last_publish is not None and self.connected.is_set():
            # QoS 1 handshake of the final batch, so a clean stop loses nothing to the disconnect.
            self._last_publish.wait_for_publish(timeout=5)
        if self.connected.is_set():
            info = self._client.publish(topics.topic(self.gateway, Channel.STATUS),
                                        jsonfast.dumps({"state": "offline"}), qos=1, retain=True)
            info.wait_for_publish(timeout=5)
        self.link.stop()

    def send_ack(self, ack: Ack) -> None:
        """Publish a command acknowledgement (queued by paho if the link is down)."""
        self._client.publish(topics.topic(self.gateway, Channel.ACKS), ack.to_json(), qos=1)

    def _announce(self, client: paho.Client) -> None:
        birth = {"state": "online", "agent": AGENT_VERSION, "since": time.time(), "seq": self.seq}
        client.publish(topics.topic(self.gateway, Channel.STATUS), jsonfast.dumps(birth), qos=1, retain=True)

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
            self.flush()
        self.flush()

    def flush(self) -> None:
        """Publish everything buffered, in batches, while connected."""
        while self.connected.is_set() and len(self._buffer):
            batch = self._buffer.take(self._batch_size)
            info = self._client.publish(topics.topic(self.gateway, Channel.READINGS),
                                        senml.encode(batch, self.seq), qos=1)
            if info.rc != paho.MQTT_ERR_SUCCESS:
                self._buffer.put_back(batch)
                return
            self._last_publish = info
            self.seq += 1
            self.batches_sent += 1
            self.readings_sent += len(batch)
