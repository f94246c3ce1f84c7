"""A whole simulated city built from the asset registry: every gateway's ports and devices.

Per gateway: one pty with an RN2483 (or RAK3172) modem, its Air and one node per LoRa device
(street light, occupancy counter, parking spot, traffic light; if it has any), and one pty with
an RG-15 per serial rain gauge. The edge agent finds the ptys through the port map:
``{gateway: {"lora": path, <device port>: path}}``. Threads: one per firmware (modem, gauge)
and one scheduler per gateway driving its nodes. Each device gets its own random generator
seeded from (seed, device id), so adding a device does not change the others' behaviour.

With a ``network_server`` (NetworkServerOptions) the registry's ``lorawan`` devices are played
too: the same node firmware, on an Air whose receiver is a SimulatedNetworkServer that publishes
their uplinks as ChirpStack v4 or The Things Stack v3 MQTT integration messages (and turns the
downlinks it is sent into node downlinks). There is one server per application; the application
ID may name ``{gateway}``, which gives each gateway's devices an application of their own, so that
a gateway's bridge receives its own devices' uplinks only (a bridge counts any other device's
uplink as ``unknown_device``). A node needs an 8-hex-digit address on its Air and a key: the
address is its DevEUI's last 8 hex digits (checked against every address of the registry), the
key the key ring's for that address; the edge never sees either, as the server opens the frames.
Without a network server the lorawan devices are skipped (logged), as before.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from core.errors import ConfigError
from core.registry import Device, Registry
from core.settings import MqttSettings
from edge.lora_keys import KeyRing
from firmware_sim.air import Air
from firmware_sim.network_server import Flavour, SimulatedNetworkServer
from firmware_sim.occupancy import OccupancyNode
from firmware_sim.parking import ParkingNode
from firmware_sim.pty_port import PtyPort
from firmware_sim.rak3172 import RAK3172Sim
from firmware_sim.rg15 import RG15Sim
from firmware_sim.rn2483 import RN2483Sim
from firmware_sim.runner import Runner
from firmware_sim.street_light import StreetLightNode
from firmware_sim.traffic_light import TrafficLightNode

log = logging.getLogger(__name__)

LORA_PORT = "lora"
LORA_KINDS = ("street_light", "occupancy", "parking_spot", "traffic_light")
# A parking sensor's heartbeat comes this many report intervals apart (real ones: hours vs minutes).
PARKING_HEARTBEATS = 5
SCHEDULER_MAX_SLEEP = 0.05  # bounds how late a node reacts to a downlink-triggered report
GATEWAY_PLACEHOLDER = "{gateway}"  # in a network-server application ID: the gateway's id


class SimulatedCityError(ConfigError):
    """A registry (or options) the simulated city cannot be built from; the message names the device."""


@dataclass(frozen=True, slots=True)
class NetworkServerOptions:
    """The simulated LoRaWAN network server that the registry's lorawan devices reach the platform through."""

    flavour: Flavour  # "chirpstack" (v4) or "tts" (The Things Stack v3)
    settings: MqttSettings  # its broker, and the server's account there
    application: str  # ChirpStack application ID or TTS "app@tenant"; "{gateway}" is replaced per gateway

    def __post_init__(self) -> None:
        # Checked here: a bad ID would otherwise surface as a subscription the broker refuses.
        if self.flavour not in ("chirpstack", "tts"):
            raise SimulatedCityError(f"network server must be chirpstack or tts: {self.flavour!r}")
        if not self.application or any(c in self.application for c in "/+#\x00"):
            raise SimulatedCityError(f"network-server application must be one topic level (no '/', '+', '#'): "
                                     f"{self.application!r}")
        if self.flavour == "tts" and "@" not in self.application:
            raise SimulatedCityError(f"a The Things Stack application is named app@tenant: {self.application!r}")

    def application_of(self, gateway: str) -> str:
        """The application a gateway's devices belong to."""
        return application_of(self.application, gateway)


def application_of(application: str, gateway: str) -> str:
    """application with "{gateway}" replaced by gateway (edge/main.py expands --ns-application alike)."""
    return application.replace(GATEWAY_PLACEHOLDER, gateway)


def lorawan_address(dev_eui: str) -> str:
    """The simulated node's address on its Air: the DevEUI's last 8 hex digits (a LoRaWAN DevAddr is 32 bits)."""
    return dev_eui[-8:].upper()


class Node(Protocol):
    """What the scheduler needs from a LoRa node."""

    @property
    def next_due(self) -> float:
        """The clock time of the next uplink."""

    def step(self, now: float) -> None:
        """Send the uplink if it is due."""


