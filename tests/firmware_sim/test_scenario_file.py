"""Scenario files: the documented example loads, durations parse, and every mistake is named precisely."""

from __future__ import annotations

import doctest
import json
from pathlib import Path
from typing import Any

import pytest

from firmware_sim import scenario_clock
from firmware_sim.scenario_clock import DurationError, ScenarioClock, format_duration, parse_duration
from firmware_sim.scenario_file import FaultKind, ScenarioError, load_scenario, parse_scenario
from tests.firmware_sim.support import tiny_registry_dict

DEMO = Path(__file__).resolve().parents[2] / "firmware-sim" / "scenarios" / "faults-demo.toml"


def base(**changes: Any) -> dict[str, Any]:
    """A valid inline scenario: gw-1 with a light and a rain gauge; changes replace top-level keys."""
    data: dict[str, Any] = {
        "version": 1, "speed": 60, "duration": "1h",
        "gateways": [{"id": "gw-1", "gemeente": "GM0626"}],
        "devices": [
            {"id": "light-1", "kind": "street_light", "gateway": "gw-1", "link": "lora", "address": "0A0B0C01",
             "wijk": "WK062600"},
            {"id": "rain-1", "kind": "rain_gauge", "gateway": "gw-1", "link": "serial", "port": "rg15",
             "wijk": "WK062600"},
        ],
        "faults": [],
    }
    data.update(changes)
    return data


def fault(**fields: Any) -> dict[str, Any]:
    return base(faults=[{"at": "10m", **fields}])


def refused(data: dict[str, Any], *, default_registry: Path | None = None) -> str:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(data, source="city.toml", default_registry=default_registry)
    message = str(info.value)
    assert message.startswith("city.toml: "), message  # every message names the file
    return message


def test_the_documented_example_loads_with_every_fault_kind() -> None:
    spec = load_scenario(DEMO)
    assert spec.source == str(DEMO)
    assert (spec.seed, spec.speed, spec.duration, spec.lora_modem) == (1, 60.0, 1800.0, "rn2483")
    assert (spec.report_interval, spec.occupancy_busy, spec.occupancy_quiet, spec.rain_tick) == (60, 300, 600, 10)
    assert set(spec.registry.gateways) == {"gw-demo-01"}
    assert spec.registry.devices["demo-rg-1"].port == "rg15"
    assert spec.registry.devices["demo-rg-1"].gemeente == "GM0626"  # from its gateway
    assert {f.kind for f in spec.faults} == set(FaultKind)
    garbage, truncate, silent = spec.faults[:3]
    assert (garbage.at, garbage.bytes, garbage.newline, garbage.target) == (120, 64, True, "gw-demo-01/rg15")
    assert (truncate.keep, truncate.lines, truncate.prefix) == (8, 1, None)
    assert (silent.at, silent.span, silent.end) == (360, 180, 540)
    assert [f.index for f in spec.faults] == list(range(len(spec.faults)))


def test_durations() -> None:
    assert parse_duration("90s") == 90
    assert parse_duration("10m") == 600
    assert parse_duration("1h30m") == 5400
    assert parse_duration("1d 2h") == 93600
    assert parse_duration("1.5h") == 5400
    assert parse_duration("250ms") == 0.25
    assert parse_duration(12) == 12.0
    for bad in ("10", "10 minutes", "-5s", "1h-5m", "", "h", True, None, [1], -1, float("nan"), "400d"):
        with pytest.raises(DurationError):
            parse_duration(bad)
    assert [format_duration(s) for s in (0.25, 90, 5400, 93600, 61.5)] == ["250ms", "1m30s", "1h30m", "1d2h",
                                                                          "1m1.5s"]
    assert doctest.testmod(scenario_clock).failed == 0


def test_the_clock_runs_speed_times_faster() -> None:
    now = [100.0]
    clock = ScenarioClock(60, clock=lambda: now[0])
    assert clock.now() == 0 and not clock.started
    clock.start()
    now[0] += 2.5
    assert clock.now() == 150 and clock.real_elapsed() == 2.5
    assert clock.real(600) == 10 and clock.deadline(600) == 110
    with pytest.raises(ValueError, match="speed must be > 0"):
        ScenarioClock(0)


