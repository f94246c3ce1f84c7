"""The scenario runner: timers scaled by the speed, stable port paths, faults on schedule, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from edge.lora_keys import KeyRing
from firmware_sim.scenario import BEGIN, END, Scenario
from firmware_sim.scenario_file import FaultKind, ScenarioError, ScenarioSpec, parse_scenario
from tests.firmware_sim.support import KEYS, tiny_registry_dict, wait_for


def spec_for(tmp_path: Path, faults: list[dict[str, Any]], **top: Any) -> ScenarioSpec:
    """The tiny registry (gw-1: a light, a counter, a rain gauge, a serial light; gw-2: a gauge) at speed 60."""
    registry = tmp_path / "city.geojson"
    registry.write_text(json.dumps(tiny_registry_dict()))
    data = {"version": 1, "speed": 60, "duration": "5m", "registry": str(registry), "report_interval": "6s",
            "faults": faults, **top}
    return parse_scenario(data, source="test.toml")


def test_device_timers_are_simulated_time_divided_by_the_speed(tmp_path: Path) -> None:
    spec = spec_for(tmp_path, [], speed=120, report_interval="10m", occupancy_busy="4m", occupancy_quiet="8m",
                    rain_tick="30s", seed=5, lora_modem="rak3172")
    with Scenario(spec, keys=KEYS) as s:
        city = s.city
        assert city is not None
        assert city.street_lights["light-1"].report_interval == 5.0  # 600 s / 120
        counter = city.occupancy["counter-1"]
        assert (counter.busy_seconds, counter.quiet_seconds) == (2.0, 4.0)
        gauge = city.gauges["rain-1"]
        assert (gauge.tick, gauge.time_scale) == (0.25, 120)  # rain runs at the scenario's speed too
        assert type(city.modems["gw-1"]).__name__ == "RAK3172Sim" and city.seed == 5


def test_ports_are_stable_symlinks_to_the_ptys(tmp_path: Path) -> None:
    links = tmp_path / "by-id"
    s = Scenario(spec_for(tmp_path, []), keys=KEYS, link_dir=links)
    s.open()
    try:
        assert s.city is not None
        ports = s.ports()
        assert set(ports) == {"gw-1", "gw-2"} and set(ports["gw-1"]) == {"lora", "rg15"}
        for gateway, names in s.city.ports().items():
            for name, pty in names.items():
                link = Path(ports[gateway][name])
                assert link.parent == links and link.is_symlink() and os.readlink(link) == pty
        s.write_port_map(tmp_path / "ports.json")
        assert json.loads((tmp_path / "ports.json").read_text()) == ports
    finally:
        s.stop()
    assert links.is_dir() and list(links.iterdir()) == []  # our links gone, the given directory kept


def test_the_default_link_directory_is_removed_at_stop(tmp_path: Path) -> None:
    s = Scenario(spec_for(tmp_path, []), keys=KEYS)
    s.open()
    directory = s.link_dir
    assert directory.is_dir()
    s.stop()
    s.stop()  # idempotent
    assert not directory.exists()


def test_faults_fire_at_their_simulated_times_and_are_recorded(tmp_path: Path) -> None:
    spec = spec_for(tmp_path, [
        {"at": "1m", "kind": "silent", "target": "light-1", "for": "30s"},
        {"at": "30s", "kind": "modem_reset", "target": "gw-1/lora"},
        {"at": "45s", "kind": "garbage", "target": "gw-2/rg15", "bytes": 10},
        {"at": "0s", "kind": "truncate", "target": "gw-1/rg15"},
    ])
    with Scenario(spec, keys=KEYS) as s:
        assert s.records() == [] and not s.finished
        s.start()
        last = s.wait_for(0, END, timeout=5.0)
        assert last is not None and last.ok
        records = s.records()
    assert [(r.index, r.phase) for r in records] == [(3, BEGIN), (1, BEGIN), (2, BEGIN), (0, BEGIN), (0, END)]
    for r in records:
        assert r.ok, r.detail
        assert r.planned <= r.sim_time < r.planned + 0.2 * spec.speed  # at most 0.2 real s late
        assert r.real_time == pytest.approx(r.sim_time / spec.speed, abs=0.01)
    assert [r.wall_time for r in records] == sorted(r.wall_time for r in records)
    assert records[0].kind is FaultKind.TRUNCATE and records[0].detail.startswith("next 1 line(s) starting 'Acc'")
    assert records[1].detail == "RN2483Sim rebooted (reset #1)"
    counts = s.counters()
    assert counts["applied"] == 4 and counts["ended"] == 1 and counts["errors"] == 0
    assert counts["applied.silent"] == 1 and counts["garbage_bytes"] == 10


def test_run_returns_after_the_duration_and_cleans_up(tmp_path: Path) -> None:
    spec = spec_for(tmp_path, [{"at": "30s", "kind": "unplug", "target": "gw-2/rg15", "for": "15s"}],
                    duration="1m")
    s = Scenario(spec, keys=KEYS)
    started = time.monotonic()
    records = s.run()
    assert 0.95 <= time.monotonic() - started < 3.0  # 60 simulated s at speed 60
    assert s.finished and [r.phase for r in records] == [BEGIN, END]
    assert all(usb.port.closed for usb in s.usb_ports.values())
    assert not s.link_dir.exists()
    assert s.counters()["replugs"] == 1


def test_run_stops_early_when_told(tmp_path: Path) -> None:
    s = Scenario(spec_for(tmp_path, [], duration="1h"), keys=KEYS)
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    started = time.monotonic()
    s.run(stop=stop)
    assert time.monotonic() - started < 2.0 and not s.finished


def test_a_fault_that_fails_is_recorded_and_the_schedule_goes_on(tmp_path: Path) -> None:
    spec = spec_for(tmp_path, [
        {"at": "6s", "kind": "modem_reset", "target": "gw-1/lora"},
        {"at": "12s", "kind": "garbage", "target": "gw-1/lora"},
    ])
    with Scenario(spec, keys=KEYS) as s:
        assert s.city is not None

        def broken() -> None:
            raise OSError(5, "Input/output error")

        s.city.modems["gw-1"].reset = broken  # type: ignore[method-assign]
        s.start()
        assert s.wait_for(1, timeout=5.0) is not None
        failed, applied = s.records()
    assert not failed.ok and failed.detail == "failed: OSError: [Errno 5] Input/output error"
    assert applied.ok
    assert s.counters()["errors"] == 1 and s.counters()["applied"] == 1


def test_a_fault_on_a_device_the_city_does_not_play_fails_at_open(tmp_path: Path) -> None:
    # light-serial is a street light on a serial port: in the registry, not simulated.
    s = Scenario(spec_for(tmp_path, [{"at": "1m", "kind": "silent", "target": "light-serial", "for": "1m"}]),
                 keys=KEYS, link_dir=tmp_path / "links")
    with pytest.raises(ScenarioError, match=r"test.toml: faults\[0\].target: device 'light-serial' is not simulated"):
        s.open()
    assert s.city is not None and all(p.closed for p in (g.port for g in s.city.gauges.values()))
    assert list((tmp_path / "links").iterdir()) == []


def test_wait_for_gives_up_after_its_timeout(tmp_path: Path) -> None:
    with Scenario(spec_for(tmp_path, [{"at": "4m", "kind": "modem_reset", "target": "gw-1/lora"}]), keys=KEYS) as s:
        s.start()
        started = time.monotonic()
        assert s.wait_for(0, timeout=0.1) is None
        assert 0.09 <= time.monotonic() - started < 1.0


# --- the smartcity sim --scenario command ---

def smartcity_sim(tmp_path: Path, scenario: str, *extra: str) -> subprocess.Popen[str]:
    keys = tmp_path / "keys.json"
    KeyRing.generate().save(keys)
    (tmp_path / "s.toml").write_text(scenario)
    return subprocess.Popen(
        [sys.executable, "-m", "smartcity", "sim", "--scenario", str(tmp_path / "s.toml"), "--lora-keys", str(keys),
         "--port-map", str(tmp_path / "ports.json"), "--link-dir", str(tmp_path / "by-id"), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


SMALL = """
version = 1
speed = 60
duration = "2m"
[[gateways]]
id = "gw-1"
gemeente = "GM0626"
[[devices]]
id = "rain-1"
kind = "rain_gauge"
gateway = "gw-1"
link = "serial"
port = "rg15"
wijk = "WK062600"
[[faults]]
at = "30s"
kind = "unplug"
target = "gw-1/rg15"
for = "30s"
"""


def test_sim_runs_a_scenario_until_its_duration(tmp_path: Path) -> None:
    child = smartcity_sim(tmp_path, SMALL)
    try:
        assert wait_for((tmp_path / "ports.json").exists, timeout=15.0)
        link = Path(json.loads((tmp_path / "ports.json").read_text())["gw-1"]["rg15"])
        assert link.parent == tmp_path / "by-id" and link.is_symlink()
        output, _ = child.communicate(timeout=20)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == 0, output
    assert "fault faults[0] begin unplug gw-1/rg15 at 30s for 30s" in output
    assert "fault faults[0] end" in output and "'replugs': 1" in output
    assert not os.path.lexists(link)


def test_sim_names_a_bad_scenario_and_exits_2(tmp_path: Path) -> None:
    child = smartcity_sim(tmp_path, SMALL.replace('kind = "unplug"', 'kind = "unplugged"'))
    output, _ = child.communicate(timeout=20)
    assert child.returncode == 2
    assert "s.toml: faults[0].kind: must be one of" in output and "did you mean 'unplug'?" in output
    assert "Traceback" not in output


def test_sim_duration_caps_a_long_scenario_in_real_seconds(tmp_path: Path) -> None:
    child = smartcity_sim(tmp_path, SMALL, "--duration", "0.2")  # 2 simulated minutes would take 2 s
    output, _ = child.communicate(timeout=20)
    assert child.returncode == 0, output
    assert "fault faults[0]" not in output  # due at 0.5 s real: never reached
    assert "'applied': 0" in output
