"""Traffic-light controller and parking-spot sensor firmware, driven with an explicit clock."""

from __future__ import annotations

import itertools
import random

import pytest

from edge.device_codecs import encode_bike_priority
from edge.lora_frame import decode_uplink
from firmware_sim.parking import ParkingNode
from firmware_sim.traffic_light import TrafficLightNode
from tests.firmware_sim.test_nodes import KEY, Clock, Gateway, down

JUNCTION = "0A0B0C03"
SPOT = "0A0B0C04"


def junction(gw: Gateway, clock: Clock) -> TrafficLightNode:
    return TrafficLightNode(JUNCTION, gw.air, random.Random(3), key=KEY, report_interval=10.0, switch_delay=2.0,
                            clock=clock)


def run_until(node: TrafficLightNode | ParkingNode, clock: Clock, end: float) -> None:
    for _ in range(10_000):
        due = node.next_due
        if due > end:
            break
        clock.now = max(clock.now, due)
        node.step(clock.now)
    clock.now = end


def test_traffic_light_reports_its_state_and_cycle_time() -> None:
    gw, clock = Gateway(), Clock()
    node = junction(gw, clock)
    run_until(node, clock, clock.now + 35)
    metrics = gw.metrics("traffic_light")
    assert len(metrics) in (3, 4)
    assert all(m == {"bike_priority": False, "cycle_time": 90.0} for m in metrics)


def test_bike_priority_starts_with_the_next_cycle_and_is_confirmed_by_a_report() -> None:
    gw, clock = Gateway(), Clock()
    node = junction(gw, clock)
    run_until(node, clock, clock.now + 10)
    before = len(gw.frames)
    node.on_downlink(down(encode_bike_priority(True).hex(), address=JUNCTION))
    assert node.bike_priority is False  # the running cycle is not cut short
    run_until(node, clock, clock.now + 1.9)
    assert len(gw.frames) == before and node.bike_priority is False
    run_until(node, clock, clock.now + 0.2)
    assert node.bike_priority is True and node.switches == 1
    assert gw.metrics("traffic_light")[-1] == {"bike_priority": True, "cycle_time": 110.0}
    # Asking again for what is in effect changes nothing but is confirmed at once.
    node.on_downlink(down(encode_bike_priority(True).hex(), address=JUNCTION))
    run_until(node, clock, clock.now)
    assert node.switches == 1 and gw.metrics("traffic_light")[-1]["bike_priority"] is True
    node.on_downlink(down(encode_bike_priority(False).hex(), address=JUNCTION))
    run_until(node, clock, clock.now + 2.5)
    assert gw.metrics("traffic_light")[-1] == {"bike_priority": False, "cycle_time": 90.0}


@pytest.mark.parametrize("payload", ["010102", "017801", "0101", "010101010100", "020101"])
def test_traffic_light_ignores_payloads_it_cannot_use(payload: str) -> None:
    gw, clock = Gateway(), Clock()
    node = junction(gw, clock)
    node.on_downlink(down(payload, address=JUNCTION))
    run_until(node, clock, clock.now + 5)
    assert (node.bike_priority, node.downlinks, node.bad_downlinks) == (False, 0, 1)


def test_traffic_light_refuses_forged_and_replayed_requests() -> None:
    gw, clock = Gateway(), Clock()
    node = junction(gw, clock)
    on = encode_bike_priority(True).hex()
    node.on_downlink(down(on, address=JUNCTION, key=bytes(16)))
    genuine = down(encode_bike_priority(False).hex(), address=JUNCTION, fcnt=9000)
    node.on_downlink(genuine)
    node.on_downlink(down(on, address=JUNCTION, fcnt=8999))
    node.on_downlink(genuine)
    run_until(node, clock, clock.now + 5)
    assert (node.bike_priority, node.downlinks, node.bad_downlinks) == (False, 1, 3)


def spot(gw: Gateway, clock: Clock, seed: int = 11, debounce: float = 5.0) -> ParkingNode:
    return ParkingNode(SPOT, gw.air, random.Random(seed), key=KEY, heartbeat_interval=600.0, mean_occupied=1800.0,
                       mean_free=1200.0, debounce=debounce, clock=clock)


def test_parking_reports_each_lasting_change_after_the_debounce_and_a_heartbeat_between() -> None:
    gw, clock = Gateway(), Clock()
    node = spot(gw, clock)
    states: list[tuple[float, bool]] = []  # (time, state) as the sensor saw it
    for _ in range(20_000):
        due = node.next_due
        if due > 1000.0 + 86_400:
            break
        clock.now = due
        node.step(clock.now)
        states.append((clock.now, node.occupied))
    frames = [(decode_uplink(f).fcnt, f) for f in gw.frames]
    assert [c for c, _ in frames] == list(range(frames[0][0], frames[0][0] + len(frames)))
    reported = [m["occupied"] for m in gw.metrics("parking_spot")]
    assert node.changes > 20 and node.events > 10
    flips = sum(1 for a, b in itertools.pairwise(reported) if a != b)
    assert flips == node.events  # each event is a change of the reported state
    # Between two reports there is never more than one heartbeat interval.
    assert len(reported) >= 86_400 / 600


def test_parking_does_not_report_cars_that_only_manoeuvre() -> None:
    """Stays shorter than the debounce (a car manoeuvring in and out) are not events."""
    gw, clock = Gateway(), Clock()
    node = ParkingNode(SPOT, gw.air, random.Random(5), key=KEY, heartbeat_interval=600.0, mean_occupied=2.0,
                       mean_free=2.0, debounce=5.0, clock=clock)
    run_until(node, clock, clock.now + 3600)
    assert node.changes > 1000
    # Only the rare stay of 5 s or more is reported (P(stay >= 5 s) = e^-2.5, about 8 %).
    assert 0 < node.events < node.changes * 0.15
    assert len(gw.frames) < node.changes * 0.2


def test_parking_parameters_are_validated() -> None:
    gw, clock = Gateway(), Clock()
    with pytest.raises(ValueError, match="heartbeat"):
        ParkingNode(SPOT, gw.air, random.Random(1), key=KEY, heartbeat_interval=0, mean_occupied=1, mean_free=1,
                    clock=clock)
    with pytest.raises(ValueError, match="cycle"):
        TrafficLightNode(JUNCTION, gw.air, random.Random(1), key=KEY, report_interval=1, cycle_time=0, clock=clock)
