"""The broker's ACL policy on a real mosquitto: the network server's two accounts get their topics and nothing else.

Each publish is checked by the PUBACK reason code mosquitto gives an MQTT 5 client ("Not authorized"
for a topic the account may not write), and reading by what a subscriber actually receives.
mosquitto 2.0 drops the connection of a client after refusing its publish, so every publish here
comes from a connection of its own, and the subscribers never publish. Every test runs twice: on a
broker with its one plain listener, and over the TLS listener of a broker that has both (each
listener has its own copy of the security settings: the same ACL must hold on it).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest

from core import mqtt
from core.settings import MqttSettings
from deploy.certificates import ensure_broker_certs
from deploy.mosquitto import NETWORK_SERVER_USER, NS_BRIDGE_USER, Broker, start_mosquitto
from deploy.processes import new_password
from tests.conftest import settings_for, wait_for

pytestmark = pytest.mark.integration

GATEWAY = "gw-vs-01"
CS_UP = "application/smartcity-gw-vs-01/device/70b3d57ed00626c4/event/up"
CS_DOWN = "application/smartcity-gw-vs-01/device/70b3d57ed00626c4/command/down"
TTS_UP = "v3/smartcity-gw-vs-01@gemeente/devices/eui-70b3d57ed00626c4/up"
TTS_DOWN = "v3/smartcity-gw-vs-01@gemeente/devices/eui-70b3d57ed00626c4/down/replace"
PLATFORM = [f"smartcity/v1/gw/{GATEWAY}/{channel}" for channel in ("readings", "status", "acks", "commands")]


def account(broker: Broker, user: str) -> MqttSettings:
    """user's settings: over TLS (trusting the broker's CA) when the broker has a TLS listener, else plain."""
    if broker.tls_port is None:
        return settings_for(broker, user)
    return MqttSettings(broker.host, broker.tls_port, user, broker.users[user], str(broker.tls_ca))


class Subscriber:
    """A connected client of one account that collects the topics of what it receives."""

    def __init__(self, broker: Broker, user: str, *subscriptions: str) -> None:
        settings = account(broker, user)
        self.client = mqtt.new_client(settings, f"acl-sub-{user}-{new_password()[:6]}")
        self.received: queue.Queue[str] = queue.Queue()
        subacks = threading.Semaphore(0)
        self.client.on_message = lambda _c, _u, m: self.received.put(m.topic)
        self.client.on_subscribe = lambda *_args: subacks.release()
        self.client.connect(settings.host, settings.port)
        self.client.loop_start()
        wait_for(self.client.is_connected, 5)
        for topic in subscriptions:
            self.client.subscribe(topic, qos=1)
            assert subacks.acquire(timeout=5), f"no SUBACK for {topic}"

    def topics(self, count: int) -> list[str]:
        """The topics of the next count messages, then checks that nothing else came meanwhile."""
        got = [self.received.get(timeout=5) for _ in range(count)]
        return got + [self.received.get_nowait() for _ in range(self.received.qsize())]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def may_publish(broker: Broker, user: str, topic: str) -> bool:
    """Publish at QoS 1 as user on a fresh connection; True if the broker accepted it, False if it refused it."""
    settings = account(broker, user)
    client = mqtt.new_client(settings, f"acl-pub-{user}-{new_password()[:6]}")
    acks: dict[int, paho.ReasonCode] = {}

    def on_publish(_c: Any, _u: Any, mid: int, reason: paho.ReasonCode, _p: Any) -> None:
        acks[mid] = reason

    client.on_publish = on_publish
    client.connect(settings.host, settings.port)
    client.loop_start()
    try:
        wait_for(client.is_connected, 5)
        info = client.publish(topic, b"{}", qos=1)
        wait_for(lambda: info.mid in acks, 5)
        return not acks[info.mid].is_failure
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.fixture(params=[False, True], ids=["plain-listener", "tls-listener"])
def broker(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Broker]:
    users = {u: new_password() for u in (GATEWAY, "operator", NETWORK_SERVER_USER, NS_BRIDGE_USER)}
    certs = ensure_broker_certs(tmp_path / "tls") if request.param else None
    b = start_mosquitto(tmp_path / "broker", users, tls=certs)
    yield b
    b.stop()


@pytest.fixture
def subscribers() -> Iterator[list[Subscriber]]:
    made: list[Subscriber] = []
    yield made
    for s in made:
        s.close()


def test_the_server_publishes_uplinks_the_bridge_reads_them_and_sends_downlinks(
        broker: Broker, subscribers: list[Subscriber]) -> None:
    server = Subscriber(broker, NETWORK_SERVER_USER, "application/+/device/+/command/down",
                        "v3/+/devices/+/down/replace")
    # What edge/ns_bridge.py subscribes to, for one application of each flavour.
    bridge = Subscriber(broker, NS_BRIDGE_USER, "application/smartcity-gw-vs-01/device/+/event/up",
                        "v3/smartcity-gw-vs-01@gemeente/devices/+/up")
    subscribers.extend([server, bridge])
    assert may_publish(broker, NETWORK_SERVER_USER, CS_UP) and may_publish(broker, NETWORK_SERVER_USER, TTS_UP)
    assert may_publish(broker, NS_BRIDGE_USER, CS_DOWN) and may_publish(broker, NS_BRIDGE_USER, TTS_DOWN)
    assert sorted(bridge.topics(2)) == sorted([CS_UP, TTS_UP])
    assert sorted(server.topics(2)) == sorted([CS_DOWN, TTS_DOWN])


def test_the_bridge_cannot_forge_uplinks_nor_speak_for_a_gateway(broker: Broker,
                                                                 subscribers: list[Subscriber]) -> None:
    operator = Subscriber(broker, "operator", "smartcity/#")
    server = Subscriber(broker, NETWORK_SERVER_USER, "application/#", "v3/#")
    subscribers.extend([operator, server])
    # An uplink the bridge wrote itself would bypass the server's MIC check.
    assert not may_publish(broker, NS_BRIDGE_USER, CS_UP)
    assert not may_publish(broker, NS_BRIDGE_USER, TTS_UP)
    for topic in PLATFORM:
        assert not may_publish(broker, NS_BRIDGE_USER, topic), topic
    # The controls: the gateway's own account may write its readings, the bridge its downlinks.
    assert may_publish(broker, GATEWAY, PLATFORM[0])
    assert may_publish(broker, NS_BRIDGE_USER, CS_DOWN)
    assert operator.topics(1) == [PLATFORM[0]]
    assert server.topics(1) == [CS_DOWN]


def test_the_server_cannot_write_the_platforms_topics_nor_a_gateway_the_servers(
        broker: Broker, subscribers: list[Subscriber]) -> None:
    operator = Subscriber(broker, "operator", "smartcity/#")
    server = Subscriber(broker, NETWORK_SERVER_USER, "application/#")
    # A gateway's platform account has no business on the server's topics (the bridge has ns-bridge).
    gateway = Subscriber(broker, GATEWAY, PLATFORM[3], "application/#")
    subscribers.extend([operator, server, gateway])
    for topic in PLATFORM:
        assert not may_publish(broker, NETWORK_SERVER_USER, topic), topic
    assert not may_publish(broker, GATEWAY, CS_DOWN)
    assert not may_publish(broker, GATEWAY, CS_UP)
    assert may_publish(broker, NETWORK_SERVER_USER, CS_UP)
    assert may_publish(broker, "operator", PLATFORM[3])  # a command, as the operator may send
    assert server.topics(1) == [CS_UP]
    assert operator.topics(1) == [PLATFORM[3]]
    assert gateway.topics(1) == [PLATFORM[3]]  # its commands, but not the server's uplink
