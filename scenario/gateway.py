"""One simulated gateway of a city day: its air, nodes and gauges, and the edge's decoding, actuation and uplink.

The firmware-sim device models run on a simulated clock (SimClock) at real cadences. Frames of modem
devices are decoded by the edge's own LoraConverter; frames of LoRaWAN devices go to the simulated
ChirpStack (firmware_sim.network_server), whose uplink JSON the edge's NetworkServerBridge parses, in
process instead of over the network server's MQTT. Simplifications (scenario/day.py lists them all): the
edge's actuator is modelled on the simulated clock with edge.downlinks; the gauges are polled once a
minute; downlinks to LoRaWAN devices go straight to the air.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from core import senml
from core.commands import Ack, AckStatus, Action, Command
from core.mqtt_service import MqttLink
from core.registry import Device
from core.senml import Reading
from core.settings import MqttSettings
from edge.converters import LoraConverter, rg15_readings
from edge.downlinks import DOWNLINKS, Desired, Downlink
from edge.edge_device import EdgeDevice
from edge.lora_frame import encode_downlink
from edge.lora_keys import KeyRing
from edge.ns_bridge import NetworkServerBridge
from edge.rg15 import RG15Reading, parse_line
from firmware_sim.air import Air
from firmware_sim.city import PARKING_HEARTBEATS, Node, lorawan_address
from firmware_sim.network_server import SimulatedNetworkServer
from firmware_sim.occupancy import OccupancyNode
from firmware_sim.parking import ParkingNode
from firmware_sim.pty_port import PtyPort
from firmware_sim.rg15 import RainModel, RG15Sim
from firmware_sim.street_light import StreetLightNode
from firmware_sim.traffic_light import TrafficLightNode

SEED = 9
REPORT = {"street_light": 600.0, "occupancy": 300.0, "traffic_light": 300.0}
PARKING_HEARTBEAT = REPORT["occupancy"] * PARKING_HEARTBEATS // 2  # 15 min: inside device-silent's 30


class SimClock:
    """The simulated clock every model and the platform read."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class LinePort:
    """Stands in for the RG-15's pty: the firmware's lines are collected for the edge's parser."""

    def __init__(self, name: str) -> None:
        self.name = self.path = name
        self.lines: list[str] = []

    def write_line(self, text: str) -> None:
        self.lines.append(text)


@dataclass(slots=True)
class PendingCommand:
    """A command the gateway holds as desired state until the device reports it (edge.actuation)."""

    command: Command
    downlink: Downlink
    state: Desired
    sent: int = 0
    acked: bool = False


Ackd = Callable[[str, Ack, float], None]


class InProcessLink:
    """Stands in for the simulated network server's MQTT link: what it publishes goes to the bridge at once."""

    def __init__(self, deliver: Callable[[str, bytes], None]) -> None:
        self.deliver = deliver

    def publish(self, topic: str, payload: bytes, qos: int = 0) -> None:
        self.deliver(topic, payload)


