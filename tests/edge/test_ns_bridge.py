"""The network-server bridge against a real mosquitto, a simulated ChirpStack / TTS and real node firmware.

The broker here is the network server's own (as a municipality's ChirpStack or TTS has one), with
accounts for the server and for the bridge; the platform's broker and its ACL are not involved.
The street light and counter nodes are the firmware the modem path is tested with, so the same
frames are also fed to LoraConverter, and both paths must give the same readings.
"""

from __future__ import annotations

import base64
import json
import random
import socket
import subprocess
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from paho.mqtt.enums import MQTTProtocolVersion

from core import mqtt
from core.mqtt_service import MqttLink
from core.senml import Reading
from core.settings import MqttSettings
from deploy.mosquitto import NETWORK_SERVER_USER, NS_BRIDGE_USER, Broker, acl_policy, broker_config
from deploy.processes import find_binary, free_port, new_password, spawn, wait_until
from edge.converters import LoraConverter
from edge.device_codecs import encode_dim
from edge.durable_queue import DurableQueue
from edge.edge_device import EdgeDevice
from edge.lora_keys import KeyRing
from edge.network_server import DownlinkError, Flavour
from edge.ns_bridge import JOINED, NetworkServerBridge
from firmware_sim.air import Air
from firmware_sim.network_server import SimulatedNetworkServer
from firmware_sim.occupancy import OccupancyNode
from firmware_sim.street_light import StreetLightNode
from tests.conftest import wait_for

LIGHT_ADDRESS, COUNTER_ADDRESS = "0A0B0C01", "0A0B0C02"
LIGHT_EUI, COUNTER_EUI = "A840414BD187106E", "70B3D57ED005B89A"
LIGHT_TTS_ID = "lamp-0012"  # chosen by the operator; the counter keeps TTS's default eui-<deveui>
APPLICATIONS: dict[Flavour, str] = {"chirpstack": "17c82e96-be03-4f38-aef3-f83d48582d97",
                                    "tts": "straatverlichting@gemeente"}
SERVER_USER: dict[Flavour, str] = {"chirpstack": NETWORK_SERVER_USER, "tts": NETWORK_SERVER_USER}
LIGHT = EdgeDevice("light-1", "street_light", "lorawan", dev_eui=LIGHT_EUI)
COUNTER = EdgeDevice("counter-1", "occupancy", "lorawan", dev_eui=COUNTER_EUI)
NOW = 1_718_873_318.0


# --- the network server's broker ---

def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


@pytest.fixture
def ns_broker(tmp_path: Path) -> Iterator[Broker]:
    """mosquitto with the network server's and the bridge's accounts and the grants the platform deploys."""
    users = {u: new_password() for u in (NETWORK_SERVER_USER, NS_BRIDGE_USER)}
    conf_dir = tmp_path / "ns-broker"
    conf_dir.mkdir()
    passwd, acl, conf = conf_dir / "passwd", conf_dir / "acl", conf_dir / "mosquitto.conf"
    passwd.write_text("")
    passwd.chmod(0o600)
    tool = find_binary("mosquitto_passwd", "apt-get install mosquitto")
    for user, password in users.items():
        subprocess.run([tool, "-b", str(passwd), user, password], check=True, capture_output=True)
    acl.write_text(acl_policy(users))
    acl.chmod(0o600)
    host, port = "127.0.0.1", free_port()
    # A log file of its own, flushed per line (stdout to a file is block-buffered): the tests read
    # the protocol of each client from its connection message.
    conf.write_text(broker_config(host=host, port=port, password_file=passwd, acl_file=acl, persistence_dir=conf_dir)
                    + f"log_dest file {conf_dir / 'connections.log'}\nconnection_messages true\n")
    child = spawn("mosquitto-ns", [find_binary("mosquitto", "apt-get install mosquitto"), "-c", str(conf)],
                  conf_dir / "mosquitto.log")
    wait_until(child, lambda: _listening(host, port), 10)
    yield Broker(host, port, users, child, conf)
    child.stop()


def connection_log(broker: Broker) -> str:
    """What the network server's broker logged so far (connections included)."""
    assert broker.config_path is not None
    return (broker.config_path.parent / "connections.log").read_text()


