"""The edge agent of one gateway: its ports, converters, uplink and actuation wired together."""

from __future__ import annotations

import logging
from functools import partial

from core.commands import Command
from core.errors import ConfigError
from core.registry import Registry
from core.senml import Reading
from core.settings import MqttSettings
from edge.actuation import Actuator
from edge.converters import LoraConverter, rg15_readings
from edge.downlinks import CONFIRMING_METRICS, DOWNLINKS
from edge.durable_queue import DurableQueue
from edge.edge_device import EdgeDevice
from edge.lora_frame import encode_downlink
from edge.lora_keys import KeyRing
from edge.rak3172_port import RAK3172Port
from edge.rg15 import RG15Reading
from edge.rg15_port import RG15Port
from edge.rn2483_port import RN2483Port
from edge.uplink import Uplink

log = logging.getLogger(__name__)

LORA_PORT = "lora"
# The LoRa modems a gateway can have on its UART; each driver delivers frames the same way.
LORA_MODEMS: dict[str, type[RN2483Port] | type[RAK3172Port]] = {"rn2483": RN2483Port, "rak3172": RAK3172Port}


class EdgeConfigError(ConfigError):
    """The registry and the port map do not fit together; the message says how."""


class EdgeAgent:
    """Reads every device of one gateway and keeps the platform informed; applies its commands."""

    def __init__(self, gateway: str, registry: Registry, ports: dict[str, str], mqtt_settings: MqttSettings,
                 *, queue: DurableQueue, keys: KeyRing, lora_modem: str = "rn2483", flush_interval: float = 1.0,
                 rg15_poll_interval: float = 10.0, retry_interval: float = 30.0) -> None:
        if gateway not in registry.gateways:
            raise EdgeConfigError(f"gateway {gateway!r} is not in the registry")
        if lora_modem not in LORA_MODEMS:
            raise EdgeConfigError(f"LoRa modem must be one of {', '.join(LORA_MODEMS)}: {lora_modem!r}")
        self.gateway = gateway
        self.devices = {d.id: EdgeDevice.of(d) for d in registry.devices_of(gateway)}
        self.queue = queue
        self.uplink = Uplink(gateway, mqtt_settings, queue, self._on_command, flush_interval=flush_interval)
        self.actuator = Actuator(self.devices, self._transmit, self.uplink.send_ack,
                                 retry_interval=retry_interval)
        lora_devices = [d for d in self.devices.values() if d.link == "lora"]
        self.lora: RN2483Port | RAK3172Port | None = None
        self.keys = keys
        self.converter = LoraConverter(lora_devices, keys, queue.counters())
        if lora_devices:
            if LORA_PORT not in ports:
                raise EdgeConfigError(f"gateway {gateway} has LoRa devices but no '{LORA_PORT}' port "
                                      f"(give --port {LORA_PORT}=/dev/ttyX)")
            self.lora = LORA_MODEMS[lora_modem](ports[LORA_PORT], self._on_frame)
        self.rain_gauges: list[RG15Port] = []
        for d in self.devices.values():
            if d.link == "serial":
                if d.port not in ports:
                    raise EdgeConfigError(f"device {d.id} needs port {d.port!r}, which the port map lacks "
                                          f"(give --port {d.port}=/dev/ttyX)")
                self.rain_gauges.append(RG15Port(ports[str(d.port)], partial(self._on_rain, d),
                                                 poll_interval=rg15_poll_interval))

    def start(self) -> None:
        """Open the ports and connect; everything retries in the background."""
        self.actuator.start()
        self.uplink.start()
        if self.lora:
            self.lora.start()
        for port in self.rain_gauges:
            port.start()
        log.info("edge agent %s started: %d devices, %d serial ports", self.gateway, len(self.devices),
                 len(self.rain_gauges) + (1 if self.lora else 0))

    def stop(self) -> None:
        """Close the ports, then flush and disconnect the uplink."""
        for port in self.rain_gauges:
            port.stop()
        if self.lora:
            self.lora.stop()
        self.actuator.stop()
        self.uplink.stop()
        self.queue.close()

    def _on_frame(self, frame: bytes, received: float) -> None:
        readings = self.converter.convert(frame, received)
        if self.converter.last_fcnt is not None:
            # The counter and the readings of one frame are stored in one transaction.
            self.queue.extend(readings, fcnt=self.converter.last_fcnt)
            self._observe(readings)

    def _on_rain(self, device: EdgeDevice, reading: RG15Reading, received: float) -> None:
        self._accept(rg15_readings(device, reading, received))

    def _accept(self, readings: list[Reading]) -> None:
        self.queue.extend(readings)
        self._observe(readings)

    def _observe(self, readings: list[Reading]) -> None:
        for r in readings:
            if r.metric in CONFIRMING_METRICS and isinstance(r.value, float | bool):
                self.actuator.observe(r.device, r.metric, r.value)

    def _on_command(self, command: Command) -> None:
        self.actuator.submit(command)

    def _transmit(self, device: EdgeDevice, command: Command) -> bool:
        if self.lora is None or device.address is None:
            return False
        key = self.keys.key_for(device.address)
        if key is None:
            log.error("device %s: no LoRa key, cannot send it a command", device.id)
            return False
        fcnt = self.queue.next_downlink_counter(device.address)
        # The actuator validated the params against this action before it got here.
        frame = encode_downlink(device.address, fcnt, DOWNLINKS[command.action].payload(command.params), key)
        return self.lora.send(frame, timeout=5.0)
