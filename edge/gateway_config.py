"""The per-gateway config file (TOML): which ports and LoRa addresses carry which devices, and how to reach
the broker, validated in full before the agent starts.

A gateway in a street cabinet needs no registry: this file says everything its agent needs.
``deploy/samples/gateway.toml`` is the annotated reference; in short::

    version = 1                      # format version; this agent reads 1
    gateway = "gw-vs-01"             # this gateway's id (topics; MQTT user name unless [mqtt].username)

    [mqtt]                           # optional: without it the SMARTCITY_MQTT_* environment is used
    host = "mqtt.gemeente.example"   # required in the table
    port = 8883                      # default 1883, or 8883 when ca_file is given
    username = "gw-vs-01"            # default: the gateway id
    password_file = "mqtt-password"  # a file only the agent can read (0600); never the password itself
    ca_file = "/etc/ssl/certs/ca-certificates.crt"   # PEM CA bundle; giving one turns TLS on

    [queue]                          # optional, every key has a default
    path = "/var/lib/smartcity-edge/edge/gw-vs-01.sqlite"   # default <state dir>/edge/<gateway>.sqlite
    max_readings = 1000000           # readings kept through an outage before the oldest go (counted)
    max_age = "7d"                   # how long a reading may wait for the broker
    flush_interval = "1s"            # time between uplink batches

    [lora]                           # required when a device has link = "lora"
    port = "/dev/serial/by-id/usb-RAKwireless_RAK3172-if00"   # the modem's serial port
    modem = "rak3172"                # or "rn2483"
    keys = "lora-keys.json"          # the nodes' key file (edge/lora_keys.py), 0600

    [network_server]                 # required when a device has link = "lorawan"
    type = "chirpstack"              # or "tts" (The Things Stack v3)
    host = "chirpstack.gemeente.example"   # its MQTT broker; port, username, password_file, ca_file
    application = "7d0c1b32-..."     # ChirpStack application ID, or TTS "app@tenant"
    downlink_fport = 10              # the port the devices take commands on (1-223)

    [serial.rg15]                    # one table per serial port name
    path = "/dev/ttyAMA0"
    poll_interval = "10s"            # default 10 s

    [[devices]]                      # one table per device
    id = "vs-sl-001"                 # the registry's device id
    kind = "street_light"            # a kind of core.kinds
    link = "lora"                    # "lora" + address, "lorawan" + dev_eui, "serial" + port
    address = "26011F01"             # 8 hex digits (LoRa P2P), dev_eui: 16 hex digits
    decoder = "street_light"         # optional uplink layout (edge.device_codecs); default: the kind's
    # tts_device_id = "lamp-7"       # lorawan on TTS only; default "eui-<dev_eui in lower case>"

Durations are numbers of seconds or strings such as ``"90s"``, ``"10m"``, ``"12h"``, ``"7d"``. Relative
file paths are relative to the config file's directory. A bad file fails the start with a
``GatewayConfigError`` naming the file, the table and the key; an unknown key is refused with the
nearest known one ("did you mean"). Files the config names are checked at load: the key file and the
password files must be readable by the agent and by nobody else (mode 0600), the key file must hold a
key for every LoRa device, a CA file must be PEM. Serial device paths are not checked: a USB modem may
appear after the agent starts, and its port retries in the background.

``config_from_registry`` builds the same object from the registry and the older command-line port map,
``render_config`` writes it back as TOML (``parse_config(tomllib.loads(render_config(c)), source) == c``).
"""

from __future__ import annotations

import difflib
import math
import os
import re
import stat
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from core.kinds import KINDS
from core.registry import Registry
from core.settings import MqttSettings, mqtt_from_env
from core.topics import ID_PATTERN, TopicError, check_id
from edge.device_codecs import UPLINK_LAYOUT
from edge.durable_queue import DEFAULT_MAX_AGE, DEFAULT_MAX_READINGS
from edge.edge_device import EdgeDevice
from edge.lora_keys import KeyFileError, KeyRing
from edge.network_server import DOWNLINK_FPORT_MAX, FLAVOURS, tts_default_device_id