def as_user(broker: Broker, user: str) -> MqttSettings:
    """Settings that log in to the network server's broker as user."""
    return MqttSettings(broker.host, broker.port, user, broker.users[user])


# --- the rig: nodes on an Air, the simulated server, the bridge, and the modem path beside it ---

class Clock:
    """The nodes' clock, moved by the test: each uplink happens when the test says."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Rig:
    """Everything of one flavour, started; stop() ends every thread."""

    flavour: Flavour
    broker: Broker
    air: Air
    clock: Clock
    light: StreetLightNode
    counter: OccupancyNode
    server: SimulatedNetworkServer
    bridge: NetworkServerBridge
    modem: LoraConverter
    stored: list[tuple[list[Reading], tuple[str, int] | None]] = field(default_factory=list)
    frames: list[bytes] = field(default_factory=list)
    links: list[MqttLink] = field(default_factory=list)

    def uplink(self, node: StreetLightNode | OccupancyNode) -> None:
        """Let node send its next uplink and wait until the bridge has stored it."""
        before = len(self.stored)
        self.clock.now = max(self.clock.now, node.next_due)
        node.step(self.clock.now)
        wait_for(lambda: len(self.stored) > before, 10)

    def readings(self) -> list[Reading]:
        return [r for readings, _ in self.stored for r in readings]

    def injector(self) -> MqttLink:
        """A connected client with the network server's account, to publish what the server would not."""
        link = MqttLink("injector", as_user(self.broker, SERVER_USER[self.flavour]), f"inject-{new_password()[:6]}",
                        persistent=False)
        link.start()
        self.links.append(link)
        assert link.connected.wait(10)
        return link

    def stop(self) -> None:
        for link in self.links:
            link.stop()
        self.bridge.stop()
        self.server.stop()


def _rig(flavour: Flavour, broker: Broker) -> Rig:
    keys = {LIGHT_ADDRESS: bytes(range(16)), COUNTER_ADDRESS: bytes(range(16, 32))}
    air, clock = Air(), Clock()
    light = StreetLightNode(LIGHT_ADDRESS, air, random.Random(1), key=keys[LIGHT_ADDRESS], report_interval=60.0,
                            confirm_delay=1.0, clock=clock)
    counter = OccupancyNode(COUNTER_ADDRESS, air, random.Random(2), key=keys[COUNTER_ADDRESS], report_interval=60.0,
                            busy_seconds=90.0, quiet_seconds=60.0, clock=clock)
    server = SimulatedNetworkServer(flavour, as_user(broker, SERVER_USER[flavour]), APPLICATIONS[flavour], air, {
        LIGHT_ADDRESS: (LIGHT_EUI, keys[LIGHT_ADDRESS], LIGHT_TTS_ID),
        COUNTER_ADDRESS: (COUNTER_EUI, keys[COUNTER_ADDRESS], None)})
    modem = LoraConverter([EdgeDevice("light-1", "street_light", "lora", address=LIGHT_ADDRESS),
                           EdgeDevice("counter-1", "occupancy", "lora", address=COUNTER_ADDRESS)],
                          KeyRing(devices=keys))
    stored: list[tuple[list[Reading], tuple[str, int] | None]] = []
    bridge = NetworkServerBridge("gw-1", flavour, as_user(broker, NS_BRIDGE_USER), APPLICATIONS[flavour],
                                 [LIGHT, COUNTER], lambda readings, fcnt: stored.append((readings, fcnt)))
    rig = Rig(flavour, broker, air, clock, light, counter, server, bridge, modem, stored)

    def both_paths(frame: bytes) -> None:  # the radio reaches the network server; we keep a copy
        rig.frames.append(frame)
        server.receive(frame)

    air.attach_modem(both_paths)
    server.start()
    bridge.start()
    assert bridge.subscribed.wait(10) and server.subscribed.wait(10)
    return rig


@pytest.fixture(params=["chirpstack", "tts"])
def rig(request: pytest.FixtureRequest, ns_broker: Broker) -> Iterator[Rig]:
    """The rig of one flavour, stopped at teardown."""
    r = _rig(request.param, ns_broker)
    yield r
    r.stop()


