"""Reading the gateway config's TOML tables: every value checked, every error naming file, table and key."""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from core.kinds import KINDS
from core.toml_text import toml_key
from core.topics import ID_PATTERN, TopicError, check_id
from edge.durable_queue import DEFAULT_MAX_AGE, DEFAULT_MAX_READINGS
from edge.edge_device import EdgeDevice
from edge.gateway_config_model import (
    CONFIG_VERSION,
    DEFAULT_FLUSH_INTERVAL,
    DEFAULT_POLL_INTERVAL,
    LINKS,
    LORA_MODEMS,
    LORA_PORT,
    MQTT_PORT,
    MQTTS_PORT,
    GatewayConfig,
    GatewayConfigError,
    LoraConfig,
    MqttConfig,
    NetworkServerConfig,
    QueueConfig,
    SerialPortConfig,
)
from edge.network_server import DOWNLINK_FPORT_MAX, FLAVOURS

_HEX8 = re.compile(r"[0-9A-Fa-f]{8}", re.ASCII)
_HEX16 = re.compile(r"[0-9A-Fa-f]{16}", re.ASCII)
_DURATION = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([smhd])\s*", re.ASCII)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# A TTS device ID: lower-case letters, digits and dashes (the console's rule), at most 36 characters.
_TTS_ID = re.compile(r"[a-z0-9](?:[-]?[a-z0-9]){1,35}", re.ASCII)


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
    return LoraConfig(t.text("port"), t.choice("modem", tuple(LORA_MODEMS)), t.path("keys"))


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
        t = _Table(table, f"[serial.{toml_key(name)}]", source, None)
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


def read_tables(data: Mapping[str, Any], source: str, base_dir: Path | None) -> GatewayConfig:
    """The config the tables of a parsed file describe, each value checked (not yet across tables)."""
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
    return config
