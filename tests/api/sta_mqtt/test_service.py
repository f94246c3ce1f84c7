"""The publisher end to end on a real mosquitto: a gateway's reading in, its Observation out to anonymous consumers.

The publisher is the real service (api/sta_mqtt/service.py) logged in as sta-mqtt; the gateway is
an edge-like client on its own account publishing SenML packs at QoS 1 to its readings topic; the
consumers are anonymous clients on the open-data listener.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import paho.mqtt.client as paho
import pytest

from api.sta.model import observation_json
from api.sta_mqtt.service import StaMqttConfig, StaMqttService
from api.sta_mqtt.streams import NOT_PUBLIC
from core import jsonfast, mqtt
from core.registry import WatchedRegistry
from core.senml import Reading, encode
from deploy.mosquitto import STA_MQTT_USER, Broker
from deploy.processes import new_password
from ingest.points import micros
from tests.api.sta_mqtt.conftest import CLASSIFIED, account
from tests.conftest import wait_for

pytestmark = pytest.mark.integration

BASE = "https://data.example.nl/v1.1"
Anonymous = Callable[..., tuple[paho.Client, list[paho.MQTTMessage]]]


@pytest.fixture
def service(sta_broker: Broker, registry_file: Any) -> Iterator[StaMqttService]:
    svc = StaMqttService(account(sta_broker, STA_MQTT_USER), WatchedRegistry(registry_file),
                         StaMqttConfig(base_url=BASE), client_id=f"sta-mqtt-{new_password()[:6]}")
    svc.start()
    wait_for(svc.link.subscribed.is_set, 5)
    yield svc
    svc.stop()


@pytest.fixture
def gateway(sta_broker: Broker) -> Iterator[Callable[[str, bytes], None]]:
    """An edge-like publisher: send(gateway, payload) on that gateway's own account, QoS 1, waited for."""
    clients: dict[str, paho.Client] = {}

    def send(gw: str, payload: bytes) -> None:
        client = clients.get(gw)
        if client is None:
            client = clients[gw] = mqtt.new_client(account(sta_broker, gw), f"edge-{gw}-{new_password()[:6]}")
            client.connect(sta_broker.host, sta_broker.port)
            client.loop_start()
            wait_for(client.is_connected, 5)
        client.publish(f"smartcity/v1/gw/{gw}/readings", payload, qos=1).wait_for_publish(5)

    yield send
    for c in clients.values():
        c.disconnect()
        c.loop_stop()


def marker(send: Callable[[str, bytes], None], anonymous_got: list[paho.MQTTMessage], value: float,
           copies: int = 2) -> None:
    """Send a public reading and wait until its copies arrive (on v1.1/#: its Datastream's and the collection's
    topic): everything sent before it has been handled."""
    send("gw-vs-01", encode([Reading("vs-sl-101", "voltage", value, time.time(), "V")], 1))
    wait_for(lambda: sum(jsonfast.loads(m.payload)["result"] == value for m in anonymous_got) == copies, 5)


def test_an_anonymous_consumer_gets_the_observation_json_of_a_gateways_reading(
        service: StaMqttService, gateway: Callable[[str, bytes], None], anonymous: Anonymous) -> None:
    _c, on_stream = anonymous("v1.1/Datastreams('vs-sl-101.power')/Observations")
    _c2, on_collection = anonymous("v1.1/Observations")
    t = round(time.time(), 3)
    gateway("gw-vs-01", encode([Reading("vs-sl-101", "power", 42.5, t, "W"),
                                Reading("vs-sl-101", "lamp_failure", True, t)], 7))
    wait_for(lambda: len(on_stream) == 1 and len(on_collection) == 2, 5)
    expected = observation_json(BASE, "vs-sl-101.power", micros(t), 42.5)
    assert jsonfast.loads(on_stream[0].payload) == expected
    assert expected["@iot.selfLink"] == f"{BASE}/Observations('vs-sl-101.power.{micros(t)}')"
    assert {m.payload for m in on_collection} == {
        on_stream[0].payload, jsonfast.dumps(observation_json(BASE, "vs-sl-101.lamp_failure", micros(t), True))}
    assert on_stream[0].qos == 0 and not on_stream[0].retain
    assert service.metrics.counts.observations == 2


