"""The SensorThings MQTT extension's open data on a real mosquitto 2.0: the bridged open-data broker.

Anonymous consumers use a broker of their own that a bridge feeds (deploy/mosquitto_open_data.py);
the platform's broker has no anonymous listener at all (mosquitto's client ids are broker-wide, so an
anonymous client there could take over a gateway's or a service's id: the last tests).

Anonymous clients on the open-data broker read the v1.1/ topics the sta-mqtt account writes, and
nothing else: they cannot read the platform's topics nor $SYS, cannot publish, cannot use the
platform's broker; a client that gives a user name there gets no grant. The sta-mqtt account writes
only v1.1/. A refused publish makes mosquitto 2.0 drop that connection, so each publish has its own.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest

from core import mqtt
from deploy.certificates import ensure_broker_certs
from deploy.mosquitto import STA_BRIDGE_USER, STA_MQTT_USER, Broker, start_mosquitto
from deploy.processes import new_password
from tests.conftest import settings_for, wait_for
from tests.deploy.open_data_clients import OpenClient, platform_with_open_data
from tests.deploy.test_mosquitto_acl import Subscriber, may_publish

pytestmark = pytest.mark.integration

GATEWAY = "gw-vs-01"
READINGS = f"smartcity/v1/gw/{GATEWAY}/readings"
STREAM = "v1.1/Datastreams('vs-sl-101.power')/Observations"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """The platform's broker, its open_data_port that of the bridged open-data broker."""
    users = {u: new_password() for u in (GATEWAY, "operator", STA_MQTT_USER, STA_BRIDGE_USER)}
    with platform_with_open_data(tmp_path / "broker", users) as b:
        yield b


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Broker]:
    """The platform's broker with both its listeners, plain and TLS."""
    users = {u: new_password() for u in (GATEWAY, "operator")}
    b = start_mosquitto(tmp_path / "platform", users, tls=ensure_broker_certs(tmp_path / "tls"))
    yield b
    b.stop()


@pytest.fixture
def clients() -> Iterator[list[OpenClient | Subscriber]]:
    made: list[OpenClient | Subscriber] = []
    yield made
    for c in made:
        c.close()


def test_an_anonymous_consumer_reads_what_sta_mqtt_publishes(broker: Broker, clients: list[Any]) -> None:
    consumer = OpenClient(broker, STREAM, "v1.1/Observations")
    clients.append(consumer)
    assert consumer.granted == [0, 0]  # max_qos 0: granted QoS 0 whatever is asked
    assert may_publish(broker, STA_MQTT_USER, STREAM)
    assert may_publish(broker, STA_MQTT_USER, "v1.1/Observations")
    assert sorted(consumer.topics(2)) == sorted([STREAM, "v1.1/Observations"])


def test_an_anonymous_consumer_reads_nothing_outside_v1_1(broker: Broker, clients: list[Any]) -> None:
    operator = Subscriber(broker, "operator", "smartcity/#")
    snoop = OpenClient(broker, "smartcity/#", "$SYS/#", "#")  # "#" also matches v1.1/: the marker
    clients.extend([operator, snoop])
    assert may_publish(broker, GATEWAY, READINGS)
    assert operator.topics(1) == [READINGS]  # the control: the reading was there to be read
    assert may_publish(broker, STA_MQTT_USER, STREAM)  # the last message: everything before it was delivered
    assert snoop.topics(1) == [STREAM]


def test_an_anonymous_client_cannot_publish_anything(broker: Broker, clients: list[Any]) -> None:
    operator = Subscriber(broker, "operator", "smartcity/#")
    consumer = OpenClient(broker, "v1.1/#")
    clients.extend([operator, consumer])
    for topic in (STREAM, "v1.1/Observations", READINGS, f"smartcity/v1/gw/{GATEWAY}/commands"):
        forger = OpenClient(broker)
        clients.append(forger)
        forger.forge(topic)
    assert may_publish(broker, GATEWAY, READINGS)
    assert may_publish(broker, STA_MQTT_USER, STREAM)
    assert operator.topics(1) == [READINGS]
    assert consumer.topics(1) == [STREAM]