CONFIG_VERSION = 1
LORA_MODEMS = ("rn2483", "rak3172")  # the drivers edge.agent has for the 'lora' port
LORA_PORT = "lora"  # the modem's name in a port map (--port lora=/dev/ttyX)
LINKS = ("lora", "lorawan", "serial")
# Every serial device is read by the RG-15 driver today; another serial protocol adds its kind here.
SERIAL_KINDS = frozenset({"rain_gauge"})
DEFAULT_FLUSH_INTERVAL = 1.0
DEFAULT_POLL_INTERVAL = 10.0
MQTT_PORT, MQTTS_PORT = 1883, 8883

_HEX8 = re.compile(r"[0-9A-Fa-f]{8}", re.ASCII)
_HEX16 = re.compile(r"[0-9A-Fa-f]{16}", re.ASCII)
_DURATION = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([smhd])\s*", re.ASCII)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)
# A TTS device ID: lower-case letters, digits and dashes (the console's rule), at most 36 characters.
_TTS_ID = re.compile(r"[a-z0-9](?:[-]?[a-z0-9]){1,35}", re.ASCII)


class GatewayConfigError(ConfigError):
    """A gateway config that cannot be used; the message names the file, the table and the key."""


@dataclass(frozen=True, slots=True)
class MqttConfig:
    """The platform's broker, when the file names it (else the SMARTCITY_MQTT_* environment applies)."""

    host: str
    port: int = MQTT_PORT
    username: str | None = None  # None: the gateway id
    password_file: Path | None = None
    ca_file: Path | None = None  # PEM; TLS is on when given


@dataclass(frozen=True, slots=True)
class QueueConfig:
    """The durable queue (edge.durable_queue) and the uplink's pace."""

    path: Path | None = None  # None: <state dir>/edge/<gateway>.sqlite
    max_readings: int = DEFAULT_MAX_READINGS
    max_age: float = DEFAULT_MAX_AGE  # seconds
    flush_interval: float = DEFAULT_FLUSH_INTERVAL  # seconds


@dataclass(frozen=True, slots=True)
class LoraConfig:
    """The gateway's own LoRa modem (point-to-point frames) and the nodes' key file."""

    port: str  # serial device path of the modem
    modem: str  # one of LORA_MODEMS
    keys: Path


@dataclass(frozen=True, slots=True)
class NetworkServerConfig:
    """The LoRaWAN network server whose MQTT integration carries the 'lorawan' devices."""

    type: str  # one of edge.network_server.FLAVOURS
    host: str
    application: str  # ChirpStack application ID, or TTS "app@tenant"
    downlink_fport: int
    port: int = MQTT_PORT
    username: str | None = None
    password_file: Path | None = None
    ca_file: Path | None = None


@dataclass(frozen=True, slots=True)
class SerialPortConfig:
    """A named serial port and how often its device is polled."""

    name: str
    path: str
    poll_interval: float = DEFAULT_POLL_INTERVAL


@dataclass(frozen=True)
class GatewayConfig:
    """Everything one gateway's agent needs; equal configs mean nothing to reconfigure."""

    gateway: str
    devices: tuple[EdgeDevice, ...] = ()
    serial: dict[str, SerialPortConfig] = field(default_factory=dict)
    mqtt: MqttConfig | None = None
    queue: QueueConfig = QueueConfig()
    lora: LoraConfig | None = None
    network_server: NetworkServerConfig | None = None
    tts_device_ids: dict[str, str] = field(default_factory=dict)  # device id -> TTS device ID, when not the default

    def devices_by_id(self) -> dict[str, EdgeDevice]:
        """The devices keyed by id, in file order."""
        return {d.id: d for d in self.devices}

    def devices_on(self, link: str) -> list[EdgeDevice]:
        """The devices of one link ('lora', 'lorawan' or 'serial')."""
        return [d for d in self.devices if d.link == link]

    def port_map(self) -> dict[str, str]:
        """{port name: device path} as the --port options gave it: the modem as 'lora', then the serial ports."""
        ports = {LORA_PORT: self.lora.port} if self.lora else {}
        ports.update({name: s.path for name, s in self.serial.items()})
        return ports

    def queue_path(self, state_dir: str | os.PathLike[str]) -> Path:
        """The queue's file: [queue].path, else <state_dir>/edge/<gateway>.sqlite."""
        return self.queue.path or Path(state_dir) / "edge" / f"{self.gateway}.sqlite"

    def tts_device_id(self, device: EdgeDevice) -> str:
        """The device ID The Things Stack knows a lorawan device by."""
        return self.tts_device_ids.get(device.id) or tts_default_device_id(str(device.dev_eui))