def test_the_bridge_gives_the_readings_of_the_modem_path(rig: Rig) -> None:
    for _ in range(3):
        rig.uplink(rig.light)
        rig.uplink(rig.counter)
    via_server = Counter((r.device, r.metric, r.value, r.unit) for r in rig.readings())
    via_modem = Counter((r.device, r.metric, r.value, r.unit) for f in rig.frames for r in rig.modem.convert(f, 0.0))
    assert via_server == via_modem
    assert via_modem.total() == 3 * (6 + 2)  # every metric of every uplink
    # The counters to store are the nodes' own, per DevEUI, in order.
    light_counters = [c for _, (eui, c) in ((r, f) for r, f in rig.stored if f) if eui == LIGHT_EUI]
    assert light_counters == [rig.light.fcnt - 3, rig.light.fcnt - 2, rig.light.fcnt - 1]
    assert rig.bridge.uplinks == 6 and not rig.bridge.problems
    assert rig.server.uplinks == 6


def test_a_replayed_uplink_is_refused_and_counted(rig: Rig) -> None:
    rig.uplink(rig.light)
    assert rig.server.last_uplink is not None
    topic, body = rig.server.last_uplink
    info = rig.injector().publish(topic, body, qos=1)  # the same message again, as a redelivery would be
    info.wait_for_publish(5)
    wait_for(lambda: rig.bridge.problems["replay"] == 1, 10)
    assert len(rig.stored) == 1
    rig.uplink(rig.light)  # the next real one still counts
    assert rig.bridge.uplinks == 2


def test_a_dim_downlink_reaches_the_node_and_its_report_confirms_it(rig: Rig) -> None:
    rig.uplink(rig.light)  # TTS: the bridge learns the device ID (lamp-0012) from the uplink
    assert rig.light.level == 100
    assert rig.bridge.send(LIGHT, encode_dim(30))
    wait_for(lambda: rig.light.level == 30, 10)
    assert (rig.server.downlinks, rig.server.bad_downlinks, rig.light.bad_downlinks) == (1, 0, 0)
    rig.uplink(rig.light)  # the confirming report comes confirm_delay later
    assert [r.value for r in rig.stored[-1][0] if r.metric == "dim_level"] == [30.0]
    assert rig.bridge.send(LIGHT, encode_dim(0))  # a second one: the node's downlink counter moves on
    wait_for(lambda: rig.light.level == 0, 10)


def test_bad_json_on_the_uplink_topic_is_counted_and_the_next_uplink_decoded(rig: Rig) -> None:
    rig.uplink(rig.counter)
    assert rig.server.last_uplink is not None
    topic = rig.server.last_uplink[0]
    injector = rig.injector()
    for junk in (b"{not json", b"[]", json.dumps({"deviceInfo": 5}).encode(), b"\xff" * 10):
        injector.publish(topic, junk, qos=1).wait_for_publish(5)
    wait_for(lambda: rig.bridge.problems["bad_message"] == 4, 10)
    rig.uplink(rig.counter)
    assert {r.metric for r in rig.stored[-1][0]} == {"presence", "count"}
    assert rig.bridge._link.stats.callback_errors == 0  # refused by the bridge, not caught by the guard


def test_the_things_stack_is_spoken_to_in_mqtt_311(ns_broker: Broker) -> None:
    rig = _rig("tts", ns_broker)
    try:
        log_text = connection_log(ns_broker)
        # mosquitto logs the protocol of every client: p2 is MQTT 3.1.1, p5 MQTT 5; c1 a clean session.
        assert f"as {rig.bridge._link.client_id} (p2, c1" in log_text
        assert f"as {rig.server._link.client_id} (p2, c1" in log_text
    finally:
        rig.stop()
    chirpstack = _rig("chirpstack", ns_broker)
    try:
        assert f"as {chirpstack.bridge._link.client_id} (p5, c0" in connection_log(ns_broker)
    finally:
        chirpstack.stop()


def test_an_mqtt_311_client_takes_no_mqtt_5_properties() -> None:
    client = mqtt.new_client(MqttSettings(), "v311", protocol=MQTTProtocolVersion.MQTTv311)
    with pytest.raises(ValueError, match="MQTT 5"):
        mqtt.connect(client, MqttSettings(), receive_maximum=10)


