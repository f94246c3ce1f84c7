"""The edge agent of one gateway: its ports, radio paths, uplink and actuation wired together.

Everything comes from one GatewayConfig (edge.gateway_config). ``reconfigure(new)`` follows a
changed config without a restart: devices are swapped in place (the queue, its counters and
the desired states of devices that stay are kept), and only the ports, modem or network-server
link whose settings changed are restarted. The broker settings and the queue take effect at the
next start (they hold the gateway's identity and its unsent readings).
"""

from __future__ import annotations

import importlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from core.commands import Command
from core.errors import ConfigError
from core.log_limit import LogLimiter
from core.senml import Reading
from core.settings import MqttSettings
from edge import health
from edge.actuation import Actuator
from edge.converters import LoraConverter, rg15_readings
from edge.downlinks import CONFIRMING_METRICS, DOWNLINKS
from edge.durable_queue import DurableQueue
from edge.edge_device import EdgeDevice
from edge.gateway_config import LORA_MODEMS, GatewayConfig, NetworkServerConfig, SerialPortConfig
from edge.lora_frame import encode_downlink
from edge.lora_keys import KeyRing
from edge.modem_port import ModemPort
from edge.rg15 import RG15Reading
from edge.rg15_port import RG15Port
from edge.uplink import Uplink

if TYPE_CHECKING:
    from edge.ns_bridge import NetworkServerBridge

log = logging.getLogger(__name__)



# A modem driver's constructor: (serial device path, on_frame(frame, received)) -> the driver.
ModemDriver = Callable[[str, Callable[[bytes, float], None]], ModemPort[Any]]


def modem_driver(modem: str) -> ModemDriver:
    """The driver class of a LoRa modem named in LORA_MODEMS, imported now.

    Imported when used, as is the network-server bridge: a gateway loads only the code of what it
    has (memory is the scarce part, bench/README.md).
    """
    if modem not in LORA_MODEMS:
        raise EdgeConfigError(f"LoRa modem must be one of {', '.join(LORA_MODEMS)}: {modem!r}")
    module, _, name = LORA_MODEMS[modem].partition(":")
    driver: ModemDriver = getattr(importlib.import_module(module), name)
    return driver
SEND_TIMEOUT = 5.0  # seconds a downlink may take to leave the radio or reach the network server

# Builds the network-server bridge's broker settings from its config (reads its password file).
NsSettings = Callable[[NetworkServerConfig], MqttSettings]


class EdgeConfigError(ConfigError):
    """The config cannot run on this gateway; the message says why."""


@dataclass(frozen=True, slots=True)
class _GaugeKey:
    device: str
    port: SerialPortConfig