# --- reading tables ----------------------------------------------------------------------------------


def parse_duration(value: object) -> float:
    """Seconds of a duration: a number, or a string "<number><s|m|h|d>"; raises ValueError unless finite and > 0."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"must be a duration such as \"90s\", \"10m\", \"12h\", \"7d\" or seconds, got {value!r}")
    if isinstance(value, str):
        m = _DURATION.fullmatch(value)
        if m is None:
            raise ValueError(f"must be a duration such as \"90s\", \"10m\", \"12h\", \"7d\" or seconds, got {value!r}")
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    else:
        seconds = float(value)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"must be more than 0 seconds, got {value!r}")
    return seconds


class _Table:
    """One TOML table being read: typed getters whose errors name the file, the table and the key."""

    def __init__(self, data: object, where: str, source: str, base_dir: Path | None) -> None:
        self.where = where
        self.source = source
        self.base_dir = base_dir
        if not isinstance(data, dict):
            raise self.error(f"must be a table, got {_show(data)}")
        self.data: dict[str, Any] = data

    def error(self, problem: str, key: str | None = None) -> GatewayConfigError:
        place = f"{self.where} '{key}'" if key else self.where
        return GatewayConfigError(f"{self.source}: {place.strip()}: {problem}")

    def refuse_unknown(self, known: Sequence[str]) -> None:
        """Every key must be one of known; a typo gets the nearest known key as a suggestion."""
        for key in self.data:
            if key not in known:
                near = difflib.get_close_matches(key, known, n=1)
                hint = f"; did you mean '{near[0]}'?" if near else f"; known keys: {', '.join(known)}"
                raise self.error(f"unknown key{hint}", key)

    def refuse_password(self) -> None:
        if "password" in self.data:
            raise self.error("a password does not belong in the config file: put it in a file only the agent "
                             "can read (chmod 600) and name that file with 'password_file'", "password")

    def text(self, key: str, default: str | None = None) -> str:
        value = self.data.get(key, default)
        if value is None:
            raise self.error("missing (required)", key)
        if not isinstance(value, str) or not value.strip():
            raise self.error(f"must be a non-empty string, got {_show(value)}", key)
        return value

    def optional_str(self, key: str) -> str | None:
        return self.text(key) if key in self.data else None

    def choice(self, key: str, choices: Sequence[str], default: str | None = None) -> str:
        value = self.text(key, default)
        if value not in choices:
            raise self.error(f"must be one of {', '.join(repr(c) for c in choices)}, got {value!r}", key)
        return value

    def integer(self, key: str, low: int, high: int, default: int | None = None) -> int:
        value = self.data.get(key, default)
        if value is None:
            raise self.error("missing (required)", key)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.error(f"must be an integer {low}-{high}, got {_show(value)}", key)
        return value

    def duration(self, key: str, default: float) -> float:
        if key not in self.data:
            return default
        try:
            return parse_duration(self.data[key])
        except ValueError as exc:
            raise self.error(str(exc), key) from None

    def path(self, key: str) -> Path:
        path = Path(self.text(key))
        return path if path.is_absolute() or self.base_dir is None else self.base_dir / path

    def optional_path(self, key: str) -> Path | None:
        return self.path(key) if key in self.data else None


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_TOP_KEYS = ("version", "gateway", "mqtt", "queue", "lora", "network_server", "serial", "devices")
_MQTT_KEYS = ("host", "port", "username", "password_file", "ca_file")
_QUEUE_KEYS = ("path", "max_readings", "max_age", "flush_interval")
_LORA_KEYS = ("port", "modem", "keys")
_NS_KEYS = ("type", "host", "port", "username", "password_file", "ca_file", "application", "downlink_fport")
_SERIAL_KEYS = ("path", "poll_interval")
_DEVICE_KEYS = ("id", "kind", "link", "address", "dev_eui", "port", "decoder", "tts_device_id")
# The keys that say where a device is, per link; a key of another link is refused by name.
_LINK_KEYS = {"lora": ("address", "decoder"), "lorawan": ("dev_eui", "decoder", "tts_device_id"), "serial": ("port",)}
# Every key the format has, per table ("" is the top level, "serial" a [serial.NAME] table).
TABLE_KEYS: dict[str, tuple[str, ...]] = {"": _TOP_KEYS, "mqtt": _MQTT_KEYS, "queue": _QUEUE_KEYS, "lora": _LORA_KEYS,
                                          "network_server": _NS_KEYS, "serial": _SERIAL_KEYS, "devices": _DEVICE_KEYS}


def _broker_port(t: _Table) -> int:
    # The IANA ports of MQTT and MQTT over TLS, so that naming a CA file is all TLS needs.
    return t.integer("port", 1, 65535, MQTTS_PORT if "ca_file" in t.data else MQTT_PORT)


def _mqtt(t: _Table) -> MqttConfig:
    t.refuse_password()
    t.refuse_unknown(_MQTT_KEYS)
    return MqttConfig(t.text("host"), _broker_port(t), t.optional_str("username"), t.optional_path("password_file"),
                      t.optional_path("ca_file"))


def _queue(t: _Table) -> QueueConfig:
    t.refuse_unknown(_QUEUE_KEYS)
    return QueueConfig(t.optional_path("path"), t.integer("max_readings", 1, 2**62, DEFAULT_MAX_READINGS),
                       t.duration("max_age", DEFAULT_MAX_AGE), t.duration("flush_interval", DEFAULT_FLUSH_INTERVAL))


def _lora(t: _Table) -> LoraConfig:
    t.refuse_unknown(_LORA_KEYS)
    return LoraConfig(t.text("port"), t.choice("modem", LORA_MODEMS), t.path("keys"))


def _network_server(t: _Table) -> NetworkServerConfig:
    t.refuse_password()
    t.refuse_unknown(_NS_KEYS)
    application = t.text("application")
    if re.search(r"[/+#\x00]", application):
        raise t.error(f"must not contain '/', '+' or '#' (it is a topic level), got {application!r}", "application")
    return NetworkServerConfig(
        t.choice("type", FLAVOURS), t.text("host"), application, t.integer("downlink_fport", 1, DOWNLINK_FPORT_MAX),
        _broker_port(t), t.optional_str("username"), t.optional_path("password_file"), t.optional_path("ca_file"))


def _serial(data: object, source: str) -> dict[str, SerialPortConfig]:
    tables = _Table(data, "[serial]", source, None)
    ports: dict[str, SerialPortConfig] = {}
    for name, table in tables.data.items():
        t = _Table(table, f"[serial.{_key(name)}]", source, None)
        if not ID_PATTERN.match(name):
            raise t.error(f"a port name must match {ID_PATTERN.pattern}")
        if name == LORA_PORT:
            raise t.error(f"'{LORA_PORT}' is the LoRa modem's port name (set in [lora]); name this port otherwise")
        t.refuse_unknown(_SERIAL_KEYS)
        ports[name] = SerialPortConfig(name, t.text("path"), t.duration("poll_interval", DEFAULT_POLL_INTERVAL))
    return ports


def _device(t: _Table) -> tuple[EdgeDevice, str | None]:
    """One [[devices]] table: the device and its TTS device ID if given."""
    t.refuse_unknown(_DEVICE_KEYS)
    try:
        ident = check_id(t.text("id"), "id")
    except TopicError as exc:
        raise t.error(str(exc), "id") from None
    t.where = f"{t.where} (id {ident!r})"
    kind = t.text("kind")
    if kind not in KINDS:
        raise t.error(f"unknown kind {kind!r}; known: {', '.join(sorted(KINDS))}", "kind")
    link = t.choice("link", LINKS)
    for key in t.data:
        if key in _LINK_KEYS["lora"] + _LINK_KEYS["lorawan"] + _LINK_KEYS["serial"] and key not in _LINK_KEYS[link]:
            raise t.error(f"does not apply to a {link} device (it takes {', '.join(_LINK_KEYS[link])})", key)
    address = dev_eui = port = None
    if link == "lora":
        address = t.text("address")
        if not _HEX8.fullmatch(address):
            raise t.error(f"must be 8 hex digits (the node's LoRa address), got {address!r}", "address")
        address = address.upper()
    elif link == "lorawan":
        dev_eui = t.text("dev_eui")
        if not _HEX16.fullmatch(dev_eui):
            raise t.error(f"must be 16 hex digits (the device's DevEUI), got {dev_eui!r}", "dev_eui")
        dev_eui = dev_eui.upper()
    else:
        port = t.text("port")
    tts_id = t.optional_str("tts_device_id")
    if tts_id is not None and not _TTS_ID.fullmatch(tts_id):
        raise t.error("must be 2-36 lower-case letters, digits and single dashes (a TTS device ID), "
                      f"got {tts_id!r}", "tts_device_id")
    return EdgeDevice(ident, kind, link, address, dev_eui, port, t.optional_str("decoder")), tts_id


def _devices(data: object, source: str) -> tuple[list[EdgeDevice], dict[str, str]]:
    if not isinstance(data, list):
        raise GatewayConfigError(f"{source}: [[devices]]: must be an array of tables ([[devices]] blocks), "
                                 f"got {_show(data)}")
    devices: list[EdgeDevice] = []
    tts_ids: dict[str, str] = {}
    for i, table in enumerate(data, start=1):
        device, tts_id = _device(_Table(table, f"[[devices]] #{i}", source, None))
        devices.append(device)
        if tts_id is not None:
            tts_ids[device.id] = tts_id
    return devices, tts_ids


# --- checks across tables ----------------------------------------------------------------------------


def _label_in_file(index: int, device: EdgeDevice) -> str:
    return f"[[devices]] #{index} (id {device.id!r})"


def validate(config: GatewayConfig, source: str,
             label: Callable[[int, EdgeDevice], str] = _label_in_file) -> None:
    """The checks that span tables: unique ids and addresses, links with their tables, decoders, ports.

    label(index from 1, device) names a device in messages (a [[devices]] table by default).
    """
    def fail(i: int, d: EdgeDevice, key: str, problem: str) -> GatewayConfigError:
        return GatewayConfigError(f"{source}: {label(i, d)} '{key}': {problem}")

    owners: dict[tuple[str, str], str] = {}  # (key, value) -> the first device with it
    serial_users: dict[str, str] = {}
    for i, d in enumerate(config.devices, start=1):
        for key, value in (("id", d.id), ("address", d.address), ("dev_eui", d.dev_eui)):
            if value is not None and (key, value) in owners:
                raise fail(i, d, key, f"{value} is used twice (also by device {owners[key, value]!r})"
                           if key != "id" else f"duplicate device id {value!r}")
            if value is not None:
                owners[key, value] = d.id
        if d.link in ("lora", "lorawan"):
            layout = d.layout
            if layout not in UPLINK_LAYOUT:
                key = "decoder" if d.decoder else "kind"
                raise fail(i, d, key, f"no uplink layout {layout!r} to decode a {d.kind} over LoRa; "
                                      f"layouts: {', '.join(sorted(UPLINK_LAYOUT))}")
            foreign = sorted({f.metric for f in UPLINK_LAYOUT[layout].values()} - set(KINDS[d.kind].metrics))
            if foreign:
                raise fail(i, d, "decoder", f"layout {layout!r} yields {', '.join(foreign)}, which a "
                                            f"{d.kind} does not have")
        if d.link == "lora" and config.lora is None:
            raise fail(i, d, "link", "a lora device needs the [lora] table (port, modem, keys)")
        if d.link == "lorawan" and config.network_server is None:
            raise fail(i, d, "link", "a lorawan device needs the [network_server] table")
        if d.id in config.tts_device_ids and (d.link != "lorawan" or config.network_server is None
                                              or config.network_server.type != "tts"):
            raise fail(i, d, "tts_device_id", 'applies to lorawan devices with [network_server] type = "tts" only')
        if d.link == "serial":
            if d.decoder is not None:
                raise fail(i, d, "decoder", "applies to lora and lorawan devices only")
            if d.kind not in SERIAL_KINDS:
                raise fail(i, d, "kind", f"a serial device must be one of {', '.join(sorted(SERIAL_KINDS))} "
                                         f"(the serial protocols this agent speaks), got {d.kind!r}")
            if d.port not in config.serial:
                known = ", ".join(f"[serial.{_key(n)}]" for n in config.serial) or "none"
                raise fail(i, d, "port", f"{d.port!r} has no [serial.{_key(str(d.port))}] table (tables: {known})")
            other = serial_users.setdefault(str(d.port), d.id)
            if other != d.id:
                raise fail(i, d, "port", f"serial port {d.port!r} is already device {other!r}'s "
                                         "(one device per serial port)")
    unknown = sorted(set(config.tts_device_ids) - {d.id for d in config.devices})
    if unknown:
        raise GatewayConfigError(f"{source}: TTS device IDs given for devices it does not have: {', '.join(unknown)}")


def _secret(path: Path, where: str) -> bytes:
    """The content of a file that only the agent may read; raises naming where and what is wrong."""
    try:
        st = path.stat()
    except OSError as exc:
        raise GatewayConfigError(f"{where}: {path}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise GatewayConfigError(f"{where}: {path} is not a regular file")
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise GatewayConfigError(f"{where}: {path} is open to group or others (mode {stat.S_IMODE(st.st_mode):o}); "
                                 "chmod 600 it and make the agent's user its owner")
    return _read(path, where)


def _read(path: Path, where: str) -> bytes:
    try:
        return path.read_bytes()
    except PermissionError as exc:
        raise GatewayConfigError(f"{where}: {path}: {exc.strerror} for uid {os.geteuid()}, the agent's user; "
                                 "it must be owned by that user with mode 0600") from None
    except OSError as exc:
        raise GatewayConfigError(f"{where}: {path}: {exc.strerror}") from None


def _ca(path: Path, where: str) -> None:
    if b"-----BEGIN CERTIFICATE-----" not in _read(path, where):
        raise GatewayConfigError(f"{where}: {path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")


def check_files(config: GatewayConfig, source: str) -> None:
    """Check the files the config names: secrets 0600 and readable, a key for every LoRa node, PEM CA files."""
    for table, broker in (("[mqtt]", config.mqtt), ("[network_server]", config.network_server)):
        if broker is None:
            continue
        if broker.password_file is not None:
            where = f"{source}: {table} 'password_file'"
            if not _secret(broker.password_file, where).strip():
                raise GatewayConfigError(f"{where}: {broker.password_file} is empty")
        if broker.ca_file is not None:
            _ca(broker.ca_file, f"{source}: {table} 'ca_file'")
    if config.lora is not None:
        where = f"{source}: [lora] 'keys'"
        _secret(config.lora.keys, where)
        try:
            ring = KeyRing.load(config.lora.keys)
        except KeyFileError as exc:
            raise GatewayConfigError(f"{where}: {exc}") from None
        missing = [f"{d.id} ({d.address})" for d in config.devices_on("lora") if ring.key_for(str(d.address)) is None]
        if missing:
            raise GatewayConfigError(f"{where}: {config.lora.keys} has no key (and no master) for "
                                     f"{', '.join(missing)}")


# --- entry points ------------------------------------------------------------------------------------


def parse_config(data: Mapping[str, Any], source: str, *, base_dir: Path | None = None,
                 files: bool = True) -> GatewayConfig:
    """A GatewayConfig from parsed TOML; source names the file in messages.

    base_dir: relative file paths are taken relative to it (None: kept as written).
    files: also check the files the config names (check_files); a generator writing a config for
    another machine turns it off.
    """
    top = _Table(dict(data), "", source, base_dir)
    top.refuse_unknown(_TOP_KEYS)
    version = top.data.get("version")
    if version != CONFIG_VERSION or isinstance(version, bool):
        raise top.error(f"must be {CONFIG_VERSION} (the config format this agent reads), got {_show(version)}",
                        "version")
    try:
        gateway = check_id(top.text("gateway"), "gateway")
    except TopicError as exc:
        raise top.error(str(exc), "gateway") from None

    def table(key: str) -> _Table | None:
        return _Table(top.data[key], f"[{key}]", source, base_dir) if key in top.data else None

    mqtt, queue, lora, ns = table("mqtt"), table("queue"), table("lora"), table("network_server")
    devices, tts_ids = _devices(top.data.get("devices", []), source)
    config = GatewayConfig(
        gateway, tuple(devices), _serial(top.data.get("serial", {}), source),
        _mqtt(mqtt) if mqtt else None, _queue(queue) if queue else QueueConfig(),
        _lora(lora) if lora else None, _network_server(ns) if ns else None, tts_ids)
    validate(config, source)
    if files:
        check_files(config, source)
    return config


def load_config(path: str | os.PathLike[str], *, files: bool = True) -> GatewayConfig:
    """Read and validate a gateway config file; raises GatewayConfigError naming the file and the key."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise GatewayConfigError(f"gateway config {p}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise GatewayConfigError(f"gateway config {p} is not valid TOML: {exc}") from None
    return parse_config(data, str(p), base_dir=p.parent.absolute(), files=files)


