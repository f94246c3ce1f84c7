"""The simulated network server on its own: the uplink JSON it publishes and the downlinks it refuses.

Its messages are read back from a real mosquitto (the network server's broker of
tests/edge/test_ns_bridge.py) and checked against the servers' documented form, field by field,
including the fields a real server leaves out; the edge parser is the second reader.
"""

from __future__ import annotations

import base64
import json
import queue
from collections.abc import Iterator
from typing import Any

import pytest

from core.mqtt_service import MqttLink
from core.settings import MqttSettings
from deploy.mosquitto import Broker
from edge.network_server import Flavour, parse_uplink
from firmware_sim import lpp
from firmware_sim.air import Air
from firmware_sim.network_server import SimulatedNetworkServer
from tests.edge.test_ns_bridge import APPLICATIONS, SERVER_USER, as_user, ns_broker  # noqa: F401 - a fixture
from tests.firmware_sim.support import wait_for

ADDRESS, KEY, EUI = "0A0B0C01", bytes(range(16)), "A840414BD187106E"
UNPLACED = "0A0B0C03"  # known to the server, but no node on the air


class Setup:
    """A started server on an Air with one node, and a client that sees everything the server publishes."""

    def __init__(self, flavour: Flavour, broker: Broker) -> None:
        self.flavour = flavour
        self.settings = as_user(broker, SERVER_USER[flavour])
        self.air = Air()
        self.down: list[bytes] = []
        self.air.join(ADDRESS, self.down.append)
        self.server = SimulatedNetworkServer(flavour, self.settings, APPLICATIONS[flavour],
                                             self.air, {ADDRESS: (EUI, KEY, "lamp-1"),
                                                        UNPLACED: ("A840414BD187106F", KEY, None)}, seed=3)
        self.seen: queue.Queue[tuple[str, bytes]] = queue.Queue()
        root = "application/#" if flavour == "chirpstack" else "v3/#"
        self.watcher = MqttLink("watcher", self.settings, "watcher",
                                subscriptions=[(root, 1)], persistent=False,
                                on_message=lambda m: self.seen.put((m.topic, bytes(m.payload))))
        self.server.start()
        self.watcher.start()
        assert self.server.subscribed.wait(10) and self.watcher.subscribed.wait(10)

    def uplink(self, fcnt: int, payload: bytes) -> tuple[str, dict[str, Any]]:
        """Send a node's frame and return the message the server published for it."""
        self.air.transmit(lpp.uplink_frame(ADDRESS, fcnt, payload, KEY))
        topic, body = self.seen.get(timeout=10)
        return topic, json.loads(body)

    def stop(self) -> None:
        self.watcher.stop()
        self.server.stop()


@pytest.fixture(params=["chirpstack", "tts"])
def setup(request: pytest.FixtureRequest, ns_broker: Broker) -> Iterator[Setup]:  # noqa: F811 - the fixture
    s = Setup(request.param, ns_broker)
    yield s
    s.stop()


def test_uplinks_in_the_servers_form(setup: Setup) -> None:
    payload = lpp.entry(1, lpp.PERCENTAGE, 40)
    topic, doc = setup.uplink(17, payload)
    if setup.flavour == "chirpstack":
        assert topic == f"application/{APPLICATIONS['chirpstack']}/device/{EUI.lower()}/event/up"
        assert doc["deviceInfo"]["devEui"] == EUI.lower()
        assert (doc["fCnt"], doc["fPort"], base64.b64decode(doc["data"])) == (17, 1, payload)
        assert doc["devAddr"] == ADDRESS.lower()
        assert doc["time"].endswith("+00:00") and len(doc["time"].split(".")[1]) == 9 + 6  # nanoseconds
        rx = doc["rxInfo"][0]
        assert rx["gatewayId"] == "0016c001f153a14c" and -118 <= rx["rssi"] <= -60
        assert doc["txInfo"]["modulation"]["lora"]["spreadingFactor"] == 7
        assert "confirmed" not in doc and "tags" not in doc["deviceInfo"]  # false and {} are left out
    else:
        assert topic == f"v3/{APPLICATIONS['tts']}/devices/lamp-1/up"
        ids, up = doc["end_device_ids"], doc["uplink_message"]
        assert (ids["device_id"], ids["dev_eui"], ids["application_ids"]["application_id"]) == (
            "lamp-1", EUI, "straatverlichting")
        assert (up["f_cnt"], up["f_port"], base64.b64decode(up["frm_payload"])) == (17, 1, payload)
        assert doc["received_at"].endswith("Z")
        assert up["rx_metadata"][0]["gateway_ids"]["eui"] == "0016C001F153A14C"
        assert up["settings"]["frequency"].isdigit()  # an int64 as a string, per the protobuf JSON mapping
        assert up["network_ids"]["tenant_id"] == "gemeente"
    parsed = parse_uplink(setup.flavour, topic, json.dumps(doc))
    assert (parsed.dev_eui, parsed.fcnt, parsed.payload) == (EUI, 17, payload)
    assert parsed.received is not None and parsed.rssi is not None