@pytest.mark.parametrize(("data", "message"), [
    (base(sped=60), "unknown key 'sped'; did you mean 'speed'?"),
    (base(version=2), "version: must be 1, got 2"),
    ({k: v for k, v in base().items() if k != "version"}, "version: is required"),
    ({k: v for k, v in base().items() if k != "duration"}, "duration: is required"),
    (base(duration="an hour"), "duration: not a duration: 'an hour'"),
    (base(speed=0), "speed: must be a number of simulated seconds per real second"),
    (base(speed="fast"), "speed: must be a number"),
    (base(seed=1.5), "seed: must be an integer"),
    (base(lora_modem="rn2843"), "lora_modem: must be one of rn2483, rak3172, got 'rn2843'; did you mean 'rn2483'?"),
    (base(speed=100_000), "report_interval: 10m at speed 100000 is 6.0 ms of real time"),
    (base(registry="x.geojson"), "give either registry = PATH or [[gateways]]/[[devices]], not both"),
    (base(gateways=[{"id": "gw-1", "gemeente": "GM0626", "gemente": "x"}]),
     "gateways[0]: unknown key 'gemente'; did you mean 'gemeente'?"),
    (base(devices=[{"id": "d", "kind": "rain_gauge", "gateway": "gw-1", "link": "serial", "prot": "rg15"}]),
     "devices[0]: unknown key 'prot'; did you mean 'port'?"),
    (base(devices=[{"id": "d", "kind": "rain_gauge", "gateway": "gw-1", "link": "serial", "port": "rg15",
                    "wijk": "WK62"}]), "inline registry: feature 1 ('d'): property 'wijk' must match"),
    (base(gateways=[], devices=[]), "gateways: an inline city needs at least one [[gateways]] table"),
    (base(faults={"at": "1m"}), "faults: must be an array of tables ([[faults]])"),
    (fault(kind="garbge", target="gw-1/rg15"), "faults[0].kind: must be one of garbage, truncate, silent, "
                                                "modem_reset, unplug, got 'garbge'; did you mean 'garbage'?"),
    (fault(target="gw-1/rg15"), "faults[0].kind: must be one of"),
    (fault(kind="garbage", target="gw-1/rg15", byte=3), "faults[0]: unknown key 'byte'; did you mean 'bytes'?"),
    (fault(kind="silent", target="rain-1", duration="5m"), "faults[0]: unknown key 'duration'; did you mean 'for'?"),
    (fault(kind="silent", target="rain-1", **{"for": "5m"}, bytes=3),
     "faults[0]: 'bytes' does not apply to kind 'silent' (its keys: at, kind, target, for)"),
    (fault(kind="silent", target="rain-1"), "faults[0].for: is required"),
    (fault(kind="silent", target="rain-1", **{"for": "0s"}), "faults[0].for: must be more than 0"),
    (base(faults=[{"kind": "garbage", "target": "gw-1/rg15"}]), "faults[0].at: is required"),
    (fault(kind="garbage"), "faults[0].target: is required: a port, 'gateway/port'"),
    (fault(kind="garbage", target="gw-2/rg15"), "faults[0].target: no gateway 'gw-2' in the registry; "
                                                "did you mean 'gw-1'?"),
    (fault(kind="garbage", target="gw-1/rg16"), "faults[0].target: gateway 'gw-1' has no port 'rg16'; "
                                                "did you mean 'rg15'? (its ports: lora, rg15)"),
    (fault(kind="garbage", target="rain-1"), "faults[0].target: 'rain-1' is not a port"),
    (fault(kind="modem_reset", target="gw-1/rg15"), "modem_reset needs a gateway's modem, 'gw-1/lora'"),
    (fault(kind="silent", target="rain-9", **{"for": "1m"}), "faults[0].target: no device 'rain-9' in the "
                                                               "registry; did you mean 'rain-1'?"),
    (fault(kind="garbage", target="gw-1/rg15", bytes=0), "faults[0].bytes: must be an integer 1-65536, got 0"),
    (fault(kind="truncate", target="gw-1/rg15", keep=-1), "faults[0].keep: must be an integer 0-4096"),
    (fault(kind="truncate", target="gw-1/rg15", newline="yes"), "faults[0].newline: must be true or false"),
    (fault(kind="unplug", target="gw-1/rg15", **{"for": "1m"}, power_cycle=1),
     "faults[0].power_cycle: must be true or false"),
    (base(faults=[{"at": "59m", "kind": "unplug", "target": "gw-1/rg15", "for": "2m"}]),
     "faults[0]: unplug gw-1/rg15 at 59m for 2m ends at 1h1m, after the scenario's duration 1h"),
    (base(faults=[{"at": "2h", "kind": "garbage", "target": "gw-1/rg15"}]), "ends at 2h, after the scenario's"),
    (base(faults=[{"at": "10m", "kind": "unplug", "target": "gw-1/lora", "for": "10m"},
                  {"at": "15m", "kind": "unplug", "target": "gw-1/lora", "for": "1m"}]),
     "faults[1]: overlaps faults[0] (unplug gw-1/lora at 10m for 10m)"),
])
def test_mistakes_are_named_with_file_and_key(data: dict[str, Any], message: str) -> None:
    assert message in refused(data)


