"""The real edge drivers against scenario-faulted simulators over real ptys: bad input counted, recovery.

Each test runs a scenario at speed 60 (one simulated minute per real second): the edge drivers
connect to the scenario's stable port paths, then the scenario's clock starts and the faults fire
on schedule. LoRa nodes report every 6 simulated seconds (0.1 s real).
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from core import senml
from edge.agent import EdgeAgent
from edge.durable_queue import DurableQueue
from edge.gateway_config import config_from_registry
from edge.lora_frame import Frame, decode_uplink
from edge.rak3172_port import RAK3172Port
from edge.rg15 import RG15Reading
from edge.rg15_port import RG15Port
from edge.rn2483_port import RN2483Port
from edge.serial_link import Backoff
from firmware_sim.scenario import END, FaultRecord, Scenario
from firmware_sim.scenario_file import ScenarioSpec, parse_scenario
from tests.conftest import settings_for
from tests.firmware_sim.support import KEYS, wait_for

GATEWAY = "gw-test"  # one of the broker fixture's accounts
ADDRESSES = {"light-1": "0A0B0D01", "light-2": "0A0B0D02"}
PLACE = {"gateway": GATEWAY, "wijk": "WK062600"}
LIGHTS = [{"id": d, "kind": "street_light", "link": "lora", "address": a, **PLACE} for d, a in ADDRESSES.items()]
GAUGE = [{"id": "rain-1", "kind": "rain_gauge", "link": "serial", "port": "rg15", **PLACE}]
MODEMS: dict[str, type[RN2483Port] | type[RAK3172Port]] = {"rn2483": RN2483Port, "rak3172": RAK3172Port}


def scenario(devices: list[dict[str, Any]], faults: list[dict[str, Any]], *, modem: str = "rn2483",
             duration: str = "3m") -> ScenarioSpec:
    """A one-gateway scenario at speed 60 with the given devices and faults."""
    return parse_scenario({
        "version": 1, "seed": 1, "speed": 60, "duration": duration, "lora_modem": modem,
        "report_interval": "6s", "rain_tick": "3s",
        "gateways": [{"id": GATEWAY, "gemeente": "GM0626"}], "devices": devices, "faults": faults})


class Rig:
    """A scenario and the edge drivers of its ports; start() connects them first, then runs the clock."""

    def __init__(self, spec: ScenarioSpec, *, poll_interval: float = 0.05) -> None:
        self.scenario = Scenario(spec, keys=KEYS)
        self.scenario.open()
        self.city = self.scenario.city
        assert self.city is not None
        ports = self.scenario.ports()[GATEWAY]
        self.frames: list[tuple[float, Frame]] = []
        self.readings: list[tuple[float, RG15Reading]] = []
        self.lora: RN2483Port | RAK3172Port | None = None
        self.gauge_port: RG15Port | None = None
        if "lora" in ports:
            self.lora = MODEMS[spec.lora_modem](ports["lora"], self._frame, reply_timeout=0.5, backoff=_backoff())
        if "rg15" in ports:
            self.gauge_port = RG15Port(ports["rg15"], lambda r, _t: self.readings.append((time.monotonic(), r)),
                                       poll_interval=poll_interval, backoff=_backoff())

    def _frame(self, frame: bytes, _when: float) -> None:
        self.frames.append((time.monotonic(), decode_uplink(frame)))

    def start(self) -> None:
        if self.lora is not None:
            self.lora.start()
            assert self.lora.wait_ready(3.0)
        if self.gauge_port is not None:
            self.gauge_port.start()
            assert self.gauge_port.wait_connected(3.0)
        self.scenario.start()

    def close(self) -> None:
        for port in (self.lora, self.gauge_port):
            if port is not None:
                port.stop()
        self.scenario.stop()

    def at(self, index: int, phase: str = "begin", timeout: float = 5.0) -> float:
        """The monotonic time fault index had its phase (waiting for it)."""
        record = self.scenario.wait_for(index, phase, timeout)
        assert isinstance(record, FaultRecord), f"fault {index} had no {phase} within {timeout} s"
        assert record.ok, record.detail
        started = self.scenario.clock.started_at
        assert started is not None
        return started + record.real_time

    def frames_of(self, address: str, after: float = 0.0, before: float = float("inf")) -> list[Frame]:
        return [f for t, f in list(self.frames) if f.address == address and after <= t < before]

    def readings_between(self, after: float, before: float = float("inf")) -> list[RG15Reading]:
        return [r for t, r in list(self.readings) if after <= t < before]


def _backoff() -> Backoff:
    return Backoff(0.02, 0.1, rng=random.Random(0))


@pytest.fixture
def rigs() -> Iterator[Callable[..., Rig]]:
    made: list[Rig] = []

    def make(spec: ScenarioSpec, **kwargs: Any) -> Rig:
        rig = Rig(spec, **kwargs)
        made.append(rig)
        return rig

    yield make
    for rig in made:
        rig.close()


def missing_counters(frames: list[Frame]) -> int:
    """Frame counters absent between the first and last frame seen of each address."""
    by_address: dict[str, set[int]] = {}
    for f in frames:
        by_address.setdefault(f.address, set()).add(f.fcnt)
    return sum(max(c) - min(c) + 1 - len(c) for c in by_address.values())


def test_rg15_garbage_and_truncated_lines_are_counted_and_the_lines_around_them_kept(rigs) -> None:
    rig = rigs(scenario(GAUGE, [
        {"at": "30s", "kind": "garbage", "target": f"{GATEWAY}/rg15", "bytes": 64},
        {"at": "60s", "kind": "truncate", "target": f"{GATEWAY}/rg15", "keep": 20},
        {"at": "90s", "kind": "garbage", "target": f"{GATEWAY}/rg15", "bytes": 200},
    ]), poll_interval=60.0)  # one R at connection; after that the gauge speaks in continuous mode only
    assert rig.city is not None and rig.gauge_port is not None
    gauge = rig.city.gauges["rain-1"]
    gauge.set_rain(36.0)  # each 0.05 s tick is 3 simulated s: 0.03 mm, so a continuous line every tick
    rig.start()
    ends = [rig.at(i) for i in range(3)]
    assert wait_for(lambda: len(rig.readings_between(ends[-1])) >= 5)
    gauge.set_rain(0.0)  # the lines stop once the accumulation is read out: the counts settle
    # Every reading line the gauge sent arrived but the one truncated line.
    assert wait_for(lambda: rig.gauge_port is not None and rig.gauge_port.readings == gauge.readings_sent - 1), \
        (rig.gauge_port.readings, gauge.readings_sent)
    assert rig.gauge_port.errors == 3  # two bursts of noise and one cut line
    assert len(rig.readings_between(ends[0], ends[1])) >= 3 and len(rig.readings_between(ends[1], ends[2])) >= 3
    cut = list(rig.scenario.usb_ports[f"{GATEWAY}/rg15"].port.truncated)
    assert len(cut) == 1 and cut[0].startswith(b"Acc  0.") and len(cut[0]) == 20
    assert rig.scenario.counters()["truncated_lines"] == 1
    assert rig.scenario.counters()["garbage_bytes"] == 264


@pytest.mark.parametrize("modem", ["rn2483", "rak3172"])
def test_modem_garbage_and_truncated_lines_are_counted_and_reception_goes_on(rigs, modem: str) -> None:
    rig = rigs(scenario(LIGHTS, [
        {"at": "30s", "kind": "garbage", "target": f"{GATEWAY}/lora", "bytes": 64},
        # 8 bytes ("radio_rx" / "+EVT:RXP"): the cut line cannot pass for a frame.
        {"at": "60s", "kind": "truncate", "target": f"{GATEWAY}/lora", "keep": 8},
    ], modem=modem))
    assert rig.lora is not None
    rig.start()
    rig.at(0)
    truncated_at = rig.at(1)
    assert wait_for(lambda: rig.scenario.counters()["truncated_lines"] == 1)
    # The frames after the cut one keep coming: the driver must notice that the modem stopped
    # listening when its radio_rx line was lost (RN2483: the receiver is off after every packet).
    assert wait_for(lambda: len([t for t, _ in rig.frames if t > truncated_at]) >= 6), \
        f"no frames after the truncated line: {rig.lora.frames} frames, {rig.lora.errors} bad lines"
    assert rig.lora.errors == 2
    assert missing_counters([f for _, f in rig.frames]) == 1  # only the frame whose line was cut


def test_a_silent_lora_node_stops_reporting_and_resumes(rigs) -> None:
    rig = rigs(scenario(LIGHTS, [{"at": "30s", "kind": "silent", "target": "light-2", "for": "1m"}]))
    assert rig.city is not None
    rig.start()
    begin, end = rig.at(0), rig.at(0, END)
    silent, other = ADDRESSES["light-2"], ADDRESSES["light-1"]
    assert wait_for(lambda: len(rig.frames_of(silent, after=end)) >= 2)
    assert rig.frames_of(silent, after=begin + 0.05, before=end) == []  # 0.05 s: a frame already on the wire
    assert len(rig.frames_of(other, after=begin, before=end)) >= 5  # its neighbour was heard all along
    before, after = rig.frames_of(silent, before=begin)[-1], rig.frames_of(silent, after=end)[0]
    assert after.fcnt - before.fcnt >= 6  # the node kept sending (and counting); the air lost them
    assert rig.city.modems[GATEWAY].air.muted_uplinks >= 5


def test_a_silent_rain_gauge_stops_answering_and_resumes(rigs) -> None:
    rig = rigs(scenario(GAUGE, [{"at": "30s", "kind": "silent", "target": "rain-1", "for": "1m"}]))
    assert rig.city is not None and rig.gauge_port is not None
    rig.start()
    begin, end = rig.at(0), rig.at(0, END)
    assert wait_for(lambda: len(rig.readings_between(end)) >= 3)  # polled every 0.05 s: answers again
    assert rig.readings_between(begin + 0.05, end) == []
    assert len(rig.readings_between(0, begin)) >= 3
    assert rig.city.gauges["rain-1"].ignored_commands >= 5
    assert rig.gauge_port.errors == 0 and rig.gauge_port.reconnects == 0


@pytest.mark.parametrize("modem", ["rn2483", "rak3172"])
def test_a_modem_reset_is_noticed_and_reception_resumes(rigs, modem: str) -> None:
    rig = rigs(scenario(LIGHTS, [{"at": "30s", "kind": "modem_reset", "target": f"{GATEWAY}/lora"}], modem=modem))
    assert rig.city is not None and rig.lora is not None
    sim = rig.city.modems[GATEWAY]
    rig.start()
    reset_at = rig.at(0)
    assert wait_for(lambda: len([t for t, _ in rig.frames if t > reset_at]) >= 6), \
        f"no frames after the modem reset: {rig.lora.frames} frames, {rig.lora.reconnects} reconnects"
    assert rig.lora.reconnects == 1  # the banner made the driver initialise the modem again
    assert sim.resets == 1 if modem == "rn2483" else sim.resets >= 2  # RUI3 also restarts on AT+NWM=0
    assert wait_for(lambda: sim.armed)
    if isinstance(rig.lora, RAK3172Port):
        assert rig.lora.resets == 1
    else:
        assert rig.lora.errors == 1  # the unexpected version banner


@pytest.mark.parametrize("modem", ["rn2483", "rak3172"])
def test_an_unplugged_usb_port_comes_back_under_the_same_path(rigs, modem: str) -> None:
    rig = rigs(scenario(LIGHTS + GAUGE, [
        {"at": "30s", "kind": "unplug", "target": f"{GATEWAY}/lora", "for": "1m"},
        {"at": "30s", "kind": "unplug", "target": f"{GATEWAY}/rg15", "for": "1m"},
    ], modem=modem))
    assert rig.lora is not None and rig.gauge_port is not None
    port_map = rig.scenario.ports()
    links = [Path(p) for p in port_map[GATEWAY].values()]
    rig.start()
    rig.at(0)
    rig.at(1)
    assert not any(os.path.lexists(p) for p in links)  # the by-id style paths are gone ...
    assert wait_for(lambda: not rig.lora.ready and not rig.gauge_port.connected)  # ... and the ports dead
    end = max(rig.at(0, END), rig.at(1, END))
    assert rig.scenario.ports() == port_map
    for usb in rig.scenario.usb_ports.values():
        assert usb.link.resolve() == Path(usb.port.path) and not usb.port.closed
    assert wait_for(lambda: len([t for t, _ in rig.frames if t > end]) >= 4)
    assert wait_for(lambda: len(rig.readings_between(end)) >= 3)
    assert rig.lora.reconnects == 1 and rig.gauge_port.reconnects == 1
    assert rig.lora.path == port_map[GATEWAY]["lora"]  # the driver never learnt the pty's own name


@pytest.mark.integration
def test_an_edge_agent_recovers_from_every_fault_and_keeps_publishing(tmp_path: Path, broker, mqtt_client) -> None:
    spec = scenario(LIGHTS + GAUGE, [
        {"at": "30s", "kind": "modem_reset", "target": f"{GATEWAY}/lora"},
        {"at": "40s", "kind": "garbage", "target": f"{GATEWAY}/rg15"},
        {"at": "50s", "kind": "silent", "target": "light-1", "for": "20s"},
        {"at": "80s", "kind": "unplug", "target": f"{GATEWAY}/lora", "for": "30s"},
        {"at": "80s", "kind": "unplug", "target": f"{GATEWAY}/rg15", "for": "30s"},
    ], duration="10m")
    received: list[tuple[float, senml.Reading]] = []
    lock = threading.Lock()

    def on_message(_c: object, _u: object, message: Any) -> None:
        with lock:
            received.extend((time.monotonic(), r) for r in senml.decode(message.payload).readings)

    consumer = mqtt_client()
    consumer.on_message = on_message
    consumer.subscribe(f"smartcity/v1/gw/{GATEWAY}/readings", qos=1)
    keys = tmp_path / "lora-keys.json"
    KEYS.save(keys)
    sc = Scenario(spec, keys=KEYS)
    agent: EdgeAgent | None = None
    try:
        sc.open()
        config = config_from_registry(spec.registry, GATEWAY, sc.ports()[GATEWAY], lora_keys=keys,
                                      flush_interval=0.1, poll_interval=0.1)
        agent = EdgeAgent(config, settings_for(broker, GATEWAY), queue=DurableQueue(tmp_path / "queue.sqlite"),
                          keys=KEYS)
        agent.start()
        assert agent.lora is not None and agent.lora.wait_ready(5.0)
        sc.start()
        record = sc.wait_for(4, END, 5.0)
        assert record is not None and sc.clock.started_at is not None
        end = sc.clock.started_at + record.real_time

        def devices_heard_since_end() -> set[str]:
            with lock:
                return {r.device for t, r in received if t > end}

        # The agent's own backoff (0.5 s first retry) brings both ports back; every device is heard again.
        assert wait_for(lambda: devices_heard_since_end() == {"light-1", "light-2", "rain-1"}, timeout=10.0), \
            devices_heard_since_end()
        assert agent.lora.reconnects == 2  # one for the reset, one for the replug
        (gauge,) = agent.rain_gauges.values()
        assert gauge.errors == 1 and gauge.reconnects == 1
        assert sc.counters()["errors"] == 0
    finally:
        if agent is not None:
            agent.stop()
        sc.stop()