# --- the bridge's decisions, fed messages directly (no broker) ---

def _uplink(flavour: Flavour, eui: str, fcnt: int | None, payload: bytes, *, received: str | None = None,
            device_id: str | None = None, fport: int = 1) -> tuple[str, bytes]:
    """A minimal uplink of a flavour, default values left out as the servers do."""
    app = APPLICATIONS[flavour]
    data = base64.b64encode(payload).decode()
    doc: dict[str, Any]
    if flavour == "chirpstack":
        doc = {"deviceInfo": {"devEui": eui.lower()}, "fPort": fport, "data": data, "time": received}
        if fcnt:
            doc["fCnt"] = fcnt
        return f"application/{app}/device/{eui.lower()}/event/up", json.dumps(doc).encode()
    dev = device_id or f"eui-{eui.lower()}"
    up: dict[str, Any] = {"f_port": fport, "frm_payload": data}
    if fcnt:
        up["f_cnt"] = fcnt
    doc = {"end_device_ids": {"device_id": dev, "dev_eui": eui}, "received_at": received, "uplink_message": up}
    return f"v3/{app}/devices/{dev}/up", json.dumps(doc).encode()


LIGHT_PAYLOAD = bytes.fromhex("01783202800009")  # dim 50 %, 9 W


class Offline:
    """A bridge that is never started, and what it stored."""

    def __init__(self, flavour: Flavour, counters: dict[str, int] | None = None, *, fail: bool = False) -> None:
        self.stored: list[tuple[list[Reading], tuple[str, int] | None]] = []
        self.fail = fail
        self.bridge = NetworkServerBridge("gw-1", flavour, MqttSettings(), APPLICATIONS[flavour], [LIGHT, COUNTER],
                                          self._store, counters=counters, clock=lambda: NOW)

    def _store(self, readings: list[Reading], fcnt: tuple[str, int] | None) -> None:
        if self.fail:
            raise OSError("disk full")
        self.stored.append((readings, fcnt))

    def feed(self, topic_and_payload: tuple[str, bytes]) -> list[Reading] | None:
        """Handle one message; the readings it stored, None if it stored nothing."""
        before = len(self.stored)
        self.bridge.handle_message(*topic_and_payload)
        return self.stored[-1][0] if len(self.stored) > before else None


FLAVOURS: list[Flavour] = ["chirpstack", "tts"]


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_counters_from_before_a_restart_refuse_replays(flavour: Flavour) -> None:
    off = Offline(flavour, counters={LIGHT_EUI: 500, "0A0B0C01": 7})  # the queue's P2P counters may be there too
    assert off.feed(_uplink(flavour, LIGHT_EUI, 500, LIGHT_PAYLOAD)) is None
    assert off.feed(_uplink(flavour, LIGHT_EUI, 499, LIGHT_PAYLOAD)) is None
    assert off.bridge.problems["replay"] == 2
    assert off.feed(_uplink(flavour, LIGHT_EUI, 504, LIGHT_PAYLOAD))
    assert off.stored[-1][1] == (LIGHT_EUI, 504)
    assert off.bridge.lost_frames == 3