class SimGateway:
    """One gateway: the air with its nodes and gauges, the edge's decoding, actuation, batching and health."""

    def __init__(self, gateway: str, devices: list[Device], keys: KeyRing, clock: SimClock, on_ack: Ackd,  # noqa: PLR0917
                 people: tuple[float, float]) -> None:
        self.id, self.clock, self.keys, self.on_ack = gateway, clock, keys, on_ack
        self.air = Air(clock)
        self.air.attach_modem(self._receive)
        self.edge = {d.id: EdgeDevice.of(d) for d in devices}
        self.converter = LoraConverter([e for e in self.edge.values() if e.link == "lora"], keys)
        self.address = {d.id: d.address or lorawan_address(d.dev_eui or "") for d in devices if d.link != "serial"}
        self.lorawan = {self.address[d.id]: self.edge[d.id] for d in devices if d.link == "lorawan"}
        self.problems = self.converter.problems
        self.bridge: NetworkServerBridge | None = None
        self.network_server: SimulatedNetworkServer | None = None
        if self.lorawan:
            self._network_server(gateway, keys, clock)
        self.nodes: dict[str, Node] = {}
        self.gauges: dict[str, tuple[RG15Sim, LinePort]] = {}
        for d in sorted(devices, key=lambda d: d.id):
            rng = random.Random(f"{SEED}/{d.id}")
            if d.kind == "rain_gauge":
                port = LinePort(d.id)
                gauge = RG15Sim(cast(PtyPort, port), rng, model=RainModel(rng))
                for setup in ("M", "H"):  # metric, high resolution, polled (see the module's docstring)
                    gauge.command(setup)
                gauge.set_rain(0.0)  # dry but for the showers
                port.lines.clear()  # the boot header and the mode replies
                self.gauges[d.id] = (gauge, port)
            else:
                self.nodes[d.id] = self._node(d, rng, people)
        self.readings: list[Reading] = []
        self.pending: dict[tuple[str, Action], PendingCommand] = {}
        self.outbox: list[PendingCommand] = []
        self.down_fcnt = self.seq = 0
        self.read = self.published = self.batches = self.applied = self.failed = 0
        self.started = clock()
        self.last_poll = clock()
        self.powered = True
        self.went_offline: float | None = None  # set when switched off, until the will is written
        self.held: list[Command] = []  # commands the broker holds for it while it is off

    def _network_server(self, gateway: str, keys: KeyRing, clock: SimClock) -> None:
        """The simulated ChirpStack application of this gateway's LoRaWAN devices and the edge's bridge to it."""
        application = f"smartcity-{gateway}"
        devices = {}
        for address, edge in self.lorawan.items():
            key = keys.key_for(address)
            assert key is not None and edge.dev_eui is not None
            devices[address] = (edge.dev_eui, key, None)
        # Neither connects (start() is never called): their MQTT links are replaced by the in-process one.
        self.bridge = NetworkServerBridge(gateway, "chirpstack", MqttSettings(), application,
                                          list(self.lorawan.values()),
                                          lambda readings, _fcnt: self._take(readings, self.clock()), clock=clock)
        self.network_server = SimulatedNetworkServer("chirpstack", MqttSettings(), application, Air(clock), devices,
                                               seed=SEED, clock=clock)
        self.network_server._link = cast(MqttLink, InProcessLink(self.bridge.handle_message))

    def power(self, on: bool, now: float) -> None:
        """Switch the gateway on or off (a power cut at its cabinet): off, it hears nothing and sends nothing."""
        if on == self.powered:
            return
        self.powered = on
        if not on:
            self.went_offline = now
            self.readings = []  # what it had not yet published is lost with its power
            return
        held, self.held = self.held, []
        for cmd in held:  # the broker delivers its persistent session's queue on reconnect
            self.submit(cmd, now)

    def _node(self, d: Device, rng: random.Random, people: tuple[float, float]) -> Node:
        address, clock = self.address[d.id], self.clock
        key = self.keys.key_for(address)
        assert key is not None
        if d.kind == "street_light":
            return StreetLightNode(address, self.air, rng, key=key, report_interval=REPORT[d.kind], clock=clock)
        if d.kind == "traffic_light":
            return TrafficLightNode(address, self.air, rng, key=key, report_interval=REPORT[d.kind], clock=clock)
        if d.kind == "parking_spot":
            return ParkingNode(address, self.air, rng, key=key, heartbeat_interval=PARKING_HEARTBEAT,
                               mean_occupied=5400.0, mean_free=2700.0, clock=clock)
        # Busy exactly in the people interval of each day: a 24 h cycle shifted to start there.
        busy = people[1] - people[0]
        return OccupancyNode(address, self.air, rng, key=key, report_interval=REPORT[d.kind], busy_seconds=busy,
                             quiet_seconds=86400.0 - busy, phase=(clock() - people[0]) % 86400.0, max_count=8,
                             clock=clock)

    # -- the radio and the serial ports ----------------------------------------------------------------
    def step_nodes(self, until: float) -> None:
        """Run every node up to (not including) until, each at its own due times."""
        nodes = list(self.nodes.values())
        while nodes:
            node = min(nodes, key=lambda n: n.next_due)
            due = node.next_due
            if due >= until:
                return
            self.clock.t = max(self.clock.t, due)
            node.step(self.clock.t)

    def _receive(self, frame: bytes) -> None:
        if not self.powered:
            return
        now = self.clock()
        if self.network_server is not None and frame[:4].hex().upper() in self.lorawan:
            self.network_server.receive(frame)  # -> its uplink JSON -> the bridge -> self._take
            return
        self._take(self.converter.convert(frame, now), now)

    def poll_gauges(self, now: float) -> None:
        """R on every gauge, after integrating the rain since the last poll; the edge parses each line."""
        for device, (gauge, port) in self.gauges.items():
            gauge.advance(now - self.last_poll)
            gauge.command("R")
            for text in port.lines:
                parsed = parse_line(text)
                if isinstance(parsed, RG15Reading):
                    self._take(rg15_readings(self.edge[device], parsed, now), now)
            port.lines.clear()
        self.last_poll = now

    def _take(self, readings: list[Reading], now: float) -> None:
        self.readings.extend(readings)
        self.read += len(readings)
        for r in readings:
            self._observe(r, now)

    # -- actuation (edge.actuation's rules, on the simulated clock) -------------------------------------
    def submit(self, cmd: Command, now: float) -> None:
        """A command from the platform becomes the desired state, superseding an unconfirmed one."""
        if not self.powered:
            self.held.append(cmd)
            return
        downlink, device = DOWNLINKS.get(cmd.action), self.edge.get(cmd.device)
        if downlink is None or device is None or downlink.kind != device.kind:
            self.on_ack(self.id, Ack(cmd.id, cmd.device, AckStatus.REJECTED, "not applicable here"), now)
            return
        key = (cmd.device, cmd.action)
        previous = self.pending.get(key)
        if previous is not None and not previous.acked:
            previous.acked = True
            self.on_ack(self.id, Ack(previous.command.id, cmd.device, AckStatus.REJECTED, f"superseded by {cmd.id}"),
                        now)
        self.pending[key] = pending = PendingCommand(cmd, downlink, downlink.desired(cmd.params))
        self.outbox.append(pending)

    def transmit(self, now: float) -> None:
        """Send the downlinks of the commands submitted since the last call."""
        for p in self.outbox:
            address = self.address[p.command.device]
            key = self.keys.key_for(address)
            assert key is not None
            self.air.downlink(encode_downlink(address, self.down_fcnt, p.downlink.payload(p.command.params), key))
            self.down_fcnt += 1
            p.sent += 1
        self.outbox.clear()

    def _observe(self, r: Reading, now: float) -> None:
        for action, downlink in DOWNLINKS.items():
            p = self.pending.get((r.device, action)) if downlink.metric == r.metric else None
            if p is None or p.acked or not p.sent or isinstance(r.value, str):
                continue
            if downlink.confirms(r.value, p.state):
                p.acked = True
                self.applied += 1
                self.on_ack(self.id, Ack(p.command.id, r.device, AckStatus.APPLIED,
                                         f"device reports {downlink.metric} {downlink.show(r.value)} "
                                         f"after {p.sent} transmission(s)"), now)

    def expire(self, now: float) -> None:
        """Acknowledge commands that expired unconfirmed: expired if sent, failed if never."""
        for p in self.pending.values():
            if not p.acked and p.command.expired(now):
                p.acked = True
                if p.sent:
                    status, detail = AckStatus.EXPIRED, (f"sent {p.sent} time(s); the device never reported the "
                                                         "commanded state before expiry")
                else:
                    self.failed += 1
                    status, detail = AckStatus.FAILED, "the radio could not transmit it before expiry"
                self.on_ack(self.id, Ack(p.command.id, p.command.device, status, detail), now)

    # -- the uplink --------------------------------------------------------------------------------------
    def health(self, now: float) -> dict[str, float]:
        """edge.health.report's counters, from this gateway's figures (cpu and memory modelled)."""
        uptime = now - self.started
        counters = {
            "uptime_s": round(uptime, 1), "readings_read": self.read, "readings_published": self.published,
            "batches_published": self.batches, "batches_refused": 0, "readings_dropped": 0, "readings_refused": 0,
            "queue_depth": len(self.readings),
            "queue_age_s": round(now - min((r.time for r in self.readings), default=now), 1),
            "mqtt_connects": 1, "mqtt_reconnects": 0, "mqtt_disconnects": 0, "mqtt_callback_errors": 0,
            "bad_commands": 0, "commands_applied": self.applied, "commands_failed": self.failed,
            "lost_frames": self.converter.lost_frames + (self.bridge.lost_frames if self.bridge else 0),
            "serial_reconnects": 0, "serial_bad_lines": 0,
            "cpu_s": round(uptime * 0.004, 2), "max_rss_kb": 41_000 + len(self.edge) * 40,
        }
        bridged = self.bridge.problems if self.bridge else {}
        for reason in ("bad_frame", "foreign_address", "no_key", "bad_mic", "replay", "bad_entries", "bad_payload"):
            counters[f"frames_rejected_{reason}"] = self.problems.get(reason, 0) + bridged.get(reason, 0)
        counters["mic_failures"] = counters["frames_rejected_bad_mic"]
        return {k: float(v) for k, v in counters.items()}

    def pack(self) -> bytes | None:
        """The SenML pack of the readings queued since the last one (None if there are none)."""
        if not self.readings:
            return None
        payload = senml.encode(self.readings, self.seq)
        self.seq += 1
        self.published += len(self.readings)
        self.batches += 1
        self.readings = []
        return payload