class NodeScheduler:
    """Drives the nodes of one gateway from a single thread."""

    def __init__(self, name: str, nodes: list[Node]) -> None:
        self.nodes = nodes
        self._runner = Runner(name, self._step)

    def start(self) -> None:
        """Run the scheduler thread."""
        self._runner.start()

    def stop(self) -> None:
        """Stop the scheduler thread."""
        self._runner.stop()

    def _step(self) -> None:
        now = time.monotonic()
        for node in self.nodes:
            node.step(now)
        due = min((n.next_due for n in self.nodes), default=now + SCHEDULER_MAX_SLEEP)
        self._runner.stopping.wait(min(SCHEDULER_MAX_SLEEP, max(0.0, due - time.monotonic())))


class SimulatedCity:
    """All simulated firmware of a registry, on real pseudo-terminals."""

    def __init__(
        self,
        registry: Registry,
        *,
        report_interval: float,
        busy_seconds: float,
        quiet_seconds: float,
        seed: int,
        keys: KeyRing,
        lora_modem: str = "rn2483",
        rain_tick: float = 1.0,
        rain_time_scale: float = 1.0,
        rx_queue: int = 4,
        network_server: NetworkServerOptions | None = None,
    ) -> None:
        self.registry = registry
        self.keys = keys
        if lora_modem not in ("rn2483", "rak3172"):
            raise ValueError(f"lora_modem must be rn2483 or rak3172: {lora_modem!r}")
        self.lora_modem = lora_modem
        self.seed = seed
        self.report_interval, self.busy_seconds, self.quiet_seconds = report_interval, busy_seconds, quiet_seconds
        self.rain_tick, self.rain_time_scale, self.rx_queue = rain_tick, rain_time_scale, rx_queue
        self.modems: dict[str, RN2483Sim | RAK3172Sim] = {}
        self.gauges: dict[str, RG15Sim] = {}
        self.street_lights: dict[str, StreetLightNode] = {}
        self.occupancy: dict[str, OccupancyNode] = {}
        self.parking: dict[str, ParkingNode] = {}
        self.traffic_lights: dict[str, TrafficLightNode] = {}
        self.skipped: list[str] = []  # devices this simulator cannot play
        self.network_server = network_server
        self.network_servers: dict[str, SimulatedNetworkServer] = {}  # application -> its server
        self.lorawan_addresses: dict[str, str] = {}  # lorawan device id -> its node's address on the Air
        self._ns_airs: dict[str, Air] = {}  # application -> the Air of its devices
        self._ns_devices: dict[str, dict[str, tuple[str, bytes, str | None]]] = {}  # application -> server's map
        # Every address in use (device id by address): the registry's LoRa devices', then the lorawan nodes'.
        self._addresses = {d.address: d.id for d in registry.devices.values() if d.address is not None}
        self._ports: dict[str, dict[str, PtyPort]] = {}
        self._schedulers: list[NodeScheduler] = []
        self._started = self._stopped = False
        try:
            for gateway in sorted(registry.gateways):
                self._build_gateway(gateway)
            self._build_network_servers()
        except BaseException:
            self._close_ports()
            raise

    def _rng(self, device: Device) -> random.Random:
        return random.Random(f"{self.seed}/{device.id}")

    def _build_gateway(self, gateway: str) -> None:
        ports = self._ports.setdefault(gateway, {})
        devices = sorted(self.registry.devices_of(gateway), key=lambda d: d.id)
        lora = [d for d in devices if d.link == "lora" and d.kind in LORA_KINDS]
        ns = self.network_server
        lorawan = [d for d in devices if d.link == "lorawan" and d.kind in LORA_KINDS] if ns else []
        nodes: list[Node] = []
        if lora:
            air = Air()
            ports[LORA_PORT] = PtyPort(f"{gateway}/{LORA_PORT}")
            modem = RAK3172Sim if self.lora_modem == "rak3172" else RN2483Sim
            self.modems[gateway] = modem(ports[LORA_PORT], air, rx_queue=self.rx_queue)
            for d in lora:
                if d.address is None:  # core.registry guarantees an address for link == lora
                    raise ValueError(f"LoRa device {d.id!r} has no address")
                key = self.keys.key_for(d.address)
                if key is None:
                    raise ValueError(f"LoRa device {d.id!r} has no key in the key ring")
                nodes.append(self._node(d, air, d.address, key))
        if ns is not None:
            nodes.extend(self._lorawan_node(ns, gateway, d) for d in lorawan)
        if nodes:  # one scheduler drives both kinds of node: they are the same firmware
            self._schedulers.append(NodeScheduler(f"sim-nodes:{gateway}", nodes))
        for d in devices:
            if d.link == "serial" and d.kind == "rain_gauge" and d.port is not None:
                if d.port in ports:
                    raise ValueError(f"gateway {gateway!r}: port name {d.port!r} used twice")
                ports[d.port] = PtyPort(f"{gateway}/{d.port}")
                self.gauges[d.id] = RG15Sim(ports[d.port], self._rng(d), tick=self.rain_tick,
                                            time_scale=self.rain_time_scale)
            elif d not in lora and d not in lorawan:
                self.skipped.append(d.id)
                reason = " (no network server given)" if d.link == "lorawan" and d.kind in LORA_KINDS else ""
                log.warning("device %s (%s over %s) is not simulated%s", d.id, d.kind, d.link, reason)

    def _lorawan_node(self, ns: NetworkServerOptions, gateway: str, d: Device) -> Node:
        """A lorawan device's node, on the Air of its application's network server."""
        if d.dev_eui is None:  # core.registry guarantees a DevEUI for link == lorawan
            raise SimulatedCityError(f"LoRaWAN device {d.id!r} has no dev_eui")
        address = lorawan_address(d.dev_eui)
        # Unique in the whole city, not only on its Air: an address names one node in logs and faults.
        other = self._addresses.get(address)
        if other is not None:
            raise SimulatedCityError(
                f"LoRaWAN device {d.id!r}: its simulated node address {address} (the last 8 hex digits of DevEUI "
                f"{d.dev_eui}) is device {other!r}'s address too; change one of them in the registry")
        self._addresses[address] = d.id
        key = self.keys.key_for(address)
        if key is None:
            raise SimulatedCityError(f"LoRaWAN device {d.id!r} (node address {address}) has no key in the key ring")
        application = ns.application_of(gateway)
        air = self._ns_airs.setdefault(application, Air())
        self._ns_devices.setdefault(application, {})[address] = (d.dev_eui, key, None)
        self.lorawan_addresses[d.id] = address
        return self._node(d, air, address, key)

    def _build_network_servers(self) -> None:
        ns = self.network_server
        if ns is None:
            return
        for n, application in enumerate(sorted(self._ns_airs)):
            # A client id per server and process: two servers (or two simulators) must not take
            # over each other's connection.
            self.network_servers[application] = SimulatedNetworkServer(
                ns.flavour, ns.settings, application, self._ns_airs[application], self._ns_devices[application],
                seed=self.seed, client_id=f"sim-ns-{ns.flavour}-{os.getpid()}-{n}")

    def _node(self, d: Device, air: Air, address: str, key: bytes) -> Node:
        rng = self._rng(d)
        if d.kind == "street_light":
            light = self.street_lights[d.id] = StreetLightNode(address, air, rng, key=key,
                                                               report_interval=self.report_interval)
            return light
        if d.kind == "traffic_light":
            junction = self.traffic_lights[d.id] = TrafficLightNode(address, air, rng, key=key,
                                                                    report_interval=self.report_interval)
            return junction
        if d.kind == "parking_spot":
            spot = self.parking[d.id] = ParkingNode(
                address, air, rng, key=key, heartbeat_interval=self.report_interval * PARKING_HEARTBEATS,
                mean_occupied=max(self.busy_seconds, 1.0), mean_free=max(self.quiet_seconds, 1.0),
                debounce=min(1.0, self.report_interval / 4))
            return spot
        counter = self.occupancy[d.id] = OccupancyNode(
            address, air, rng, key=key, report_interval=self.report_interval, busy_seconds=self.busy_seconds,
            quiet_seconds=self.quiet_seconds, phase=rng.uniform(0, self.busy_seconds + self.quiet_seconds))
        return counter

    def start(self) -> None:
        """Start every firmware and scheduler thread."""
        if self._started:
            raise RuntimeError("city already started")
        self._started = True
        for server in self.network_servers.values():
            server.start()
        for modem in self.modems.values():
            modem.start()
        for gauge in self.gauges.values():
            gauge.start()
        for scheduler in self._schedulers:
            scheduler.start()

    def stop(self) -> None:
        """Stop all threads, then close the ptys (the edge sees its devices disappear)."""
        if self._stopped:
            return
        self._stopped = True
        for scheduler in self._schedulers:
            scheduler.stop()
        for modem in self.modems.values():
            modem.stop()
        for gauge in self.gauges.values():
            gauge.stop()
        for server in self.network_servers.values():
            server.stop()
        self._close_ports()

    def _close_ports(self) -> None:
        for ports in self._ports.values():
            for port in ports.values():
                port.close()

    def ports(self) -> dict[str, dict[str, str]]:
        """{gateway id: {port name: pty path}}; "lora" is the modem, serial devices use their port name."""
        return {gw: {name: port.path for name, port in ports.items()} for gw, ports in self._ports.items()}

    def write_port_map(self, path: str | os.PathLike[str]) -> None:
        """Write ports() as JSON, atomically (a reader never sees half a file)."""
        target = Path(path)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(json.dumps(self.ports(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        tmp.replace(target)

    def light_levels(self) -> dict[str, int]:
        """{street-light device id: current dim level %}, for diagnostics."""
        return {device: node.level for device, node in self.street_lights.items()}