def test_counters_survive_a_restart_through_the_durable_queue(tmp_path: Path) -> None:
    queue = DurableQueue(tmp_path / "q.sqlite")
    bridge = NetworkServerBridge("gw-1", "chirpstack", MqttSettings(), APPLICATIONS["chirpstack"], [LIGHT],
                                 lambda readings, fcnt: queue.extend(readings, fcnt=fcnt))
    message = _uplink("chirpstack", LIGHT_EUI, 42, LIGHT_PAYLOAD)
    bridge.handle_message(*message)
    assert len(queue) == 2
    queue.close()
    again = DurableQueue(tmp_path / "q.sqlite")
    restarted = NetworkServerBridge("gw-1", "chirpstack", MqttSettings(), APPLICATIONS["chirpstack"], [LIGHT],
                                    lambda readings, fcnt: again.extend(readings, fcnt=fcnt),
                                    counters=again.counters())
    restarted.handle_message(*message)  # redelivered after the restart
    assert restarted.problems["replay"] == 1 and len(again) == 2
    again.close()


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_join_starts_the_counter_afresh(flavour: Flavour) -> None:
    off = Offline(flavour, counters={LIGHT_EUI: 100, COUNTER_EUI: 100})
    join = (f"application/{APPLICATIONS[flavour]}/device/{LIGHT_EUI.lower()}/event/join" if flavour == "chirpstack"
            else f"v3/{APPLICATIONS[flavour]}/devices/eui-{LIGHT_EUI.lower()}/join")
    off.bridge.handle_message(join, b"{}")
    assert off.stored == [([], (LIGHT_EUI, JOINED))]  # persisted before the first uplink of the session
    assert off.feed(_uplink(flavour, LIGHT_EUI, None, LIGHT_PAYLOAD))  # fCnt 0: left out of the JSON
    assert off.stored[-1][1] == (LIGHT_EUI, 0)
    assert off.feed(_uplink(flavour, COUNTER_EUI, 3, bytes.fromhex("016601"))) is None  # no join: a replay
    assert (off.bridge.counter_resets, off.bridge.problems["replay"], off.bridge.ignored) == (1, 1, 1)
    assert not off.bridge.problems["bad_message"]


def test_a_tts_join_of_a_device_known_by_its_own_id() -> None:
    off = Offline("tts", counters={LIGHT_EUI: 100})
    assert off.feed(_uplink("tts", LIGHT_EUI, 101, LIGHT_PAYLOAD, device_id=LIGHT_TTS_ID))
    off.bridge.handle_message(f"v3/{APPLICATIONS['tts']}/devices/{LIGHT_TTS_ID}/join", b"{}")
    assert off.stored[-1] == ([], (LIGHT_EUI, JOINED))
    off.bridge.handle_message(f"v3/{APPLICATIONS['tts']}/devices/some-other-device/join", b"{}")
    assert off.bridge.counter_resets == 1  # a device that is not ours changes nothing


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_large_counter_drop_is_a_new_session(flavour: Flavour) -> None:
    off = Offline(flavour, counters={LIGHT_EUI: 1_000_000})
    assert off.feed(_uplink(flavour, LIGHT_EUI, 2, LIGHT_PAYLOAD))  # a join this bridge missed
    assert off.bridge.counter_resets == 1
    assert off.feed(_uplink(flavour, LIGHT_EUI, 2, LIGHT_PAYLOAD)) is None  # but not twice


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_what_cannot_be_used_is_counted_by_reason(flavour: Flavour) -> None:
    off = Offline(flavour)
    assert off.feed(_uplink(flavour, "0000000000000001", 1, LIGHT_PAYLOAD)) is None
    assert off.feed(_uplink(flavour, LIGHT_EUI, 2, b"")) == []  # the counter is still stored
    assert off.stored[-1][1] == (LIGHT_EUI, 2)
    assert off.feed(_uplink(flavour, LIGHT_EUI, 3, LIGHT_PAYLOAD, fport=0)) == []  # port 0: MAC commands only
    assert off.feed(_uplink(flavour, LIGHT_EUI, 4, b"\x01\x67\x01")) == []  # truncated LPP
    readings = off.feed(_uplink(flavour, LIGHT_EUI, 5, LIGHT_PAYLOAD + bytes.fromhex("096832")))
    assert readings is not None and {r.metric for r in readings} == {"dim_level", "power"}  # good values kept
    topic, body = _uplink(flavour, LIGHT_EUI, 6, LIGHT_PAYLOAD)
    other_app = topic.replace(APPLICATIONS[flavour], "other-app")
    for message in ((topic, b"{"), (topic, b"\x00\xff"), (other_app, body)):
        off.bridge.handle_message(*message)
    assert dict(off.bridge.problems) == {"unknown_device": 1, "no_payload": 2, "bad_payload": 1, "bad_entries": 1,
                                         "bad_message": 3}
    assert off.feed((topic, body))  # and after all that the next good one is used