def config_from_registry(registry: Registry, gateway: str, ports: Mapping[str, str], *,
                         lora_modem: str = "rn2483", lora_keys: str | os.PathLike[str] | None = None,
                         state_dir: str | os.PathLike[str] | None = None,
                         queue_max_readings: int = DEFAULT_MAX_READINGS, queue_max_age: float = DEFAULT_MAX_AGE,
                         flush_interval: float = DEFAULT_FLUSH_INTERVAL,
                         poll_interval: float = DEFAULT_POLL_INTERVAL,
                         mqtt: MqttConfig | None = None,
                         network_server: NetworkServerConfig | None = None) -> GatewayConfig:
    """The config the older command line describes: the registry's devices of gateway, a port map
    {name: path} ('lora' is the modem), the key file and the queue options. Files are not checked
    (KeyRing.load does that when the agent starts); everything else is, as for a file.
    """
    source = f"gateway {gateway} (registry and command line)"
    if gateway not in registry.gateways:
        raise GatewayConfigError(f"{source}: gateway {gateway!r} is not in the registry")
    if lora_modem not in LORA_MODEMS:
        raise GatewayConfigError(f"{source}: LoRa modem must be one of {', '.join(LORA_MODEMS)}: {lora_modem!r}")
    for what, value in (("queue max age", queue_max_age), ("flush interval", flush_interval),
                        ("poll interval", poll_interval)):
        if not math.isfinite(value) or value <= 0:
            raise GatewayConfigError(f"{source}: {what} must be more than 0 s: {value!r}")
    if queue_max_readings < 1:
        raise GatewayConfigError(f"{source}: queue max readings must be >= 1: {queue_max_readings}")
    devices = tuple(EdgeDevice.of(d) for d in registry.devices_of(gateway))
    has_lora = any(d.link == "lora" for d in devices)
    lora = None
    if has_lora and not lora_keys:
        raise GatewayConfigError(f"{source}: gateway {gateway} has LoRa devices: give --lora-keys FILE (or "
                                 "SMARTCITY_LORA_KEYS); unauthenticated frames are never accepted")
    if has_lora and LORA_PORT not in ports:
        raise GatewayConfigError(f"{source}: gateway {gateway} has LoRa devices but no '{LORA_PORT}' port "
                                 f"(give --port {LORA_PORT}=/dev/ttyX)")
    if LORA_PORT in ports and lora_keys:
        lora = LoraConfig(ports[LORA_PORT], lora_modem, Path(lora_keys))
    serial = {name: SerialPortConfig(name, path, poll_interval) for name, path in ports.items() if name != LORA_PORT}
    for name in serial:
        if not ID_PATTERN.match(name):
            raise GatewayConfigError(f"{source}: port name {name!r} must match {ID_PATTERN.pattern}")
    queue = QueueConfig(Path(state_dir) / "edge" / f"{gateway}.sqlite" if state_dir is not None else None,
                        queue_max_readings, float(queue_max_age), float(flush_interval))
    config = GatewayConfig(gateway, devices, serial, mqtt, queue, lora, network_server)

    def label(_i: int, d: EdgeDevice) -> str:
        return f"device {d.id!r}"

    validate(config, source, label)
    return config


