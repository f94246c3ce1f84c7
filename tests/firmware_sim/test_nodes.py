"""Street-light and occupancy node firmware, driven with an explicit clock."""

from __future__ import annotations

import random

import pytest

from edge.device_codecs import decode_payload
from edge.lora_frame import decode_uplink, encode_downlink, verify
from firmware_sim.air import Air
from firmware_sim.occupancy import OccupancyNode
from firmware_sim.street_light import StreetLightNode

KEY = bytes(range(16))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Gateway:
    """An Air with a recording modem."""

    def __init__(self) -> None:
        self.air = Air()
        self.frames: list[bytes] = []
        self.air.attach_modem(self.frames.append)

    def metrics(self, kind: str) -> list[dict[str, float | bool]]:
        return [decode_payload(kind, decode_uplink(f).payload) for f in self.frames]


def light(gw: Gateway, clock: Clock, seed: int = 1) -> StreetLightNode:
    return StreetLightNode("0A0B0C01", gw.air, random.Random(seed), key=KEY, report_interval=10.0, clock=clock)


_down_fcnt = iter(range(1, 10_000))


def down(payload_hex: str, address: str = "0A0B0C01", fcnt: int | None = None, key: bytes = KEY) -> bytes:
    """A downlink as the gateway frames it (a fresh counter unless given)."""
    return encode_downlink(address, next(_down_fcnt) if fcnt is None else fcnt, bytes.fromhex(payload_hex), key)


def test_street_light_reports_every_interval_with_counter() -> None:
    gw, clock = Gateway(), Clock()
    node = light(gw, clock)
    for _ in range(5):
        clock.now = node.next_due
        node.step(clock.now)
        node.step(clock.now)  # not due twice
    counters = [decode_uplink(f).fcnt for f in gw.frames]
    assert counters == list(range(counters[0], counters[0] + 5))
    assert {decode_uplink(f).address for f in gw.frames} == {"0A0B0C01"}
    assert all(verify(decode_uplink(f), KEY) for f in gw.frames)
    first = gw.metrics("street_light")[0]
    assert first["dim_level"] == 100.0
    assert 39 <= first["power"] <= 42
    assert 225 < first["voltage"] < 235
    assert first["lamp_failure"] is False


def test_power_follows_dim_level() -> None:
    gw, clock = Gateway(), Clock()
    node = light(gw, clock)
    node.on_downlink(down("017832"))  # 50 %
    assert node.level == 50
    assert 20 <= node.power() <= 21
    node.on_downlink(down("017800"))
    assert node.power() == 0.5
    node.on_downlink(down("017864"))
    node.lamp_failure = True
    assert node.power() == 0.5


def test_dim_downlink_is_confirmed_soon() -> None:
    gw, clock = Gateway(), Clock()
    node = light(gw, clock)
    clock.now = node.next_due
    node.step(clock.now)
    regular = node.next_due
    node.on_downlink(down("01781E"))  # 30 %
    assert node.next_due == pytest.approx(clock.now + node.confirm_delay)
    assert node.next_due < regular
    clock.now = node.next_due
    node.step(clock.now)
    assert gw.metrics("street_light")[-1]["dim_level"] == 30.0


@pytest.mark.parametrize("payload", ["017865", "027832", "0178", "01783201781E", ""])
def test_bad_downlinks_are_ignored(payload: str) -> None:
    gw, clock = Gateway(), Clock()
    node = light(gw, clock)
    node.on_downlink(down(payload))
    assert (node.level, node.bad_downlinks, node.downlinks) == (100, 1, 0)


def test_forged_and_replayed_downlinks_are_refused() -> None:
    """A lamp obeys only frames with its key's MIC and a counter above the last one it applied."""
    gw, clock = Gateway(), Clock()
    node = light(gw, clock)
    node.on_downlink(down("017814", key=bytes(16)))  # forged: wrong key
    genuine = down("017832", fcnt=500)
    node.on_downlink(genuine)
    node.on_downlink(genuine)  # replayed
    node.on_downlink(down("01780A", fcnt=499))  # older
    assert (node.level, node.downlinks, node.bad_downlinks) == (50, 1, 3)


def test_energy_integrates_power() -> None:
    gw, clock = Gateway(), Clock()
    node = light(gw, clock)
    start = node.energy_kwh
    clock.now += 3600.0
    node.step(clock.now)  # one hour at ~40.5 W
    assert node.energy_kwh - start == pytest.approx(0.0405, abs=0.002)
    assert gw.metrics("street_light")[-1]["energy"] == round(node.energy_kwh, 3)


def test_street_light_is_deterministic_per_seed() -> None:
    runs = []
    for _ in range(2):
        gw, clock = Gateway(), Clock()
        node = light(gw, clock, seed=42)
        for _ in range(3):
            clock.now = node.next_due
            node.step(clock.now)
        runs.append([decode_uplink(f).payload for f in gw.frames])
    assert runs[0] == runs[1]


def counter(gw: Gateway, clock: Clock, phase: float = 0.0, seed: int = 5) -> OccupancyNode:
    return OccupancyNode("0A0B0C02", gw.air, random.Random(seed), key=KEY, report_interval=1.0,
                         busy_seconds=3.0, quiet_seconds=2.0, phase=phase, clock=clock)


def test_occupancy_follows_busy_quiet_cycle() -> None:
    gw, clock = Gateway(), Clock()
    node = counter(gw, clock)
    cycle = [node.present_at(clock.now + t + 0.5) for t in range(10)]
    assert cycle == [True, True, True, False, False] * 2
    shifted = counter(Gateway(), clock, phase=3.0)
    assert shifted.present_at(clock.now + 0.5) is False


def test_occupancy_counts_only_when_present() -> None:
    gw, clock = Gateway(), Clock()
    node = counter(gw, clock)
    for _ in range(20):
        clock.now = node.next_due
        node.step(clock.now)
    metrics = gw.metrics("occupancy")
    assert len(metrics) == 20
    for m in metrics:
        assert (m["count"] > 0) == m["presence"]
    assert any(m["presence"] for m in metrics) and not all(m["presence"] for m in metrics)
    assert sum(m["count"] for m in metrics) == node.total_count


def test_occupancy_ignores_downlinks() -> None:
    gw, clock = Gateway(), Clock()
    node = counter(gw, clock)
    assert gw.air.downlink(down("017832", address="0A0B0C02"))
    assert node.uplinks == 0


def test_node_parameters_are_validated() -> None:
    gw, clock = Gateway(), Clock()
    with pytest.raises(ValueError, match="report_interval"):
        StreetLightNode("0A0B0C01", gw.air, random.Random(1), key=KEY, report_interval=0, clock=clock)
    with pytest.raises(ValueError, match="busy"):
        OccupancyNode("0A0B0C02", gw.air, random.Random(1), key=KEY, report_interval=1, busy_seconds=0,
                      quiet_seconds=0, clock=clock)