@pytest.mark.parametrize(("received", "expected", "bad_time"), [
    ("2024-06-20T08:47:38Z", NOW - 60, 0),  # a minute in a broker queue: the server's time
    ("2024-06-20T08:52:38Z", NOW + 240, 0),  # four minutes ahead: clocks differ a little
    ("2024-06-20T09:48:38Z", NOW, 1),  # an hour ahead: one clock is wrong, ours is used
    ("2024-06-01T08:48:38Z", NOW, 1),  # older than the durable queue keeps readings
    (None, NOW, 0),
    ("not a time", NOW, 0),
])
@pytest.mark.parametrize("flavour", FLAVOURS)
def test_the_reading_time(flavour: Flavour, received: str | None, expected: float, bad_time: int) -> None:
    off = Offline(flavour)
    readings = off.feed(_uplink(flavour, LIGHT_EUI, 1, LIGHT_PAYLOAD, received=received))
    assert readings and {r.time for r in readings} == {expected}
    assert off.bridge.problems["bad_time"] == bad_time


def test_a_store_that_fails_leaves_the_counter_so_a_redelivery_is_taken() -> None:
    off = Offline("chirpstack", fail=True)
    message = _uplink("chirpstack", LIGHT_EUI, 9, LIGHT_PAYLOAD)
    off.bridge.handle_message(*message)  # must not raise into paho's thread
    assert off.bridge.problems["store_failed"] == 1 and off.bridge.uplinks == 0
    off.fail = False
    assert off.feed(message)
    assert off.bridge.uplinks == 1


def test_a_config_reload_changes_the_devices_and_keeps_the_counters() -> None:
    off = Offline("chirpstack")
    assert off.feed(_uplink("chirpstack", LIGHT_EUI, 10, LIGHT_PAYLOAD))
    off.bridge.update_devices([COUNTER])
    assert off.feed(_uplink("chirpstack", LIGHT_EUI, 11, LIGHT_PAYLOAD)) is None
    assert off.bridge.problems["unknown_device"] == 1
    off.bridge.update_devices([LIGHT, COUNTER, EdgeDevice("rain-1", "rain_gauge", "serial", port="rg15")])
    assert off.feed(_uplink("chirpstack", LIGHT_EUI, 10, LIGHT_PAYLOAD)) is None  # the counter was kept
    assert off.feed(_uplink("chirpstack", LIGHT_EUI, 12, LIGHT_PAYLOAD))


def test_tts_downlinks_use_the_device_id_of_the_last_uplink() -> None:
    off = Offline("tts")
    topic, _ = off.bridge.downlink_message(LIGHT, encode_dim(5))
    assert topic == f"v3/{APPLICATIONS['tts']}/devices/eui-{LIGHT_EUI.lower()}/down/replace"  # TTS's default ID
    off.feed(_uplink("tts", LIGHT_EUI, 1, LIGHT_PAYLOAD, device_id=LIGHT_TTS_ID))
    topic, body = off.bridge.downlink_message(LIGHT, encode_dim(5))
    assert topic == f"v3/{APPLICATIONS['tts']}/devices/{LIGHT_TTS_ID}/down/replace"
    assert json.loads(body)["downlinks"][0]["f_port"] == 10


def test_downlinks_that_cannot_go() -> None:
    off = Offline("chirpstack")
    lora_light = EdgeDevice("light-9", "street_light", "lora", address="0A0B0C09")
    with pytest.raises(DownlinkError, match="light-9"):
        off.bridge.downlink_message(lora_light, b"\x01")
    assert not off.bridge.send(lora_light, b"\x01")
    assert off.bridge.problems["bad_downlink"] == 1
    assert not off.bridge.send(LIGHT, encode_dim(5))  # not connected: the actuator tries again later


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"flavour": "kpn"}, "flavour"), ({"application": "a/b"}, "application"), ({"application": ""}, "application"),
    ({"downlink_fport": 0}, "downlink_fport"), ({"downlink_fport": 224}, "downlink_fport"),
])
def test_bad_bridge_settings_are_refused(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"gateway": "gw-1", "flavour": "chirpstack", "settings": MqttSettings(),
                            "application": "app", "devices": [LIGHT], "on_readings": lambda r, f: None}
    extra = {"downlink_fport": kwargs.pop("downlink_fport")} if "downlink_fport" in kwargs else {}
    with pytest.raises(ValueError, match=message):
        NetworkServerBridge(**{**args, **kwargs}, **extra)