def test_a_user_name_on_the_open_listener_grants_nothing(broker: Broker, clients: list[Any]) -> None:
    # The listener has no password file, so mosquitto takes any user name, and its ACL has no user blocks.
    consumer = OpenClient(broker, "v1.1/#")
    named = OpenClient(broker, "v1.1/#", "smartcity/#", username=STA_MQTT_USER, password="wrong")
    clients.extend([consumer, named])
    impostor = OpenClient(broker, username=STA_MQTT_USER, password="wrong")
    clients.append(impostor)
    impostor.forge(STREAM)
    assert may_publish(broker, GATEWAY, READINGS)
    assert may_publish(broker, STA_MQTT_USER, STREAM)
    assert consumer.topics(1) == [STREAM]
    assert named.received.empty()


def anonymous_answer(broker: Broker, port: int, client_id: str, tls: bool) -> paho.ReasonCode:
    """The CONNACK reason the platform's broker gives an anonymous client on port (over TLS if tls)."""
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
    if tls:
        assert broker.tls_ca is not None
        client.tls_set(ca_certs=str(broker.tls_ca), tls_version=ssl.PROTOCOL_TLS_CLIENT)
    answers: list[paho.ReasonCode] = []
    client.on_connect = lambda _c, _u, _f, rc, _p: answers.append(rc)
    client.connect(broker.host, port)
    client.loop_start()
    try:
        wait_for(lambda: answers, 5)
        return answers[0]
    finally:
        client.disconnect()
        client.loop_stop()


def test_anonymous_clients_cannot_use_the_platforms_broker(broker: Broker) -> None:
    answer = anonymous_answer(broker, broker.port, "anon-main", tls=False)
    assert answer.is_failure and str(answer) == "Not authorized"


def test_the_platform_broker_refuses_anonymous_clients_on_every_listener(platform: Broker) -> None:
    # What the anonymous open-data listener allowed on this broker (a strict xfail pinned it): a client
    # that took a platform client's id disconnected it. Refused at login, it takes nothing over.
    assert platform.tls_port is not None
    victim = mqtt.new_client(settings_for(platform, "operator"), "smartcity-ingest-w1")
    dropped = threading.Event()
    victim.on_disconnect = lambda *_a: dropped.set()
    victim.connect(platform.host, platform.port)
    victim.loop_start()
    try:
        wait_for(victim.is_connected, 5)
        for port, tls in ((platform.port, False), (platform.tls_port, True)):
            answer = anonymous_answer(platform, port, "smartcity-ingest-w1", tls)
            assert answer.is_failure and str(answer) == "Not authorized", (port, answer)
        assert not dropped.wait(0.5)
        assert victim.is_connected()
    finally:
        victim.disconnect()
        victim.loop_stop()


def test_sta_mqtt_writes_only_the_sensorthings_topics(broker: Broker, clients: list[Any]) -> None:
    operator = Subscriber(broker, "operator", "smartcity/#")
    clients.append(operator)
    assert not may_publish(broker, STA_MQTT_USER, READINGS)
    assert not may_publish(broker, STA_MQTT_USER, f"smartcity/v1/gw/{GATEWAY}/commands")
    assert not may_publish(broker, STA_MQTT_USER, "v1.0/Observations")
    assert not may_publish(broker, GATEWAY, STREAM)
    assert not may_publish(broker, "operator", STREAM)  # only the publisher speaks on v1.1/
    assert not may_publish(broker, STA_BRIDGE_USER, STREAM)  # the bridge only reads
    assert may_publish(broker, "operator", f"smartcity/v1/gw/{GATEWAY}/commands")
    assert operator.topics(1) == [f"smartcity/v1/gw/{GATEWAY}/commands"]


def test_an_anonymous_client_cannot_take_over_a_platform_clients_id(broker: Broker) -> None:
    # On the open-data broker the id is the anonymous client's own: the platform's client is elsewhere.
    victim = mqtt.new_client(settings_for(broker, "operator"), "smartcity-ingest-w1")
    dropped = threading.Event()
    victim.on_disconnect = lambda *_a: dropped.set()
    victim.connect(broker.host, broker.port)
    victim.loop_start()
    thief = None
    try:
        wait_for(victim.is_connected, 5)
        thief = OpenClient(broker, client_id="smartcity-ingest-w1")
        assert not dropped.wait(1.0)
    finally:
        if thief is not None:
            thief.close()
        victim.disconnect()
        victim.loop_stop()
