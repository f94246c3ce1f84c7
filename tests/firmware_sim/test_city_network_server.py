"""SimulatedCity with a simulated network server: the registry's lorawan devices as nodes behind it.

The integration tests run the server on a real mosquitto with the accounts of deploy/mosquitto.py
(network-server for the server, ns-bridge for the reader), and read its messages with the edge's
own parser: an uplink of each gateway's light arrives on its gateway's application, and a
downlink sent there dims the light.
"""

from __future__ import annotations

import argparse
import logging
import queue
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.errors import ConfigError
from core.mqtt_service import MqttLink
from core.registry import Registry, parse
from core.settings import MqttSettings
from deploy.mosquitto import NETWORK_SERVER_USER, NS_BRIDGE_USER, Broker, start_mosquitto
from deploy.processes import new_password
from edge.cayenne_lpp import decode
from edge.device_codecs import decode_metrics, encode_dim
from edge.lora_keys import KeyRing
from edge.network_server import Flavour, chirpstack_downlink, parse_uplink, tts_default_device_id, tts_downlink
from firmware_sim.city import NetworkServerOptions, SimulatedCity, SimulatedCityError
from firmware_sim.main import network_server_options
from tests.firmware_sim.support import GATEWAY, KEYS, LIGHT_ADDRESS, tiny_registry_dict, wait_for

LIGHT_EUIS = {"ns-light-1": "70B3D57ED00626C4", "ns-light-2": "70B3D57ED00629C4"}
APPLICATIONS: dict[Flavour, str] = {"chirpstack": "smartcity-{gateway}", "tts": "smartcity-{gateway}@gemeente"}
ANY_BROKER = MqttSettings("127.0.0.1", 1, "network-server", "unused")  # never connected to


def registry(**extra_euis: str) -> Registry:
    """The tiny city, plus a lorawan light on each gateway, a lorawan rain gauge and any extra lorawan lights."""
    data = tiny_registry_dict()
    place = {"gemeente": "GM0626", "wijk": "WK062600"}
    lights = {"ns-light-1": (GATEWAY, LIGHT_EUIS["ns-light-1"]), "ns-light-2": ("gw-2", LIGHT_EUIS["ns-light-2"]),
              **{ident: (GATEWAY, eui) for ident, eui in extra_euis.items()}}
    for ident, (gateway, eui) in lights.items():
        data["features"].append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [4.4, 52.1]},
                                 "properties": {"id": ident, "role": "device", "kind": "street_light",
                                                "gateway": gateway, "link": "lorawan", "dev_eui": eui, **place}})
    data["features"].append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [4.4, 52.1]},
                             "properties": {"id": "ns-rain", "role": "device", "kind": "rain_gauge",
                                            "gateway": GATEWAY, "link": "lorawan", "dev_eui": "70B3D57ED00626C9",
                                            **place}})
    return parse(data)


def build(reg: Registry, ns: NetworkServerOptions | None, keys: KeyRing = KEYS) -> SimulatedCity:
    return SimulatedCity(reg, report_interval=0.2, busy_seconds=0.6, quiet_seconds=0.4, seed=1, rain_tick=0.05,
                         keys=keys, network_server=ns)


def test_without_a_network_server_the_lorawan_devices_are_skipped_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="firmware_sim.city"):
        city = build(registry(), None)
    city.stop()
    assert sorted(city.skipped) == ["light-serial", "ns-light-1", "ns-light-2", "ns-rain"]
    assert "ns-light-1" not in city.street_lights and city.network_servers == {}
    assert "device ns-light-1 (street_light over lorawan) is not simulated (no network server given)" in caplog.text


def test_each_gateways_lorawan_lights_get_a_node_and_a_server_of_their_application() -> None:
    city = build(registry(), NetworkServerOptions("chirpstack", ANY_BROKER, APPLICATIONS["chirpstack"]))
    city.stop()
    # The node's address is the DevEUI's last 8 hex digits; its key the key ring's for that address.
    assert city.lorawan_addresses == {"ns-light-1": "D00626C4", "ns-light-2": "D00629C4"}
    assert city.street_lights["ns-light-1"].address == "D00626C4"
    assert set(city.network_servers) == {"smartcity-gw-1", "smartcity-gw-2"}
    assert city.skipped == ["light-serial", "ns-rain"]  # no lorawan rain-gauge firmware
    assert city.light_levels()["ns-light-2"] == 100


def test_one_application_for_the_city_is_one_server() -> None:
    city = build(registry(), NetworkServerOptions("tts", ANY_BROKER, "straatverlichting@gemeente"))
    city.stop()
    assert list(city.network_servers) == ["straatverlichting@gemeente"]


@pytest.mark.parametrize("eui", [f"70B3D57E{LIGHT_ADDRESS}",  # a modem device's address
                                 "AAAAAAAAD00626C4"])  # another lorawan light's node address
def test_a_node_address_that_collides_is_refused_naming_both_devices(eui: str) -> None:
    with pytest.raises(SimulatedCityError, match=r"node address [0-9A-F]{8} .* is device '[a-z0-9-]+''s") as exc:
        build(registry(clash=eui), NetworkServerOptions("chirpstack", ANY_BROKER, "app"))
    other = "light-1" if eui.endswith(LIGHT_ADDRESS) else "ns-light-1"
    assert "'clash'" in str(exc.value) and f"'{other}'" in str(exc.value)