class EdgeAgent:
    """Reads every device of one gateway and keeps the platform informed; applies its commands."""

    def __init__(self, config: GatewayConfig, mqtt_settings: MqttSettings, *, queue: DurableQueue, keys: KeyRing,
                 ns_settings: NsSettings | None = None, retry_interval: float = 30.0,
                 status_interval: float = 60.0) -> None:
        self.config = config
        self.gateway = config.gateway
        self.queue = queue
        self.keys = keys
        self._ns_settings = ns_settings
        self._lock = threading.RLock()  # reconfiguration against start/stop
        self._started_at = time.monotonic()
        self._running = False
        self.readings_in = 0
        self.unstored_frames = self.unstored_readings = 0  # received, but the queue could not store them
        self._unstored_log = LogLimiter(60.0)
        self.reconfigurations = 0
        self.devices = config.devices_by_id()
        self.uplink = Uplink(config.gateway, mqtt_settings, queue, self._on_command,
                             flush_interval=config.queue.flush_interval, status_interval=status_interval,
                             health=self.health)
        self.actuator = Actuator(self.devices, self._transmit, self.uplink.send_ack, retry_interval=retry_interval)
        self.converter = LoraConverter(config.devices_on("lora"), keys, queue.counters())
        self.lora: ModemPort[Any] | None = self._modem(config)
        self.bridge: NetworkServerBridge | None = self._bridge(config)
        self.rain_gauges: dict[_GaugeKey, RG15Port] = {k: self._gauge(k) for k in self._gauge_keys(config)}
        # Extra health counters from the owner (e.g. the config watcher's reloads and failures).
        self.extra_health: Callable[[], dict[str, float]] | None = None

    # -- building the parts ---------------------------------------------------------------------------
    def _modem(self, config: GatewayConfig) -> ModemPort[Any] | None:
        if not config.devices_on("lora"):
            return None
        if config.lora is None:
            raise EdgeConfigError(f"gateway {config.gateway} has LoRa devices but no [lora] modem port")
        return modem_driver(config.lora.modem)(config.lora.port, self._on_frame)

    def _bridge(self, config: GatewayConfig) -> NetworkServerBridge | None:
        devices = config.devices_on("lorawan")
        if not devices:
            return None
        ns = config.network_server
        if ns is None or self._ns_settings is None:
            raise EdgeConfigError(f"gateway {config.gateway} has LoRaWAN devices but no [network_server]")
        from edge.ns_bridge import NetworkServerBridge  # noqa: PLC0415 - only gateways with LoRaWAN devices
        return NetworkServerBridge(config.gateway, ns.type, self._ns_settings(ns), ns.application,  # type: ignore[arg-type]
                                   devices, self._on_ns_readings, counters=self.queue.counters(),
                                   downlink_fport=ns.downlink_fport, max_age=self.queue.max_age)

    @staticmethod
    def _gauge_keys(config: GatewayConfig) -> list[_GaugeKey]:
        return [_GaugeKey(d.id, config.serial[str(d.port)]) for d in config.devices_on("serial")]

    def _gauge(self, key: _GaugeKey) -> RG15Port:
        return RG15Port(key.port.path, partial(self._on_rain, key.device), poll_interval=key.port.poll_interval)

    # -- lifecycle ------------------------------------------------------------------------------------
    def start(self) -> None:
        """Open the ports and connect; everything retries in the background."""
        with self._lock:
            self._running = True
            self.actuator.start()
            self.uplink.start()
            if self.lora:
                self.lora.start()
            if self.bridge:
                self.bridge.start()
            for port in self.rain_gauges.values():
                port.start()
        ns = self.config.network_server
        log.info("edge agent %s started: %d devices, %d serial ports%s", self.gateway, len(self.devices),
                 len(self.rain_gauges) + (1 if self.lora else 0),
                 f", network server {ns.type}" if self.bridge and ns else "")

    def stop(self) -> None:
        """Close the ports, then flush and disconnect the uplink."""
        with self._lock:
            self._running = False
            for port in self.rain_gauges.values():
                port.stop()
            if self.lora:
                self.lora.stop()
            if self.bridge:
                self.bridge.stop()
            self.actuator.stop()
            self.uplink.stop()
            self.queue.close()

    # -- following config changes ---------------------------------------------------------------------
    def reconfigure(self, new: GatewayConfig) -> None:
        """Apply a changed config while running; raises EdgeConfigError (changing nothing) if it cannot apply."""
        with self._lock:
            old = self.config
            if new.gateway != old.gateway:
                raise EdgeConfigError(f"the gateway id changed ({old.gateway} -> {new.gateway}): that needs a "
                                      "restart with the new gateway's credentials")
            for what, a, b in (("[mqtt]", old.mqtt, new.mqtt), ("[queue]", old.queue, new.queue)):
                if a != b:
                    log.warning("gateway %s: %s changed; it takes effect at the next restart", self.gateway, what)
            # Build what is new before touching what runs, so a failure leaves the old setup whole.
            modem = self.lora
            if (old.lora, bool(old.devices_on("lora"))) != (new.lora, bool(new.devices_on("lora"))):
                modem = self._modem(new)
            bridge = self.bridge
            if old.network_server != new.network_server or bool(old.devices_on("lorawan")) != bool(
                    new.devices_on("lorawan")):
                bridge = self._bridge(new)
            keys = set(self._gauge_keys(new))
            gauges = {k: self.rain_gauges.get(k) or self._gauge(k) for k in keys}
            # Swap: devices first, so frames arriving meanwhile are read with the new mapping.
            self.config = new
            self.devices = new.devices_by_id()
            self.converter.by_address = {d.address: d for d in new.devices_on("lora") if d.address is not None}
            self.actuator.update_devices(self.devices)
            if modem is not self.lora:
                self._replace("LoRa modem", self.lora, modem)
                self.lora = modem
            if bridge is not self.bridge:
                self._replace("network-server bridge", self.bridge, bridge)
                self.bridge = bridge
            elif bridge is not None:
                bridge.update_devices(new.devices_on("lorawan"))
            for key, port in self.rain_gauges.items():
                if key not in keys:
                    port.stop()
            for key, port in gauges.items():
                if key not in self.rain_gauges and self._running:
                    port.start()
            self.rain_gauges = gauges
            self.reconfigurations += 1
        log.info("gateway %s reconfigured: %d devices (%d LoRa, %d LoRaWAN, %d serial)", self.gateway,
                 len(self.devices), len(new.devices_on("lora")), len(new.devices_on("lorawan")),
                 len(new.devices_on("serial")))

    def _replace(self, what: str, old: ModemPort[Any] | NetworkServerBridge | None,
                 new: ModemPort[Any] | NetworkServerBridge | None) -> None:
        if old is not None:
            old.stop()
        if new is not None and self._running:
            new.start()
        log.info("gateway %s: %s %s", self.gateway, what, "restarted" if old and new else
                 "started" if new else "stopped")

    def use_keys(self, keys: KeyRing) -> None:
        """Use a changed key file from now on (frames already checked are not checked again)."""
        self.keys = keys
        self.converter.keys = keys

    # -- data in --------------------------------------------------------------------------------------
    def _on_frame(self, frame: bytes, received: float) -> None:
        readings = self.converter.convert(frame, received)
        if self.converter.last_fcnt is not None:
            # The counter and the readings of one frame are stored in one transaction.
            self._accept(readings, self.converter.last_fcnt)

    def _on_ns_readings(self, readings: list[Reading], fcnt: tuple[str, int] | None) -> None:
        self._accept(readings, fcnt)

    def _on_rain(self, device_id: str, reading: RG15Reading, received: float) -> None:
        device = self.devices.get(device_id)
        if device is not None:
            self._accept(rg15_readings(device, reading, received))

    def _accept(self, readings: list[Reading], fcnt: tuple[str, int] | None = None) -> None:
        try:
            self.queue.extend(readings, fcnt=fcnt)
        except sqlite3.Error as exc:
            # A full or failing disk: the frame is lost here, after the radio. Counted as a lost frame (and
            # its readings as unstored), so the loss shows in the health counters; never raised into the
            # port's reader, which would only log it.
            self.unstored_frames += 1
            self.unstored_readings += len(readings)
            if self._unstored_log.allow():
                log.error("gateway %s: the queue cannot store readings (%s): %d frames lost so far", self.gateway,
                          exc, self.unstored_frames)
            return
        self.readings_in += len(readings)
        for r in readings:
            if r.metric in CONFIRMING_METRICS and isinstance(r.value, float | bool):
                self.actuator.observe(r.device, r.metric, r.value)

    # -- commands out ---------------------------------------------------------------------------------
    def _on_command(self, command: Command) -> None:
        self.actuator.submit(command)

    def _transmit(self, device: EdgeDevice, command: Command) -> bool:
        # The actuator validated the params against this action before it got here.
        payload = DOWNLINKS[command.action].payload(command.params)
        if device.link == "lorawan":
            bridge = self.bridge
            return bridge is not None and bridge.send(device, payload)
        lora = self.lora
        if lora is None or device.address is None:
            return False
        key = self.keys.key_for(device.address)
        if key is None:
            log.error("device %s: no LoRa key, cannot send it a command", device.id)
            return False
        fcnt = self.queue.next_downlink_counter(device.address)
        return lora.send(encode_downlink(device.address, fcnt, payload, key), timeout=SEND_TIMEOUT)

    # -- health ---------------------------------------------------------------------------------------
    def health(self) -> dict[str, float]:
        """The counters published with the status (edge.health; README "Health counters")."""
        bridge = self.bridge
        serial: list[health.SerialDriver] = list(self.rain_gauges.values())
        if self.lora is not None:
            serial.append(self.lora)
        counters = health.report(self.queue, self.uplink, self.actuator, started=self._started_at,
                                 readings_in=self.readings_in, frame_problems=[dict(self.converter.problems)],
                                 lost_frames=[self.converter.lost_frames, self.unstored_frames], serial=serial)
        counters["readings_unstored"] = float(self.unstored_readings)
        counters["config_reconfigurations"] = self.reconfigurations
        if bridge is not None:
            counters["ns_uplinks"] = bridge.uplinks
            counters["ns_downlinks"] = bridge.downlinks
            counters["ns_lost_frames"] = bridge.lost_frames
            counters["ns_connected"] = int(bridge.connected.is_set())
            for reason, n in bridge.problems.items():
                counters[f"ns_rejected_{reason}"] = n
        if self.extra_health is not None:
            counters.update(self.extra_health())
        return counters
