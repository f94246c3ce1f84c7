"""SimulatedCity built from a tiny registry: port map, real ptys, end-to-end with the edge drivers."""

from __future__ import annotations

import json
import os
import queue
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from core.registry import parse
from edge.cayenne_lpp import decode
from edge.device_codecs import decode_metrics, encode_dim
from edge.lora_frame import decode_uplink
from edge.rg15 import RG15Reading
from edge.rg15_port import RG15Port
from edge.rn2483_port import RN2483Port
from edge.serial_link import Backoff
from firmware_sim.city import SimulatedCity
from tests.firmware_sim.support import (
    COUNTER_ADDRESS,
    GATEWAY,
    KEYS,
    LIGHT_ADDRESS,
    downlink,
    get_matching,
    tiny_registry,
    tiny_registry_dict,
    wait_for,
)


def build(seed: int = 1) -> SimulatedCity:
    return SimulatedCity(tiny_registry(), report_interval=0.2, busy_seconds=0.6, quiet_seconds=0.4,
                         seed=seed, rain_tick=0.05, keys=KEYS)


@pytest.fixture
def city() -> Iterator[SimulatedCity]:
    c = build()
    c.start()
    yield c
    c.stop()


def test_port_map_lists_every_gateway_port(city: SimulatedCity, tmp_path: Path) -> None:
    target = tmp_path / "ports.json"
    city.write_port_map(target)
    ports = json.loads(target.read_text())
    assert ports == city.ports()
    assert set(ports) == {"gw-1", "gw-2"}
    assert set(ports["gw-1"]) == {"lora", "rg15"}
    assert set(ports["gw-2"]) == {"rg15"}
    paths = [path for gw in ports.values() for path in gw.values()]
    assert len(set(paths)) == 3
    for path in paths:
        assert os.path.exists(path)
        with serial.Serial(path, 9600, timeout=0.1) as port:
            assert port.is_open
    assert not list(tmp_path.glob(".*.tmp"))


def test_devices_are_built_per_kind(city: SimulatedCity) -> None:
    assert set(city.modems) == {GATEWAY}
    assert set(city.gauges) == {"rain-1", "rain-2"}
    assert set(city.street_lights) == {"light-1"}
    assert set(city.occupancy) == {"counter-1"}
    assert city.skipped == ["light-serial"]
    assert city.light_levels() == {"light-1": 100}


def test_end_to_end_lora_gateway(city: SimulatedCity) -> None:
    frames: queue.Queue[bytes] = queue.Queue()
    port = RN2483Port(city.ports()[GATEWAY]["lora"], lambda frame, when: frames.put(frame),
                      backoff=Backoff(0.02, 0.1, rng=random.Random(0)))
    port.start()
    try:
        seen: dict[str, dict[str, float | bool]] = {}
        for _ in range(20):  # both nodes report every 0.2 s
            uplink = decode_uplink(frames.get(timeout=2.0))
            kind = {LIGHT_ADDRESS: "street_light", COUNTER_ADDRESS: "occupancy"}[uplink.address]
            seen[uplink.address] = decode_metrics(kind, decode(uplink.payload))
            if len(seen) == 2:
                break
        assert set(seen) == {LIGHT_ADDRESS, COUNTER_ADDRESS}
        assert seen[LIGHT_ADDRESS]["dim_level"] == 100.0
        assert set(seen[COUNTER_ADDRESS]) == {"presence", "count"}
        assert port.send(downlink(LIGHT_ADDRESS, encode_dim(25)), timeout=2.0)
        assert city.light_levels() == {"light-1": 25}
    finally:
        port.stop()


def test_end_to_end_rain_gauge(city: SimulatedCity) -> None:
    readings: queue.Queue[RG15Reading] = queue.Queue()
    city.gauges["rain-1"].set_totals(total_mm=4.56)
    port = RG15Port(city.ports()[GATEWAY]["rg15"], lambda r, t: readings.put(r), poll_interval=0.1)
    port.start()
    try:
        get_matching(readings, lambda r: r.total_accumulation == 4.56)
    finally:
        port.stop()


def test_stop_ends_every_thread_and_closes_the_ptys() -> None:
    c = build()
    ptys = [m.port for m in c.modems.values()] + [g.port for g in c.gauges.values()]
    with serial.Serial(c.ports()[GATEWAY]["lora"], 57600, timeout=1.0) as edge:
        c.start()
        assert wait_for(lambda: c.street_lights["light-1"].uplinks > 0)
        c.stop()
        c.stop()  # idempotent
        with pytest.raises(serial.SerialException):
            edge.read(1)  # the edge sees its device go away
    assert all(p.closed for p in ptys)
    # The autouse fixture then checks that no modem, gauge or scheduler thread is left.


def test_same_seed_same_city() -> None:
    a, b, other = build(seed=9), build(seed=9), build(seed=10)
    try:
        energy = [c.street_lights["light-1"].energy_kwh for c in (a, b, other)]
        phases = [c.occupancy["counter-1"].phase for c in (a, b, other)]
        assert energy[0] == energy[1] != energy[2]
        assert phases[0] == phases[1] != phases[2]
    finally:
        for c in (a, b, other):
            c.stop()


def test_duplicate_port_names_are_rejected() -> None:
    data = tiny_registry_dict()
    data["features"].append({
        "type": "Feature", "geometry": {"type": "Point", "coordinates": [4.4, 52.1]},
        "properties": {"id": "rain-3", "role": "device", "kind": "rain_gauge", "gateway": GATEWAY,
                       "link": "serial", "port": "rg15", "gemeente": "GM0626", "wijk": "WK062600"}})
    with pytest.raises(ValueError, match="port name 'rg15' used twice"):
        SimulatedCity(parse(data), report_interval=0.2, busy_seconds=1, quiet_seconds=1, seed=1, keys=KEYS)