def test_a_lorawan_node_without_a_key_is_refused() -> None:
    keys = KeyRing(devices={a: bytes(16) for a in ("0A0B0C01", "0A0B0C02", "D00626C4")})  # no master
    with pytest.raises(SimulatedCityError, match=r"'ns-light-2' \(node address D00629C4\) has no key"):
        build(registry(), NetworkServerOptions("chirpstack", ANY_BROKER, "app"), keys=keys)


@pytest.mark.parametrize(("flavour", "application", "message"), [
    ("chirpstack", "a/b", "one topic level"),
    ("chirpstack", "", "one topic level"),
    ("tts", "smartcity-{gateway}", "app@tenant"),
    ("kpn", "app", "chirpstack or tts"),
])
def test_bad_network_server_options_are_refused(flavour: Any, application: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        NetworkServerOptions(flavour, ANY_BROKER, application)


def args(**options: Any) -> argparse.Namespace:
    return argparse.Namespace(**{"network_server": None, "ns_application": None, **options})


def test_the_sim_options_take_the_servers_broker_from_the_ns_environment() -> None:
    env = {"SMARTCITY_NS_MQTT_HOST": "10.0.0.5", "SMARTCITY_NS_MQTT_PORT": "8883",
           "SMARTCITY_NS_MQTT_USERNAME": "network-server", "SMARTCITY_NS_MQTT_PASSWORD": "pw",
           "SMARTCITY_MQTT_USERNAME": "not-this-one"}
    ns = network_server_options(args(network_server="tts", ns_application="a-{gateway}@t"), env)
    assert ns == NetworkServerOptions("tts", MqttSettings("10.0.0.5", 8883, "network-server", "pw"), "a-{gateway}@t")
    assert network_server_options(args(), env) is None
    with pytest.raises(ConfigError, match="needs --ns-application"):
        network_server_options(args(network_server="chirpstack"), env)
    with pytest.raises(ConfigError, match="--ns-application needs --network-server"):
        network_server_options(args(ns_application="app"), env)
    with pytest.raises(ConfigError, match="SMARTCITY_NS_MQTT_USERNAME and SMARTCITY_NS_MQTT_PASSWORD"):
        network_server_options(args(network_server="chirpstack", ns_application="app"),
                               {"SMARTCITY_NS_MQTT_USERNAME": "network-server"})


# --- against a real broker ---

@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = start_mosquitto(tmp_path / "broker", {u: new_password() for u in (NETWORK_SERVER_USER, NS_BRIDGE_USER)})
    yield b
    b.stop()


def account(broker: Broker, user: str) -> MqttSettings:
    return MqttSettings(broker.host, broker.port, user, broker.users[user])


@pytest.mark.integration
@pytest.mark.parametrize("flavour", ["chirpstack", "tts"])
def test_uplinks_arrive_on_each_gateways_application_and_a_downlink_dims_the_light(
        broker: Broker, flavour: Flavour) -> None:
    seen: queue.Queue[tuple[str, bytes]] = queue.Queue()
    root = "application/+/device/+/event/up" if flavour == "chirpstack" else "v3/+/devices/+/up"
    bridge = MqttLink("bridge", account(broker, NS_BRIDGE_USER), f"test-bridge-{new_password()[:6]}",
                      subscriptions=[(root, 0)], persistent=False,
                      on_message=lambda m: seen.put((m.topic, bytes(m.payload))))
    city = build(registry(), NetworkServerOptions(flavour, account(broker, NETWORK_SERVER_USER),
                                                  APPLICATIONS[flavour]))
    bridge.start()
    try:
        assert bridge.subscribed.wait(10)
        city.start()
        assert all(s.subscribed.wait(10) for s in city.network_servers.values())
        applications: dict[str, str] = {}  # DevEUI -> the application its uplinks arrive on
        while len(applications) < 2:
            up = parse_uplink(flavour, *seen.get(timeout=10))
            applications[up.dev_eui] = up.application
            assert decode_metrics("street_light", decode(up.payload))["dim_level"] == 100.0
        app = APPLICATIONS[flavour]
        assert applications == {LIGHT_EUIS["ns-light-1"]: app.replace("{gateway}", GATEWAY),
                                LIGHT_EUIS["ns-light-2"]: app.replace("{gateway}", "gw-2")}
        eui = LIGHT_EUIS["ns-light-2"]
        if flavour == "chirpstack":
            topic, body = chirpstack_downlink(applications[eui], eui, 10, encode_dim(30))
        else:
            topic, body = tts_downlink(applications[eui], tts_default_device_id(eui), 10, encode_dim(30))
        bridge.publish(topic, body, qos=0)
        assert wait_for(lambda: city.light_levels()["ns-light-2"] == 30, 5)
        assert city.light_levels()["ns-light-1"] == 100  # the other gateway's light is not touched
    finally:
        city.stop()
        bridge.stop()
