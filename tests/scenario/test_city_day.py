"""A day of the Voorschoten and Wassenaar city: what the platform did equals what the script injected.

The day runs through the real code paths (scenario/day.py) into a real influxd, at 2 % of the city's
street lights and the full city's script: three lamp failures, a gateway without power for an hour, an
occupancy sensor silent for an hour, two showers over several wijken, an operator acknowledging alarms.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from core.registry import Registry
from rules.rule_file import load_rules
from scenario.day import CITY_RULES, TICK, CityDay, active_periods, query_rows
from scenario.gateway import REPORT

pytestmark = pytest.mark.integration

RULES = {r.name: r for r in load_rules(CITY_RULES).rules}
SLACK = 3 * TICK  # an evaluation a minute, a reading reaching the rules up to a minute after it was taken


def _alarms(day: CityDay, rule: str) -> dict[str, list[tuple[float, float | None, float | None]]]:
    out: dict[str, list[tuple[float, float | None, float | None]]] = {}
    for a in day.alarms:
        if a.rule == rule:
            out.setdefault(a.group, []).append((a.raised_at, a.acknowledged_at, a.cleared_at))
    return out


def test_every_failed_lamp_raised_exactly_one_alarm(small_city: tuple[CityDay, Path]) -> None:
    day, _ = small_city
    alarms = _alarms(day, "lamp-failure")
    assert set(alarms) == set(day.failed_lamps)  # no lamp that did not fail raised one
    detect = REPORT["street_light"] + RULES["lamp-failure"].for_seconds
    for lamp, failed_at in day.failed_lamps.items():
        assert len(alarms[lamp]) == 1, lamp
        raised, _, cleared = alarms[lamp][0]
        assert failed_at < raised <= failed_at + detect + SLACK, (lamp, raised - failed_at)
        assert cleared is None or cleared > raised


def test_the_gateway_without_power_raised_one_silence_alarm_per_device(small_city: tuple[CityDay, Path]) -> None:
    day, _ = small_city
    (gateway, (off, on)), = day.silent_gateways.items()
    silent = _alarms(day, "device-silent")
    devices = {d.id for d in day.registry.devices_of(gateway)}
    assert devices | set(day.silent_devices) == set(silent)  # and nothing else fell silent
    after = 1800.0  # the rule's `silence > 1800`
    for device in devices:
        assert len(silent[device]) == 1, device
        raised, _, cleared = silent[device][0]
        assert off + after - max(REPORT.values()) - SLACK <= raised <= off + after + SLACK, (device, raised - off)
        assert cleared is not None and on <= cleared <= on + max(REPORT.values()) + SLACK, (device, cleared - on)
    stored = query_rows(day, f"SELECT count(*) FROM /street_light|occupancy|traffic_light|rain_gauge/ "
                             f"WHERE gateway = '{gateway}' AND time >= {round(off)}s AND time < {round(on)}s")
    assert stored == []  # nothing was heard while it was off
    offline = query_rows(day, f"SELECT * FROM gateway_status WHERE gateway = '{gateway}' AND state = 'offline'")
    assert [round(r["time"]) for r in offline] == [round(off)]


def test_the_operator_acknowledged_what_was_open(small_city: tuple[CityDay, Path]) -> None:
    day, _ = small_city
    lamps = _alarms(day, "lamp-failure")
    acked = sorted(lamp for lamp, [(_, ack, _)] in lamps.items() if ack is not None)
    # The script acknowledges lamp failures at 22:00: the lamps that failed at 19:30 and 21:00, not 22:45.
    assert acked == sorted(lamp for lamp, at in day.failed_lamps.items() if at < max(day.failed_lamps.values()))
    assert day.acknowledged["lamp-failure"] == 2
    points = query_rows(day, "SELECT * FROM alarm WHERE state = 'acknowledged'")
    assert Counter(p["rule"] for p in points) == Counter({r: n for r, n in day.acknowledged.items() if n})
    assert all(p["by"] == "operator:scenario" and p["gemeente"] and p["wijk"] for p in points)


def test_bike_priority_covered_each_shower_within_the_rules_delays(small_city: tuple[CityDay, Path]) -> None:
    day, _ = small_city
    rule = RULES["rain-bike-priority"]
    wet = {w for s in day.showers for w in s.wijken}
    assert len(wet) >= 8  # a shower over Voorschoten, one over western Wassenaar
    for shower in day.showers:
        for wijk in shower.wijken:
            periods = [p for p in active_periods(day, rule.name, wijk) if p[0] < shower.end and p[1] > shower.start]
            assert len(periods) == 1, (wijk, periods)
            begin, end = periods[0]
            assert shower.start < begin <= shower.start + rule.for_seconds + SLACK, (wijk, begin - shower.start)
            assert shower.end < end <= shower.end + rule.clear_for_seconds + SLACK, (wijk, end - shower.end)
    for wijk in {d.wijk for d in day.registry.devices.values()} - wet:
        assert active_periods(day, rule.name, wijk) == [], wijk
    # Each wet wijk's traffic lights were told to give bikes priority and then to stop, and applied both.
    lights = _lights_of(day.registry, wet)
    told = Counter((c.device, bool(c.params["enabled"])) for c in day.commands if c.action.value == "bike_priority")
    assert told == Counter({(t, on): 1 for t in lights for on in (True, False)})
    applied = {a.id for _, a in day.acks if a.status.value == "applied"}
    assert all(c.id in applied for c in day.commands if c.action.value == "bike_priority")


def _lights_of(registry: Registry, wijken: set[str]) -> list[str]:
    return [d.id for d in registry.devices.values() if d.kind == "traffic_light" and d.wijk in wijken]


def test_lorawan_devices_reported_through_the_network_server(small_city: tuple[CityDay, Path]) -> None:
    day, _ = small_city
    lorawan = [d for d in day.registry.devices.values() if d.link == "lorawan" and d.kind == "street_light"]
    assert len(lorawan) >= 10
    rows = query_rows(day, f"SELECT count(power) FROM street_light WHERE time >= {round(day.start)}s "
                           f"AND time < {round(day.end)}s GROUP BY device")
    per_device = {r["device"]: r["count"] for r in rows}
    # A light reports every 10 minutes and after each command it applies (the sunset, the reasserts):
    # over the network server as often as over a modem, one lost frame at most.
    silent = {d.id for g in day.silent_gateways for d in day.registry.devices_of(g)}
    modem = sorted(n for d, n in per_device.items() if day.registry.devices[d].link == "lora" and d not in silent)
    typical = modem[len(modem) // 2]
    assert typical >= 86400 / REPORT["street_light"]
    assert {d.id for d in lorawan} <= set(per_device)
    assert all(typical - 1 <= per_device[d.id] <= typical + 1 for d in lorawan if d.id not in silent), per_device
