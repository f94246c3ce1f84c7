"""The gateway config file: every refusal names the file, table and key; files checked; round trip; the sample."""

from __future__ import annotations

import datetime
import re
import shutil
import tomllib
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from core.errors import ConfigError
from core.registry import load as load_registry
from edge.edge_device import EdgeDevice
from edge.gateway_config import (
    TABLE_KEYS,
    GatewayConfig,
    GatewayConfigError,
    LoraConfig,
    MqttConfig,
    NetworkServerConfig,
    QueueConfig,
    SerialPortConfig,
    config_from_registry,
    format_duration,
    load_config,
    mqtt_settings,
    parse_config,
    parse_duration,
    render_config,
    toml_string,
)
from edge.lora_keys import KeyRing
from smartcity.data import demo_registry_path

SAMPLE = Path(__file__).parents[2] / "deploy" / "samples" / "gateway.toml"
DELETE = object()


def _pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


def _secret(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


@pytest.fixture
def d(tmp_path: Path) -> Path:
    """A directory with the files the base config names: keys.json, pw, ca.pem."""
    KeyRing.generate().save(tmp_path / "keys.json")
    _secret(tmp_path / "pw", "s3cret\n")
    (tmp_path / "ca.pem").write_bytes(_pem())
    return tmp_path


def base() -> dict[str, Any]:
    return {
        "version": 1, "gateway": "gw-1",
        "mqtt": {"host": "broker.example", "password_file": "pw", "ca_file": "ca.pem"},
        "queue": {"max_age": "12h"},
        "lora": {"port": "/dev/ttyUSB0", "modem": "rn2483", "keys": "keys.json"},
        "network_server": {"type": "chirpstack", "host": "ns.example", "application": "app-1",
                           "downlink_fport": 10, "password_file": "pw"},
        "serial": {"rg15": {"path": "/dev/ttyAMA0"}},
        "devices": [
            {"id": "light-1", "kind": "street_light", "link": "lora", "address": "0a0b0c01"},
            {"id": "ns-1", "kind": "street_light", "link": "lorawan", "dev_eui": "70b3d57ed0000001"},
            {"id": "rain-1", "kind": "rain_gauge", "link": "serial", "port": "rg15"},
        ],
    }


def edited(*edits: tuple[tuple[Any, ...], Any]) -> dict[str, Any]:
    """The base config with each (path, value) set (or deleted, for DELETE)."""
    data = base()
    for path, value in edits:
        target: Any = data
        for step in path[:-1]:
            target = target[step]
        if value is DELETE:
            del target[path[-1]]
        else:
            target[path[-1]] = value
    return data


def parse(data: dict[str, Any], d: Path, files: bool = True) -> GatewayConfig:
    return parse_config(data, "gw.toml", base_dir=d, files=files)


def test_the_base_config_parses_into_edge_devices_with_upper_case_addresses(d: Path) -> None:
    c = parse(base(), d)
    assert c.gateway == "gw-1"
    assert c.devices == (EdgeDevice("light-1", "street_light", "lora", address="0A0B0C01"),
                         EdgeDevice("ns-1", "street_light", "lorawan", dev_eui="70B3D57ED0000001"),
                         EdgeDevice("rain-1", "rain_gauge", "serial", port="rg15"))
    assert c.mqtt == MqttConfig("broker.example", 8883, None, d / "pw", d / "ca.pem")  # TLS port by default
    assert c.queue == QueueConfig(None, max_age=12 * 3600.0)
    assert c.lora == LoraConfig("/dev/ttyUSB0", "rn2483", d / "keys.json")
    assert c.network_server == NetworkServerConfig("chirpstack", "ns.example", "app-1", 10, 1883, None, d / "pw")
    assert c.serial == {"rg15": SerialPortConfig("rg15", "/dev/ttyAMA0", 10.0)}
    assert c.port_map() == {"lora": "/dev/ttyUSB0", "rg15": "/dev/ttyAMA0"}
    assert c.queue_path("/var/lib/x") == Path("/var/lib/x/edge/gw-1.sqlite")
    assert [x.id for x in c.devices_on("serial")] == ["rain-1"] and list(c.devices_by_id()) == ["light-1", "ns-1",
                                                                                                 "rain-1"]
    assert isinstance(GatewayConfigError("x"), ConfigError)  # the CLI turns it into exit status 2


REFUSALS: list[tuple[str, tuple[tuple[tuple[Any, ...], Any], ...], str]] = [
    ("version missing", ((("version",), DELETE),), "gw.toml: 'version': must be 1"),
    ("version 2", ((("version",), 2),), "gw.toml: 'version': must be 1"),
    ("version true", ((("version",), True),), "'version': must be 1"),
    ("gateway id", ((("gateway",), "gw 1"),), "gw.toml: 'gateway': gateway must match"),
    ("gateway missing", ((("gateway",), DELETE),), "'gateway': missing (required)"),
    ("top-level typo", ((("devcies",), []),), "gw.toml: 'devcies': unknown key; did you mean 'devices'?"),
    ("no near key", ((("zzz",), 1),), "'zzz': unknown key; known keys: version, gateway"),
    ("mqtt not a table", ((("mqtt",), "broker"),), "gw.toml: [mqtt]: must be a table"),
    ("mqtt typo", ((("mqtt", "hots"), "x"),), "gw.toml: [mqtt] 'hots': unknown key; did you mean 'host'?"),
    ("mqtt password", ((("mqtt", "password"), "x"),), "[mqtt] 'password': a password does not belong"),
    ("mqtt host missing", ((("mqtt", "host"), DELETE),), "[mqtt] 'host': missing (required)"),
    ("mqtt host empty", ((("mqtt", "host"), " "),), "[mqtt] 'host': must be a non-empty string"),
    ("mqtt port range", ((("mqtt", "port"), 70000),), "[mqtt] 'port': must be an integer 1-65535, got 70000"),
    ("mqtt port text", ((("mqtt", "port"), "1883"),), "[mqtt] 'port': must be an integer 1-65535"),
    ("mqtt username type", ((("mqtt", "username"), 5),), "[mqtt] 'username': must be a non-empty string"),
    ("queue typo", ((("queue", "max_reading"), 5),), "[queue] 'max_reading': unknown key; did you mean "
                                                     "'max_readings'?"),
    ("queue max_readings 0", ((("queue", "max_readings"), 0),), "[queue] 'max_readings': must be an integer 1-"),
    ("queue max_age words", ((("queue", "max_age"), "7 weeks"),), "[queue] 'max_age': must be a duration such as"),
    ("queue max_age 0", ((("queue", "max_age"), 0),), "[queue] 'max_age': must be more than 0 seconds"),
    ("queue flush negative", ((("queue", "flush_interval"), -1),), "[queue] 'flush_interval': must be more than 0"),
    ("queue flush bool", ((("queue", "flush_interval"), True),), "[queue] 'flush_interval': must be a duration"),
    ("queue flush inf", ((("queue", "flush_interval"), float("inf")),), "[queue] 'flush_interval': must be more"),
    ("lora modem", ((("lora", "modem"), "sx1276"),), "[lora] 'modem': must be one of 'rn2483', 'rak3172'"),
    ("lora keys missing", ((("lora", "keys"), DELETE),), "[lora] 'keys': missing (required)"),
    ("lora port missing", ((("lora", "port"), DELETE),), "[lora] 'port': missing (required)"),
    ("ns type", ((("network_server", "type"), "kpn"),), "[network_server] 'type': must be one of 'chirpstack', 'tts'"),
    ("ns fport 0", ((("network_server", "downlink_fport"), 0),), "[network_server] 'downlink_fport': must be an "
                                                                 "integer 1-223"),
    ("ns fport 224", ((("network_server", "downlink_fport"), 224),), "'downlink_fport': must be an integer 1-223"),
    ("ns fport missing", ((("network_server", "downlink_fport"), DELETE),), "'downlink_fport': missing"),
    ("ns application topic", ((("network_server", "application"), "a/b"),), "[network_server] 'application': must "
                                                                            "not contain '/'"),
    ("ns password", ((("network_server", "password"), "x"),), "[network_server] 'password': a password does not"),
    ("serial not tables", ((("serial",), ["rg15"]),), "gw.toml: [serial]: must be a table"),
    ("serial typo", ((("serial", "rg15", "baud"), 9600),), "[serial.rg15] 'baud': unknown key; known keys: path, "
                                                          "poll_interval"),
    ("serial path missing", ((("serial", "rg15", "path"), DELETE),), "[serial.rg15] 'path': missing"),
    ("serial poll", ((("serial", "rg15", "poll_interval"), "often"),), "[serial.rg15] 'poll_interval': must be a "
                                                                      "duration"),
    ("serial named lora", ((("serial", "lora"), {"path": "/dev/x"}),), "[serial.lora]: 'lora' is the LoRa modem's"),
    ("serial name", ((("serial", "a b"), {"path": "/dev/x"}),), '[serial."a b"]: a port name must match'),
    ("devices a table", ((("devices",), {"id": "x"}),), "gw.toml: [[devices]]: must be an array of tables"),
    ("device not a table", ((("devices", 0), "light-1"),), "gw.toml: [[devices]] #1: must be a table"),
    ("device typo", ((("devices", 0, "adress"), "0A0B0C01"),), "[[devices]] #1 'adress': unknown key; did you mean "
                                                               "'address'?"),
    ("device id missing", ((("devices", 1, "id"), DELETE),), "[[devices]] #2 'id': missing (required)"),
    ("device id bad", ((("devices", 1, "id"), "ns 1"),), "[[devices]] #2 'id': id must match"),
    ("device kind", ((("devices", 0, "kind"), "lamp"),), "[[devices]] #1 (id 'light-1') 'kind': unknown kind 'lamp'"),
    ("device link", ((("devices", 0, "link"), "wifi"),), "[[devices]] #1 (id 'light-1') 'link': must be one of"),
    ("address short", ((("devices", 0, "address"), "0A0B0C0"),), "#1 (id 'light-1') 'address': must be 8 hex digits"),
    ("address not hex", ((("devices", 0, "address"), "0A0B0C0G"),), "'address': must be 8 hex digits"),
    ("address missing", ((("devices", 0, "address"), DELETE),), "#1 (id 'light-1') 'address': missing"),
    ("dev_eui short", ((("devices", 1, "dev_eui"), "70B3D57ED000001"),), "#2 (id 'ns-1') 'dev_eui': must be 16 hex"),
    ("port on lora", ((("devices", 0, "port"), "rg15"),), "#1 (id 'light-1') 'port': does not apply to a lora "
                                                          "device (it takes address, decoder)"),
    ("address on serial", ((("devices", 2, "address"), "0A0B0C09"),), "#3 (id 'rain-1') 'address': does not apply"),
    ("dev_eui on lora", ((("devices", 0, "dev_eui"), "70B3D57ED0000009"),), "'dev_eui': does not apply to a lora"),
    ("duplicate id", ((("devices", 1, "id"), "light-1"),), "[[devices]] #2 (id 'light-1') 'id': duplicate device id"),
    ("duplicate address", ((("devices", 1), {"id": "light-2", "kind": "occupancy", "link": "lora",
                                             "address": "0A0B0C01"}),),
     "#2 (id 'light-2') 'address': 0A0B0C01 is used twice (also by device 'light-1')"),
    ("duplicate address case", ((("devices", 1), {"id": "light-2", "kind": "occupancy", "link": "lora",
                                                  "address": "0a0B0c01"}),), "'address': 0A0B0C01 is used twice"),
    ("duplicate dev_eui", ((("devices", 0), {"id": "ns-0", "kind": "street_light", "link": "lorawan",
                                             "dev_eui": "70B3D57ED0000001"}),),
     "#2 (id 'ns-1') 'dev_eui': 70B3D57ED0000001 is used twice (also by device 'ns-0')"),
    ("serial port unknown", ((("devices", 2, "port"), "rg16"),), "#3 (id 'rain-1') 'port': 'rg16' has no "
                                                                 "[serial.rg16] table (tables: [serial.rg15])"),
    ("serial port shared", ((("devices", 1), {"id": "rain-2", "kind": "rain_gauge", "link": "serial",
                                              "port": "rg15"}),), "#3 (id 'rain-1') 'port': serial port 'rg15' is "
                                                                  "already device 'rain-2'"),
    ("serial kind", ((("devices", 2, "kind"), "street_light"),), "#3 (id 'rain-1') 'kind': a serial device must be "
                                                                 "one of rain_gauge"),
    ("decoder on serial", ((("devices", 2, "decoder"), "street_light"),), "#3 (id 'rain-1') 'decoder': does not "
                                                                          "apply to a serial device"),
    ("lora without [lora]", ((("lora",), DELETE),), "#1 (id 'light-1') 'link': a lora device needs the [lora] table"),
    ("lorawan without ns", ((("network_server",), DELETE),), "#2 (id 'ns-1') 'link': a lorawan device needs the "
                                                            "[network_server] table"),
    ("decoder unknown", ((("devices", 0, "decoder"), "foo"),), "#1 (id 'light-1') 'decoder': no uplink layout 'foo'"),
    ("decoder of another kind", ((("devices", 0, "decoder"), "occupancy"),),
     "#1 (id 'light-1') 'decoder': layout 'occupancy' yields count, presence, which a street_light does not have"),
    ("kind without a layout", ((("devices", 0, "kind"), "rain_gauge"),), "#1 (id 'light-1') 'kind': no uplink layout "
                                                                         "'rain_gauge'"),
    ("tts id on chirpstack", ((("devices", 1, "tts_device_id"), "lamp-7"),),
     "#2 (id 'ns-1') 'tts_device_id': applies to lorawan devices with [network_server] type = \"tts\" only"),
    ("tts id format", ((("network_server", "type"), "tts"), (("devices", 1, "tts_device_id"), "Lamp_7")),
     "#2 (id 'ns-1') 'tts_device_id': must be 2-36 lower-case letters"),
]


@pytest.mark.parametrize(("edits", "message"), [(e, m) for _, e, m in REFUSALS], ids=[n for n, _, _ in REFUSALS])
def test_each_bad_value_is_refused_naming_the_file_table_and_key(d: Path, edits: Any, message: str) -> None:
    with pytest.raises(GatewayConfigError, match=re.escape(message)):
        parse(edited(*edits), d)


def test_tts_device_ids_are_kept_and_defaulted(d: Path) -> None:
    c = parse(edited((("network_server", "type"), "tts"), (("devices", 1, "tts_device_id"), "lamp-7"),
                     (("devices", 0), {"id": "ns-2", "kind": "street_light", "link": "lorawan",
                                       "dev_eui": "70B3D57ED00000AB"})), d)
    devices = c.devices_by_id()
    assert c.tts_device_id(devices["ns-1"]) == "lamp-7"
    assert c.tts_device_id(devices["ns-2"]) == "eui-70b3d57ed00000ab"


def test_decoders_that_fit_the_kind_are_accepted(d: Path) -> None:
    c = parse(edited((("devices", 0, "decoder"), "street_light")), d)
    assert c.devices[0].layout == "street_light"


# --- files ---------------------------------------------------------------------------------------


def test_relative_paths_are_relative_to_the_config_file_and_absolute_ones_kept(d: Path, tmp_path_factory) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    KeyRing.generate().save(elsewhere / "k.json")
    path = d / "gw.toml"
    path.write_text(render_config(parse(edited((("lora", "keys"), str(elsewhere / "k.json"))), d))
                    .replace(str(d / "pw"), "pw").replace(str(d / "ca.pem"), "ca.pem"))
    assert '"pw"' in path.read_text()
    c = load_config(path)
    assert c.mqtt is not None and c.mqtt.password_file == d / "pw" and c.mqtt.ca_file == d / "ca.pem"
    assert c.lora is not None and c.lora.keys == elsewhere / "k.json"


@pytest.mark.parametrize(("damage", "message"), [
    (lambda d: (d / "keys.json").unlink(), "gw.toml: [lora] 'keys': {d}/keys.json: No such file or directory"),
    (lambda d: (d / "keys.json").chmod(0o644), "[lora] 'keys': {d}/keys.json is open to group or others (mode 644)"),
    (lambda d: (d / "keys.json").chmod(0o620), "[lora] 'keys': {d}/keys.json is open to group or others (mode 620)"),
    (lambda d: _secret(d / "keys.json", "{"), "[lora] 'keys': LoRa key file {d}/keys.json is not JSON"),
    (lambda d: KeyRing(devices={"0A0B0C02": bytes(16)}).save(d / "keys.json"),
     "[lora] 'keys': {d}/keys.json has no key (and no master) for light-1 (0A0B0C01)"),
    (lambda d: (d / "pw").unlink(), "gw.toml: [mqtt] 'password_file': {d}/pw: No such file or directory"),
    (lambda d: (d / "pw").chmod(0o640), "[mqtt] 'password_file': {d}/pw is open to group or others (mode 640); "
                                        "chmod 600"),
    (lambda d: _secret(d / "pw", "\n"), "[mqtt] 'password_file': {d}/pw is empty"),
    (lambda d: ((d / "pw").unlink(), (d / "pw").mkdir()), "[mqtt] 'password_file': {d}/pw is not a regular file"),
    (lambda d: (d / "ca.pem").write_text("not a certificate"), "[mqtt] 'ca_file': {d}/ca.pem holds no PEM "
                                                               "certificate"),
    (lambda d: (d / "ca.pem").unlink(), "[mqtt] 'ca_file': {d}/ca.pem: No such file or directory"),
])
def test_the_files_it_names_are_checked_at_load(d: Path, damage: Any, message: str) -> None:
    parse(base(), d)  # fine before the damage
    damage(d)
    with pytest.raises(GatewayConfigError, match=re.escape(message.format(d=d))):
        parse(base(), d)
    parse(base(), d, files=False)  # a generator for another machine does not look at them


def test_the_network_servers_password_file_is_checked_too(d: Path) -> None:
    _secret(d / "ns-pw", "x").chmod(0o604)
    with pytest.raises(GatewayConfigError, match=re.escape("[network_server] 'password_file': ")):
        parse(edited((("network_server", "password_file"), "ns-pw")), d)


def test_load_config_names_the_file_for_toml_and_read_errors(d: Path) -> None:
    bad = d / "gw.toml"
    bad.write_text('version = 1\ngateway = "gw-1\n')
    with pytest.raises(GatewayConfigError, match=rf"gateway config {re.escape(str(bad))} is not valid TOML: .*line 2"):
        load_config(bad)
    with pytest.raises(GatewayConfigError, match=r"gateway config .*missing.toml: No such file"):
        load_config(d / "missing.toml")
    bad.write_bytes(b"version = 1\n\xff")
    with pytest.raises(GatewayConfigError, match=r"gw.toml: .*utf-8"):
        load_config(bad)


# --- MQTT settings ------------------------------------------------------------------------------


def test_mqtt_settings_come_from_the_file_with_the_password_file_read(d: Path) -> None:
    s = mqtt_settings(parse(base(), d))
    assert (s.host, s.port, s.username, s.password, s.tls_ca) == ("broker.example", 8883, "gw-1", "s3cret",
                                                                   str(d / "ca.pem"))
    s = mqtt_settings(parse(edited((("mqtt", "username"), "other"), (("mqtt", "port"), 1884)), d))
    assert (s.username, s.port) == ("other", 1884)


def test_without_an_mqtt_table_the_environment_is_used(d: Path) -> None:
    c = parse(edited((("mqtt",), DELETE)), d)
    s = mqtt_settings(c, {"SMARTCITY_MQTT_HOST": "envhost", "SMARTCITY_MQTT_PASSWORD": "p"})
    assert (s.host, s.port, s.username, s.password) == ("envhost", 1883, "gw-1", "p")


# --- writing and reading back --------------------------------------------------------------------


def test_render_then_parse_gives_the_same_config(d: Path) -> None:
    c = parse(edited((("network_server", "type"), "tts"), (("devices", 1, "tts_device_id"), "lamp-7"),
                     (("devices", 0, "decoder"), "street_light"), (("queue", "flush_interval"), 0.25),
                     (("queue", "max_age"), 5400), (("queue", "path"), "q/gw.sqlite"),
                     (("serial", "rg15", "poll_interval"), "90s"),
                     (("serial", "rg.2"), {"path": 'C:\\odd "path"\tü\x7f', "poll_interval": 1.5})), d)
    text = render_config(c, header="generated for a test\nsecond line")
    assert text.startswith("# generated for a test\n# second line\n")
    assert '[serial."rg.2"]' in text and 'max_age = "90m"' in text and "flush_interval = 0.25" in text
    assert parse_config(tomllib.loads(text), "rendered", files=False) == c


def test_render_of_a_minimal_config_round_trips() -> None:
    c = GatewayConfig("gw-2")
    assert parse_config(tomllib.loads(render_config(c)), "rendered") == c


@given(st.text(max_size=40))
def test_toml_strings_hold_any_text(text: str) -> None:
    assert tomllib.loads(f"k = {toml_string(text)}")["k"] == text


@given(st.floats(min_value=0.001, max_value=1e9, allow_nan=False) | st.integers(1, 10**9).map(float))
def test_durations_render_to_what_parses_back(seconds: float) -> None:
    assert parse_duration(tomllib.loads(f"k = {format_duration(seconds)}")["k"]) == seconds


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90.0), ("10m", 600.0), ("12h", 43200.0), ("7d", 604800.0),
                                                ("1.5h", 5400.0), (30, 30.0), (0.5, 0.5)])