def test_default_values_are_left_out(setup: Setup) -> None:
    topic, doc = setup.uplink(0, b"")  # counter 0 and no payload: port 0 as well
    fields = doc if setup.flavour == "chirpstack" else doc["uplink_message"]
    absent = ("fCnt", "fPort", "data") if setup.flavour == "chirpstack" else ("f_cnt", "f_port", "frm_payload")
    assert not set(absent) & set(fields)
    parsed = parse_uplink(setup.flavour, topic, json.dumps(doc))
    assert (parsed.fcnt, parsed.fport, parsed.payload) == (None, None, b"")


def test_frames_the_server_cannot_authenticate_are_not_published(setup: Setup) -> None:
    setup.air.transmit(lpp.uplink_frame(ADDRESS, 5, b"\x01\x78\x10", bytes(16)))  # the wrong key
    setup.air.transmit(lpp.uplink_frame("DEADBEEF", 5, b"\x01\x78\x10", KEY))  # not one of its devices
    setup.air.transmit(b"\x0a\x0b")  # noise
    assert setup.server.refused_uplinks == 3
    setup.uplink(6, b"\x01\x78\x10")  # the next message seen is the good frame's
    assert setup.server.uplinks == 1


def test_downlinks_become_frames_for_the_node_and_bad_ones_are_counted(setup: Setup) -> None:
    injector = MqttLink("injector", setup.settings, "injector", persistent=False)
    injector.start()
    try:
        assert injector.connected.wait(10)
        if setup.flavour == "chirpstack":
            base = f"application/{APPLICATIONS['chirpstack']}/device"
            good = (f"{base}/{EUI.lower()}/command/down",
                    {"devEui": EUI.lower(), "confirmed": False, "fPort": 10, "data": "AXgy"})
            bad: list[tuple[str, Any]] = [
                (good[0], "{not json"), (f"{base}/0000000000000001/command/down", good[1]),
                (good[0], {**good[1], "devEui": "a840414bd187106f"}), (good[0], {**good[1], "fPort": 0}),
                (good[0], {**good[1], "data": "AX*y"}), (f"{base}/a840414bd187106f/command/down",
                                                         {**good[1], "devEui": "a840414bd187106f"}),
            ]
        else:
            base = f"v3/{APPLICATIONS['tts']}/devices"
            entry = {"f_port": 10, "frm_payload": "AXgy", "priority": "NORMAL"}
            good = (f"{base}/lamp-1/down/push", {"downlinks": [entry]})
            bad = [(good[0], "{not json"), (f"{base}/lamp-2/down/push", good[1]), (good[0], {"downlinks": []}),
                   (good[0], {"downlinks": [{**entry, "f_port": 224}]}), (good[0], {"downlinks": [5]}),
                   (f"{base}/eui-a840414bd187106f/down/push", good[1])]
        for topic, doc in bad:
            injector.publish(topic, doc.encode() if isinstance(doc, str) else json.dumps(doc).encode(),
                             qos=1).wait_for_publish(5)
        wait_for(lambda: setup.server.bad_downlinks == len(bad), 10)
        assert setup.down == []
        injector.publish(good[0], json.dumps(good[1]).encode(), qos=1).wait_for_publish(5)
        injector.publish(good[0], json.dumps(good[1]).encode(), qos=1).wait_for_publish(5)
        wait_for(lambda: len(setup.down) == 2, 10)
        # The node opens them with its key; the counters go up, so the second is no replay.
        opened = [lpp.open_downlink(frame, KEY) for frame in setup.down]
        assert [o[1] if o else None for o in opened] == [b"\x01\x78\x32"] * 2
        assert [o[0] for o in opened if o] == [1, 2]
        assert setup.server.downlinks == 2
    finally:
        injector.stop()


def test_a_publish_the_broker_cannot_take_is_counted(ns_broker: Broker) -> None:  # noqa: F811 - the fixture
    air = Air()
    server = SimulatedNetworkServer("tts", as_user(ns_broker, SERVER_USER["tts"]), APPLICATIONS["tts"], air,
                                    {ADDRESS: (EUI, KEY, None)})
    air.transmit(lpp.uplink_frame(ADDRESS, 1, b"", KEY))  # never started: QoS 0 cannot wait for a connection
    assert (server.uplinks, server.unpublished) == (0, 1)


def test_bad_settings_are_refused_at_once() -> None:
    with pytest.raises(ValueError, match="flavour"):
        SimulatedNetworkServer("kpn", MqttSettings(), "app", Air(), {})  # type: ignore[arg-type]
    for address, eui, key in (("0A0B0C0", EUI, KEY), (ADDRESS, EUI[:-1], KEY), (ADDRESS, EUI, bytes(15))):
        with pytest.raises(ValueError, match="simulated device"):
            SimulatedNetworkServer("tts", MqttSettings(), "app", Air(), {address: (eui, key, None)})
