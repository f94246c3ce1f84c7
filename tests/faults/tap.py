"""A listener on the broker that records every reading the agents published, per gateway and device.

An independent view beside the agents' counters: when stored < accepted it says on which side the
readings went (never published by the agent, or published and not stored). It subscribes at QoS 1
with a persistent session, so a broker restart loses it at most what the broker itself loses.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

import paho.mqtt.client as paho

from core import mqtt, senml, topics
from core.settings import MqttSettings
from deploy.processes import new_password


class Tap:
    """Every (device, metric, time in µs) published on the readings topics, and each batch's seq."""

    def __init__(self, settings: MqttSettings) -> None:
        self.readings: dict[str, dict[str, set[tuple[str, int]]]] = defaultdict(lambda: defaultdict(set))
        self.records: dict[str, int] = defaultdict(int)  # records received, redeliveries included
        self.seqs: dict[str, list[int]] = defaultdict(list)
        self._lock = threading.Lock()
        self._client = mqtt.new_client(settings, f"faults-tap-{new_password()[:8]}")
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        mqtt.connect(self._client, settings, persistent=True)
        self._client.loop_start()

    def _on_connect(self, client: paho.Client, _u: Any, _f: Any, _rc: Any, _p: Any = None) -> None:
        client.subscribe(topics.subscription(topics.Channel.READINGS), qos=1)

    def _on_message(self, _c: paho.Client, _u: Any, msg: paho.MQTTMessage) -> None:
        gateway = msg.topic.split("/")[-2]
        pack = senml.decode(msg.payload)
        with self._lock:
            if pack.seq is not None:
                self.seqs[gateway].append(pack.seq)
            for r in pack.readings:
                self.records[gateway] += 1
                self.readings[gateway][r.device].add((r.metric, round(r.time * 1e6)))

    def per_device(self) -> dict[str, dict[str, int]]:
        """Distinct readings published, per gateway and device."""
        with self._lock:
            return {gw: {d: len(s) for d, s in devices.items()} for gw, devices in self.readings.items()}

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