def test_duration_forms(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


# --- from the registry and the command line ----------------------------------------------------


def test_config_from_registry_on_the_demo_city_matches_the_registry() -> None:
    registry = load_registry(demo_registry_path())
    ports = {"lora": "/dev/pts/7", "rg15": "/dev/pts/8"}
    ns = NetworkServerConfig("chirpstack", "127.0.0.1", "smartcity-gw-vs-01", 10)  # the city has lorawan lights
    c = config_from_registry(registry, "gw-vs-01", ports, lora_modem="rak3172", lora_keys="/k.json",
                             state_dir="/var/lib/sc", queue_max_readings=5, queue_max_age=60.0, flush_interval=0.5,
                             poll_interval=2.0, network_server=ns)
    assert c.devices == tuple(EdgeDevice.of(x) for x in registry.devices_of("gw-vs-01"))
    assert c.network_server == ns and len(c.devices_on("lorawan")) == 2
    assert c.lora == LoraConfig("/dev/pts/7", "rak3172", Path("/k.json"))
    assert c.serial == {"rg15": SerialPortConfig("rg15", "/dev/pts/8", 2.0)}
    assert c.queue == QueueConfig(Path("/var/lib/sc/edge/gw-vs-01.sqlite"), 5, 60.0, 0.5)
    assert c.port_map() == ports and c.mqtt is None
    assert parse_config(tomllib.loads(render_config(c)), "rendered", files=False) == c


@pytest.mark.parametrize(("gateway", "ports", "keys", "modem", "message"), [
    ("gw-nope", {"lora": "/dev/x", "rg15": "/dev/y"}, "/k", "rn2483", "gateway 'gw-nope' is not in the registry"),
    ("gw-vs-01", {"rg15": "/dev/y"}, "/k", "rn2483", "has LoRa devices but no 'lora' port (give --port lora="),
    ("gw-vs-01", {"lora": "/dev/x", "rg15": "/dev/y"}, None, "rn2483", "give --lora-keys FILE"),
    ("gw-vs-01", {"lora": "/dev/x", "rg15": "/dev/y"}, "/k", "sx1276", "LoRa modem must be one of rn2483, rak3172"),
    ("gw-vs-01", {"lora": "/dev/x"}, "/k", "rn2483", "device 'vs-rg-001' 'port': 'rg15' has no [serial.rg15] table"),
])
def test_config_from_registry_refuses_what_the_agent_could_not_run(gateway: str, ports: dict[str, str],
                                                                   keys: str | None, modem: str, message: str) -> None:
    registry = load_registry(demo_registry_path())
    with pytest.raises(GatewayConfigError, match=re.escape(message)):
        config_from_registry(registry, gateway, ports, lora_keys=keys, lora_modem=modem)


def test_config_from_registry_refuses_bad_queue_numbers() -> None:
    registry = load_registry(demo_registry_path())
    ports = {"lora": "/dev/x", "rg15": "/dev/y"}
    with pytest.raises(GatewayConfigError, match="queue max age must be more than 0 s"):
        config_from_registry(registry, "gw-vs-01", ports, lora_keys="/k", queue_max_age=0)
    with pytest.raises(GatewayConfigError, match="queue max readings must be >= 1"):
        config_from_registry(registry, "gw-vs-01", ports, lora_keys="/k", queue_max_readings=0)


# --- the sample ----------------------------------------------------------------------------------


def test_the_sample_config_is_valid_with_its_files_in_place(tmp_path: Path) -> None:
    # Its file paths are relative to its directory, so a copy next to test files is the real thing.
    sample = tmp_path / "gateway.toml"
    shutil.copy(SAMPLE, sample)
    _secret(tmp_path / "mqtt-password", "pw\n")
    _secret(tmp_path / "chirpstack-password", "pw\n")
    (tmp_path / "ca.crt").write_bytes(_pem())
    (tmp_path / "chirpstack-ca.crt").write_bytes(_pem())
    KeyRing.generate().save(tmp_path / "lora-keys.json")
    c = load_config(sample)
    assert c.gateway == "gw-vs-01" and c.lora is not None and c.network_server is not None and c.mqtt is not None
    assert {d.link for d in c.devices} == {"lora", "lorawan", "serial"}
    assert c.queue.path == Path("/var/lib/smartcity-edge/edge/gw-vs-01.sqlite")  # the unit's StateDirectory
    # The demo registry's devices of this gateway are the sample's (its lorawan device is extra).
    registry = load_registry(demo_registry_path())
    for d in c.devices:
        if d.id in registry.devices:
            assert EdgeDevice.of(registry.devices[d.id]) == EdgeDevice(d.id, d.kind, d.link, d.address, d.dev_eui,
                                                                        d.port)


def test_the_sample_documents_every_key_and_comments_every_setting() -> None:
    text = SAMPLE.read_text()
    data = tomllib.loads(text)
    for table, keys in TABLE_KEYS.items():
        for key in keys:
            assert re.search(rf"\b{key}\b", text), f"the sample never mentions {table} key {key!r}"
    for table in ("mqtt", "queue", "lora", "network_server"):
        assert table in data, f"the sample lacks [{table}]"
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith("#") and not line.startswith(
                ("id =", "kind =", "link =", "address =", "dev_eui =", "port = \"rg15\"")):
            assert "#" in line, f"setting without a comment: {line!r}"


def test_the_sample_with_a_typo_is_refused(tmp_path: Path) -> None:
    sample = tmp_path / "gateway.toml"
    sample.write_text(SAMPLE.read_text().replace("flush_interval =", "flush_intervall ="))
    with pytest.raises(GatewayConfigError, match=re.escape("[queue] 'flush_intervall': unknown key; did you mean "
                                                           "'flush_interval'?")):
        load_config(sample, files=False)