def test_faults_that_do_not_overlap_or_differ_in_target_are_fine() -> None:
    spec = parse_scenario(base(faults=[
        {"at": "10m", "kind": "unplug", "target": "gw-1/lora", "for": "5m"},
        {"at": "15m", "kind": "unplug", "target": "gw-1/lora", "for": "5m"},  # starts as the first ends
        {"at": "10m", "kind": "unplug", "target": "gw-1/rg15", "for": "10m"},
        {"at": "12m", "kind": "silent", "target": "light-1", "for": "48m"},
    ]))
    assert [f.end for f in spec.faults] == [900, 1200, 1200, 3600]


def test_registry_file_is_relative_to_the_scenario(tmp_path: Path) -> None:
    (tmp_path / "maps").mkdir()
    (tmp_path / "maps" / "city.geojson").write_text(json.dumps(tiny_registry_dict()))
    (tmp_path / "s.toml").write_text('version = 1\nduration = "1h"\nregistry = "maps/city.geojson"\n'
                                     '[[faults]]\nat = "1m"\nkind = "modem_reset"\ntarget = "gw-1/lora"\n')
    spec = load_scenario(tmp_path / "s.toml")
    assert set(spec.registry.gateways) == {"gw-1", "gw-2"}
    assert spec.faults[0].kind is FaultKind.MODEM_RESET


def test_without_a_city_the_default_registry_is_used(tmp_path: Path) -> None:
    path = tmp_path / "city.geojson"
    path.write_text(json.dumps(tiny_registry_dict()))
    data = {"version": 1, "duration": "1h"}
    assert set(parse_scenario(data, default_registry=path).registry.devices) >= {"rain-1", "light-1"}
    assert "no city: give registry = PATH or [[gateways]]" in refused(data)
    assert "cbs_map_year: only applies to inline" in refused({**data, "cbs_map_year": 2024}, default_registry=path)


def test_a_bad_registry_file_is_named(tmp_path: Path) -> None:
    assert "registry: cannot read registry" in refused({"version": 1, "duration": "1h",
                                                        "registry": str(tmp_path / "nope.geojson")})


def test_bad_toml_and_missing_files_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("version = 1\nspeed = = 2\n")
    with pytest.raises(ScenarioError, match=r"broken.toml: not valid TOML"):
        load_scenario(path)
    with pytest.raises(ScenarioError, match=r"cannot read scenario .*missing.toml"):
        load_scenario(tmp_path / "missing.toml")


def test_silent_refuses_devices_the_simulator_cannot_play() -> None:
    data = base()
    data["devices"].append({"id": "eui-1", "kind": "street_light", "gateway": "gw-1", "link": "lorawan",
                            "dev_eui": "0011223344556677", "wijk": "WK062600"})
    data["faults"] = [{"at": "1m", "kind": "silent", "target": "eui-1", "for": "1m"}]
    assert "device 'eui-1' is reached over lorawan" in refused(data)
