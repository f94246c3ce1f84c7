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

import math
import os
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from core.kinds import KINDS
from core.registry import Registry
from core.toml_text import toml_key, toml_string
from core.topics import ID_PATTERN
from edge.device_codecs import UPLINK_LAYOUT
from edge.durable_queue import DEFAULT_MAX_AGE, DEFAULT_MAX_READINGS
from edge.edge_device import EdgeDevice
from edge.gateway_config_files import broker_settings, check_files, mqtt_settings
from edge.gateway_config_model import (
    CONFIG_VERSION,
    DEFAULT_FLUSH_INTERVAL,
    DEFAULT_POLL_INTERVAL,
    LINKS,
    LORA_MODEMS,
    LORA_PORT,
    MQTT_PORT,
    MQTTS_PORT,
    SERIAL_KINDS,
    GatewayConfig,
    GatewayConfigError,
    LoraConfig,
    MqttConfig,
    NetworkServerConfig,
    QueueConfig,
    SerialPortConfig,
)
from edge.gateway_config_render import format_duration, render_config
from edge.gateway_config_tables import TABLE_KEYS, parse_duration, read_tables

# One import for callers; the parts live in gateway_config_{model,tables,files,render}.py.
__all__ = [
    "CONFIG_VERSION",
    "DEFAULT_FLUSH_INTERVAL",
    "DEFAULT_POLL_INTERVAL",
    "LINKS",
    "LORA_MODEMS",
    "LORA_PORT",
    "MQTTS_PORT",
    "MQTT_PORT",
    "SERIAL_KINDS",
    "TABLE_KEYS",
    "GatewayConfig",
    "GatewayConfigError",
    "LoraConfig",
    "MqttConfig",
    "NetworkServerConfig",
    "QueueConfig",
    "SerialPortConfig",
    "broker_settings",
    "check_files",
    "config_from_registry",
    "format_duration",
    "load_config",
    "mqtt_settings",
    "parse_config",
    "parse_duration",
    "render_config",
    "toml_string",
    "validate",
]

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
                known = ", ".join(f"[serial.{toml_key(n)}]" for n in config.serial) or "none"
                raise fail(i, d, "port", f"{d.port!r} has no [serial.{toml_key(str(d.port))}] table (tables: {known})")
            other = serial_users.setdefault(str(d.port), d.id)
            if other != d.id:
                raise fail(i, d, "port", f"serial port {d.port!r} is already device {other!r}'s "
                                         "(one device per serial port)")
    unknown = sorted(set(config.tts_device_ids) - {d.id for d in config.devices})
    if unknown:
        raise GatewayConfigError(f"{source}: TTS device IDs given for devices it does not have: {', '.join(unknown)}")


# --- entry points ------------------------------------------------------------------------------------


def parse_config(data: Mapping[str, Any], source: str, *, base_dir: Path | None = None,
                 files: bool = True) -> GatewayConfig:
    """A GatewayConfig from parsed TOML; source names the file in messages.

    base_dir: relative file paths are taken relative to it (None: kept as written).
    files: also check the files the config names (check_files); a generator writing a config for
    another machine turns it off.
    """
    config = read_tables(data, source, base_dir)
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
        # Absolute, as a config file written from this one (--print-config) must name the same files.
        lora = LoraConfig(ports[LORA_PORT], lora_modem, Path(lora_keys).absolute())
    serial = {name: SerialPortConfig(name, path, poll_interval) for name, path in ports.items() if name != LORA_PORT}
    for name in serial:
        if not ID_PATTERN.match(name):
            raise GatewayConfigError(f"{source}: port name {name!r} must match {ID_PATTERN.pattern}")
    queue = QueueConfig(Path(state_dir).absolute() / "edge" / f"{gateway}.sqlite" if state_dir is not None else None,
                        queue_max_readings, float(queue_max_age), float(flush_interval))
    config = GatewayConfig(gateway, devices, serial, mqtt, queue, lora, network_server)

    def label(_i: int, d: EdgeDevice) -> str:
        return f"device {d.id!r}"

    validate(config, source, label)
    return config
