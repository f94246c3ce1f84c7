"""A whole simulated city built from the asset registry: every gateway's ports and devices.

Per gateway: one pty with an RN2483 (or RAK3172) modem, its Air and one node per LoRa device
(street light, occupancy counter, parking spot, traffic light; if it has any), and one pty with
an RG-15 per serial rain gauge. The edge agent finds the ptys through the port map:
``{gateway: {"lora": path, <device port>: path}}``. Threads: one per firmware (modem, gauge)
and one scheduler per gateway driving its nodes. Each device gets its own random generator
seeded from (seed, device id), so adding a device does not change the others' behaviour.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from pathlib import Path
from typing import Protocol

from core.registry import Device, Registry
from edge.lora_keys import KeyRing
from firmware_sim.air import Air
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
        self._ports: dict[str, dict[str, PtyPort]] = {}
        self._schedulers: list[NodeScheduler] = []
        self._started = self._stopped = False
        try:
            for gateway in sorted(registry.gateways):
                self._build_gateway(gateway)
        except BaseException:
            self._close_ports()
            raise

    def _rng(self, device: Device) -> random.Random:
        return random.Random(f"{self.seed}/{device.id}")

    def _build_gateway(self, gateway: str) -> None:
        ports = self._ports.setdefault(gateway, {})
        devices = sorted(self.registry.devices_of(gateway), key=lambda d: d.id)
        lora = [d for d in devices if d.link == "lora" and d.kind in LORA_KINDS]
        if lora:
            air = Air()
            ports[LORA_PORT] = PtyPort(f"{gateway}/{LORA_PORT}")
            modem = RAK3172Sim if self.lora_modem == "rak3172" else RN2483Sim
            self.modems[gateway] = modem(ports[LORA_PORT], air, rx_queue=self.rx_queue)
            nodes: list[Node] = []
            for d in lora:
                if d.address is None:  # core.registry guarantees an address for link == lora
                    raise ValueError(f"LoRa device {d.id!r} has no address")
                key = self.keys.key_for(d.address)
                if key is None:
                    raise ValueError(f"LoRa device {d.id!r} has no key in the key ring")
                nodes.append(self._node(d, air, key))
            self._schedulers.append(NodeScheduler(f"sim-nodes:{gateway}", nodes))
        for d in devices:
            if d.link == "serial" and d.kind == "rain_gauge" and d.port is not None:
                if d.port in ports:
                    raise ValueError(f"gateway {gateway!r}: port name {d.port!r} used twice")
                ports[d.port] = PtyPort(f"{gateway}/{d.port}")
                self.gauges[d.id] = RG15Sim(ports[d.port], self._rng(d), tick=self.rain_tick,
                                            time_scale=self.rain_time_scale)
            elif d not in lora:
                self.skipped.append(d.id)
                log.warning("device %s (%s over %s) is not simulated", d.id, d.kind, d.link)

    def _node(self, d: Device, air: Air, key: bytes) -> Node:
        rng = self._rng(d)
        address = str(d.address)
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
