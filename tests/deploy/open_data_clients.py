"""Clients of the open-data broker, shared by the deploy and sta_mqtt tests."""

from __future__ import annotations

import contextlib
import dataclasses
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho

from core import mqtt
from deploy.mosquitto import STA_MQTT_USER, Broker, start_mosquitto
from deploy.mosquitto_open_data import start_open_data_broker
from deploy.processes import new_password
from tests.conftest import settings_for, wait_for


class OpenClient:
    """A client of the open-data broker (anonymous unless given a user name) and what it receives."""

    def __init__(self, broker: Broker, *subscriptions: str, username: str | None = None,
                 password: str | None = None, client_id: str | None = None) -> None:
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id or f"open-{new_password()[:8]}",
                                  protocol=paho.MQTTv5)
        if username is not None:
            self.client.username_pw_set(username, password)
        self.received: queue.Queue[paho.MQTTMessage] = queue.Queue()
        self.granted: list[int] = []
        self.acks: dict[int, paho.ReasonCode] = {}
        self.disconnected = threading.Event()
        subacks = threading.Semaphore(0)

        def on_subscribe(_c: Any, _u: Any, _mid: int, reasons: list[paho.ReasonCode], _p: Any) -> None:
            self.granted.extend(r.value for r in reasons)
            subacks.release()

        self.client.on_message = lambda _c, _u, m: self.received.put(m)
        self.client.on_subscribe = on_subscribe
        self.client.on_disconnect = lambda *_a: self.disconnected.set()
        self.client.on_publish = lambda _c, _u, mid, rc, _p: self.acks.__setitem__(mid, rc)
        assert broker.open_data_port is not None
        self.client.connect(broker.host, broker.open_data_port)
        self.client.loop_start()
        wait_for(self.client.is_connected, 5)
        for topic in subscriptions:
            self.client.subscribe(topic, qos=1)
            assert subacks.acquire(timeout=5), f"no SUBACK for {topic}"

    def topics(self, count: int) -> list[str]:
        """The topics of the next count messages, then checks that nothing else came meanwhile."""
        got = [self.received.get(timeout=5).topic for _ in range(count)]
        return got + [self.received.get_nowait().topic for _ in range(self.received.qsize())]

    def forge(self, topic: str) -> None:
        """Publish at QoS 0, then wait until the broker has handled it: it dropped the connection (the listener
        does that after refusing a publish) or answered a SUBSCRIBE sent after it (packets are handled in order)."""
        self.client.publish(topic, b'{"result": "forged"}', qos=0)
        answered = len(self.granted)
        self.client.subscribe("v1.1/settle", qos=0)
        wait_for(lambda: self.disconnected.is_set() or len(self.granted) > answered, 5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def wait_bridged(broker: Broker, timeout: float = 10.0) -> None:
    """Until the bridge forwards: publish probes as sta-mqtt until an anonymous client receives one."""
    probe = OpenClient(broker, "v1.1/probe")
    publisher = mqtt.new_client(settings_for(broker, STA_MQTT_USER), f"probe-{new_password()[:6]}")
    publisher.connect(broker.host, broker.port)
    publisher.loop_start()
    try:
        wait_for(publisher.is_connected, 5)

        def arrived() -> bool:
            publisher.publish("v1.1/probe", b"", qos=0)
            return not probe.received.empty()

        wait_for(arrived, timeout, interval=0.05)
        time.sleep(0.3)  # probes still on their way arrive now, not at a test's subscriber
    finally:
        probe.close()
        publisher.disconnect()
        publisher.loop_stop()


@contextlib.contextmanager
def platform_with_open_data(state_dir: Path, users: dict[str, str]) -> Iterator[Broker]:
    """The platform's broker (no anonymous listener) with open_data_port set to that of the bridged open-data
    broker (deploy/mosquitto_open_data.py), once the bridge forwards; both stopped afterwards."""
    platform = start_mosquitto(state_dir, users)
    opened = start_open_data_broker(state_dir, platform)
    try:
        joined = dataclasses.replace(platform, open_data_port=opened.port)
        wait_bridged(joined)
        yield joined
    finally:
        opened.stop()
        platform.stop()
