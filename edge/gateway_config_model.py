"""The gateway config's data model: what a validated config file says (edge.gateway_config reads it)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import ConfigError
from edge.durable_queue import DEFAULT_MAX_AGE, DEFAULT_MAX_READINGS
from edge.edge_device import EdgeDevice
from edge.network_server import tts_default_device_id

CONFIG_VERSION = 1
# The LoRa modems a gateway can have on its 'lora' port, each with its driver ("module:class"), which
# edge.agent imports only when the gateway has that modem.
LORA_MODEMS: dict[str, str] = {"rn2483": "edge.rn2483_port:RN2483Port", "rak3172": "edge.rak3172_port:RAK3172Port"}
LORA_PORT = "lora"  # the modem's name in a port map (--port lora=/dev/ttyX)
LINKS = ("lora", "lorawan", "serial")
# Every serial device is read by the RG-15 driver today; another serial protocol adds its kind here.
SERIAL_KINDS = frozenset({"rain_gauge"})
DEFAULT_FLUSH_INTERVAL = 1.0
DEFAULT_POLL_INTERVAL = 10.0
MQTT_PORT, MQTTS_PORT = 1883, 8883


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