def broker_settings(broker: MqttConfig | NetworkServerConfig) -> MqttSettings:
    """How to reach the broker a table names, reading its password file."""
    password = None
    if broker.password_file is not None:
        password = _read(broker.password_file, "'password_file'").decode("utf-8", "replace").strip()
    return MqttSettings(broker.host, broker.port, broker.username, password,
                        str(broker.ca_file) if broker.ca_file else None)


def mqtt_settings(config: GatewayConfig, env: Mapping[str, str] | None = None) -> MqttSettings:
    """How this gateway reaches the broker: [mqtt] if the file has it (reading the password file), else
    the SMARTCITY_MQTT_* environment; the user name defaults to the gateway id either way."""
    settings = mqtt_from_env(env) if config.mqtt is None else broker_settings(config.mqtt)
    settings.username = settings.username or config.gateway
    return settings


# --- writing -----------------------------------------------------------------------------------------

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def toml_string(text: str) -> str:
    """A TOML basic string (double-quoted) holding text exactly."""
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:  # control characters may not appear raw
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _key(name: str) -> str:
    return name if _BARE_KEY.fullmatch(name) else toml_string(name)


def format_duration(seconds: float) -> str:
    """TOML for a duration: "7d", "12h", "10m", "90s" when whole, else the number of seconds."""
    if float(seconds).is_integer():
        whole = int(seconds)
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
            if whole % size == 0:
                return f'"{whole // size}{unit}"'
        return f'"{whole}s"'
    return repr(float(seconds))


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return toml_string(str(value))


