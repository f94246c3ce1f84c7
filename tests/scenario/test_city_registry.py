"""The Voorschoten and Wassenaar city: its size, its make-up per wijk, and that the registry parser takes it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from core.errors import ConfigError
from core.registry import load
from scenario.city import WIJKEN, city_features, city_script, write_registry
from scenario.script import Script


def test_full_city_has_the_size_of_the_issue(tmp_path: Path) -> None:
    registry = load(write_registry(tmp_path / "city.geojson"))
    kinds = Counter(d.kind for d in registry.devices.values())
    assert 5_900 <= kinds["street_light"] <= 6_100
    assert 200 <= kinds["occupancy"] <= 500
    assert 55 <= len(registry.gateways) <= 65
    assert {d.gemeente for d in registry.devices.values()} == {"GM0626", "GM0629"}
    per_wijk: dict[str, Counter[str]] = {}
    for d in registry.devices.values():
        per_wijk.setdefault(d.wijk, Counter())[d.kind] += 1
        assert d.wijk[2:6] == d.gemeente[2:], d  # a wijk code holds its gemeente's digits (CBS)
    assert set(per_wijk) == {w.code for w in WIJKEN}
    for wijk, counts in per_wijk.items():
        assert counts["rain_gauge"] == 1 and counts["traffic_light"] >= 2 and counts["occupancy"] >= 1, wijk
    # Some gateways reach their devices through a LoRaWAN network server, the others through a modem.
    links = {g: {d.link for d in registry.devices_of(g)} - {"serial"} for g in registry.gateways}
    assert 10 <= sum(1 for x in links.values() if x == {"lorawan"}) <= 20
    assert sum(1 for x in links.values() if x == {"lora"}) >= 40


def test_city_is_deterministic_and_addresses_are_unique(tmp_path: Path) -> None:
    a = write_registry(tmp_path / "a.geojson").read_bytes()
    assert a == write_registry(tmp_path / "b.geojson").read_bytes()
    registry = load(tmp_path / "a.geojson")
    addresses = [d.address or (d.dev_eui or "")[-8:] for d in registry.devices.values() if d.link != "serial"]
    assert len(addresses) == len(set(addresses))  # the simulated air tells nodes apart by these


@pytest.mark.parametrize("scale", [0.02, 0.3, 1.0])
def test_city_script_names_what_the_registry_has(tmp_path: Path, scale: float) -> None:
    registry = load(write_registry(tmp_path / "city.geojson", scale))
    script = city_script(city_features(scale))
    script.check(registry)
    assert len(script.failed_lamps) == 3 and len(script.silent_gateways) == 1 and len(script.showers) == 2
    # The power cut overlaps no shower and no lamp failure, so that each injection has one effect to check.
    _, off_from, off_to = script.silent_gateways[0]
    assert all(to <= off_from or off_to <= begin for _, begin, to in script.showers)
    assert all(not off_from <= at < off_to for _, at in script.failed_lamps)


def test_script_with_an_unknown_device_is_refused_with_its_name(tmp_path: Path) -> None:
    registry = load(write_registry(tmp_path / "city.geojson", 0.02))
    bad = Script(showers=((("vs-rg-0001",), (7, 0), (8, 0)),), people=((18, 0), (23, 0)),
                 failed_lamps=(("vs-sl-9999", (21, 0)),))
    with pytest.raises(ConfigError, match="vs-sl-9999"):
        bad.check(registry)
    wrong_kind = Script(showers=((("vs-sl-0001",), (7, 0), (8, 0)),), people=((18, 0), (23, 0)))
    with pytest.raises(ConfigError, match=r"vs-sl-0001.*not a rain_gauge"):
        wrong_kind.check(registry)