def test_a_classified_devices_readings_are_never_published(
        service: StaMqttService, gateway: Callable[[str, bytes], None], anonymous: Anonymous) -> None:
    _c, everything = anonymous("v1.1/#")
    t = time.time()
    gateway("gw-vs-01", encode([Reading(CLASSIFIED, m, v, t, u) for m, v, u in
                                (("power", 11.0, "W"), ("dim_level", 50.0, "%"), ("lamp_failure", False, None))], 2))
    marker(gateway, everything, 231.5)
    assert [m.topic for m in everything] == ["v1.1/Datastreams('vs-sl-101.voltage')/Observations",
                                             "v1.1/Observations"]
    assert not any(CLASSIFIED.encode() in m.payload for m in everything)
    assert service.metrics.counts.rejected == {NOT_PUBLIC: 3}


def test_a_reading_from_the_wrong_gateway_is_not_published(
        service: StaMqttService, gateway: Callable[[str, bytes], None], anonymous: Anonymous) -> None:
    _c, everything = anonymous("v1.1/#")
    # gw-ws-01 speaks for a device the registry assigns to gw-vs-01.
    gateway("gw-ws-01", encode([Reading("vs-sl-101", "power", 66.0, time.time(), "W")], 3))
    marker(gateway, everything, 229.0)
    assert [jsonfast.loads(m.payload)["result"] for m in everything] == [229.0, 229.0]
    assert service.metrics.counts.rejected == {"wrong_gateway": 1}


def test_malformed_packs_are_counted_not_raised(
        service: StaMqttService, gateway: Callable[[str, bytes], None], anonymous: Anonymous) -> None:
    _c, everything = anonymous("v1.1/#")
    for bad in (b"not json", b"[]", b'{"bn": "x"}', b"\xff\xfe", b"[[[["):
        gateway("gw-vs-01", bad)
    gateway("gw-vs-01", jsonfast.dumps([{"bn": "vs-sl-101/", "n": "power", "v": "high"},
                                        {"n": "power", "v": 5.0, "u": "W", "t": 0}]))
    marker(gateway, everything, 230.0)
    counts = service.metrics.counts
    assert counts.bad_messages == 5
    assert counts.rejected == {"bad_record": 1}
    assert service.link.stats.callback_errors == 0
    # The good record of the pack with a bad one still went out.
    assert sorted(jsonfast.loads(m.payload)["result"] for m in everything) == [5.0, 5.0, 230.0, 230.0]


def test_a_device_classified_while_running_is_published_no_more(
        sta_broker: Broker, registry_file: Any, gateway: Callable[[str, bytes], None], anonymous: Anonymous) -> None:
    svc = StaMqttService(account(sta_broker, STA_MQTT_USER), WatchedRegistry(registry_file, check_interval=0.0),
                         StaMqttConfig(base_url=BASE, collection_topic=False), client_id="sta-mqtt-reload")
    svc.start()
    try:
        wait_for(svc.link.subscribed.is_set, 5)
        _c, everything = anonymous("v1.1/#")
        gateway("gw-vs-01", encode([Reading("vs-sl-103", "power", 1.0, time.time(), "W")], 1))
        wait_for(lambda: len(everything) == 1, 5)
        data = jsonfast.loads(registry_file.read_bytes())
        for f in data["features"]:
            if f["properties"]["id"] == "vs-sl-103":
                f["properties"]["classification"] = "bedrijfsvertrouwelijk"
        registry_file.write_bytes(jsonfast.dumps(data))
        gateway("gw-vs-01", encode([Reading("vs-sl-103", "power", 2.0, time.time(), "W")], 2))
        marker(gateway, everything, 232.0, copies=1)
        assert [jsonfast.loads(m.payload)["result"] for m in everything] == [1.0, 232.0]
        assert [m.topic for m in everything] == ["v1.1/Datastreams('vs-sl-103.power')/Observations",
                                                 "v1.1/Datastreams('vs-sl-101.voltage')/Observations"]
    finally:
        svc.stop()


def test_readings_sent_while_the_publisher_was_down_are_not_replayed_as_new(
        sta_broker: Broker, registry_file: Any, gateway: Callable[[str, bytes], None], anonymous: Anonymous) -> None:
    def publisher() -> StaMqttService:
        svc = StaMqttService(account(sta_broker, STA_MQTT_USER), WatchedRegistry(registry_file),
                             StaMqttConfig(base_url=BASE, collection_topic=False), client_id="sta-mqtt-restart")
        svc.start()
        wait_for(svc.link.subscribed.is_set, 5)
        return svc

    publisher().stop()
    _c, everything = anonymous("v1.1/#")
    gateway("gw-vs-01", encode([Reading("vs-sl-103", "power", 3.0, time.time(), "W")], 1))  # nobody publishes it
    svc = publisher()
    try:
        marker(gateway, everything, 233.0, copies=1)
        time.sleep(0.2)
        assert [jsonfast.loads(m.payload)["result"] for m in everything] == [233.0]
    finally:
        svc.stop()