def _lines(pairs: Sequence[tuple[str, object]]) -> list[str]:
    return [f"{k} = {_value(v)}" for k, v in pairs if v is not None]


def _broker(b: MqttConfig | NetworkServerConfig) -> list[tuple[str, object]]:
    return [("host", b.host), ("port", b.port), ("username", b.username), ("password_file", b.password_file),
            ("ca_file", b.ca_file)]


def render_config(config: GatewayConfig, *, header: str | None = None) -> str:
    """The config as a TOML file this module reads back to an equal GatewayConfig."""
    out: list[str] = []
    if header:
        out += [f"# {line}".rstrip() for line in header.splitlines()]
    out += [f"version = {CONFIG_VERSION}", f"gateway = {toml_string(config.gateway)}"]
    if config.mqtt:
        out += ["", "[mqtt]", *_lines(_broker(config.mqtt))]
    q = config.queue
    out += ["", "[queue]", *_lines([("path", q.path), ("max_readings", q.max_readings)]),
            f"max_age = {format_duration(q.max_age)}", f"flush_interval = {format_duration(q.flush_interval)}"]
    if config.lora:
        out += ["", "[lora]", *_lines([("port", config.lora.port), ("modem", config.lora.modem),
                                       ("keys", config.lora.keys)])]
    if ns := config.network_server:
        out += ["", "[network_server]", *_lines([("type", ns.type), *_broker(ns), ("application", ns.application),
                                                 ("downlink_fport", ns.downlink_fport)])]
    for name, s in config.serial.items():
        out += ["", f"[serial.{_key(name)}]", f"path = {toml_string(s.path)}",
                f"poll_interval = {format_duration(s.poll_interval)}"]
    for d in config.devices:
        out += ["", "[[devices]]", *_lines([("id", d.id), ("kind", d.kind), ("link", d.link), ("address", d.address),
                                            ("dev_eui", d.dev_eui), ("port", d.port), ("decoder", d.decoder),
                                            ("tts_device_id", config.tts_device_ids.get(d.id))])]
    return "\n".join(out) + "\n"
