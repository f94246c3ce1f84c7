"""The municipalities' shipped rules (rules/examples/city-rules.toml) behave as promised, on the engine.

A small Voorschoten: one wijk with two rain gauges, two occupancy sensors, two street lights and
a traffic light. Times are real instants so that sunrise and sunset at Voorschoten decide day
and night (1 December 2026: sunrise ~08:35, sunset ~16:30 local, UTC+1).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from core.registry import Registry, parse
from rules.engine import Engine
from rules.reference import ReferenceEngine
from rules.rule_file import load_rules

CITY_RULES = Path(__file__).parents[2] / "rules" / "examples" / "city-rules.toml"
NIGHT = datetime(2026, 12, 1, 21, 0, tzinfo=UTC).timestamp()  # 22:00 local
DAY = datetime(2026, 12, 1, 11, 0, tzinfo=UTC).timestamp()  # 12:00 local
WIJK = "WK062601"
DEVICES = [("rg-1", "rain_gauge"), ("rg-2", "rain_gauge"), ("oc-1", "occupancy"), ("oc-2", "occupancy"),
           ("sl-1", "street_light"), ("sl-2", "street_light"), ("tl-1", "traffic_light")]


def voorschoten() -> Registry:
    def feature(props: dict[str, Any]) -> dict[str, Any]:
        return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [4.44, 52.13]}, "properties": props}

    features = [feature({"role": "gateway", "id": "gw-vs-01", "gemeente": "GM0626"})]
    for i, (ident, kind) in enumerate(DEVICES):
        features.append(feature({"role": "device", "id": ident, "kind": kind, "gateway": "gw-vs-01",
                                 "gemeente": "GM0626", "wijk": WIJK, "link": "lora", "address": f"{i + 1:08X}"}))
    return parse({"type": "FeatureCollection", "cbs_map_year": 2024, "features": features})


class Drive:
    """Feeds both engines the same readings and evaluations; checks they agree at every step."""

    def __init__(self, start: float) -> None:
        rules, registry = load_rules(CITY_RULES), voorschoten()
        self.engine = Engine(rules, registry, start)
        self.reference = ReferenceEngine(rules, registry, start)

    def read(self, now: float, **readings: float) -> None:
        keys = [tuple(k.split("__")) for k in readings]
        series = [self.engine.series_index[(d, m)] for d, m in keys]
        self.engine.fold(series, list(readings.values()), [now] * len(series), now)
        self.reference.fold_readings([(d, m, v, now) for (d, m), v in zip(keys, readings.values(), strict=True)], now)

    def at(self, now: float) -> list[tuple[str, str]]:
        got = [(t.rule, t.event.value) for t in self.engine.evaluate(now)]
        assert got == [(t.rule, t.event.value) for t in self.reference.evaluate(now)]
        return got


def rain(drive: Drive, now: float, mm_h: float) -> list[tuple[str, str]]:
    drive.read(now, **{"rg-1__rain_intensity": mm_h})
    return [x for x in drive.at(now) if x[0] == "rain-bike-priority"]


def test_rain_over_half_a_millimetre_for_two_minutes_gives_bike_priority_and_a_drizzle_does_not_flap() -> None:
    d = Drive(DAY)
    assert rain(d, DAY, 0.8) == []
    assert rain(d, DAY + 60, 0.9) == []
    assert rain(d, DAY + 120, 0.7) == [("rain-bike-priority", "activate")]
    # An hour of rain oscillating between the two thresholds: no transition at all.
    flips = [x for k in range(60) for x in rain(d, DAY + 180 + 60 * k, 0.45 if k % 2 else 0.15)]
    assert flips == []
    # Dry (< 0.1) for ten minutes: off, and not before.
    t = DAY + 180 + 3600
    assert [x for k in range(10) for x in rain(d, t + 60 * k, 0.05)] == []
    assert rain(d, t + 600, 0.0) == [("rain-bike-priority", "clear")]


def test_bike_priority_command_goes_to_the_traffic_light_of_the_wijk() -> None:
    d = Drive(DAY)
    rain(d, DAY, 2.0)
    rain(d, DAY + 120, 2.0)
    [rs] = [s for s in d.engine.slots if s.rule.name == "rain-bike-priority"]
    assert [t.device for t in rs.targets["activate", 0][0]] == ["tl-1"]


def lights(drive: Drive, now: float, **counts: float) -> list[tuple[str, str]]:
    if counts:
        drive.read(now, **{f"{k.replace('_', '-')}__count": v for k, v in counts.items()})
    # Reasserts (every 5 minutes) re-send the current level; here only changes of state matter.
    return [x for x in drive.at(now) if x[0].startswith("lights-") and x[1] != "reassert"]


def test_night_lights_dim_after_five_quiet_minutes_and_go_full_at_once_for_people_and_off_by_day() -> None:
    d = Drive(NIGHT)
    assert lights(d, NIGHT, oc_1=0, oc_2=0) == []
    assert lights(d, NIGHT + 299, oc_1=0) == []
    assert lights(d, NIGHT + 300, oc_2=0) == [("lights-at-night-quiet", "activate")]
    # Someone counted: 100 % at once (the quiet rule clears, the people rule activates).
    assert sorted(lights(d, NIGHT + 310, oc_1=2)) == [("lights-at-night-quiet", "clear"),
                                                      ("lights-for-people", "activate")]
    assert lights(d, NIGHT + 320, oc_1=0) == [("lights-for-people", "clear")]
    assert lights(d, NIGHT + 619, oc_1=0) == []
    assert lights(d, NIGHT + 620, oc_2=0) == [("lights-at-night-quiet", "activate")]


def test_by_day_the_lights_are_off() -> None:
    d = Drive(DAY)
    assert lights(d, DAY, oc_1=0) == [("lights-by-day", "activate")]
    assert lights(d, DAY + 60, oc_1=5) == []  # people by day change nothing


def test_a_lamp_on_drawing_under_five_watts_for_ten_minutes_raises_lamp_failure() -> None:
    d = Drive(NIGHT)
    for k in range(10):
        d.read(NIGHT + 60 * k, **{"sl-1__dim_level": 100, "sl-1__power": 1.0, "sl-2__dim_level": 100,
                                  "sl-2__power": 38.0})
        assert [x for x in d.at(NIGHT + 60 * k) if x[0] == "lamp-failure"] == []
    d.read(NIGHT + 600, **{"sl-1__power": 1.0})
    assert [x for x in d.at(NIGHT + 600) if x[0] == "lamp-failure"] == [("lamp-failure", "activate")]
    assert [x for x in d.at(NIGHT + 660) if x[0] == "lamp-failure"] == []  # active: nothing new


def test_a_device_never_heard_from_is_silent_after_thirty_minutes() -> None:
    d = Drive(NIGHT)
    for k in range(30):
        d.read(NIGHT + 60 * k, **{"rg-1__rain_intensity": 0.0})
    silent = [t for t in d.engine.evaluate(NIGHT + 1801) if t.rule == "device-silent"]
    # Every device but rg-1 (which kept reporting) has been silent for more than 30 minutes.
    assert sorted(t.group for t in silent) == sorted(ident for ident, _ in DEVICES if ident != "rg-1")


@pytest.mark.parametrize("used, expected", [(0.040, []), (0.050, [("energy-budget", "activate")])])
def test_energy_per_light_over_the_last_hour_above_budget_raises_an_alarm(
        used: float, expected: list[tuple[str, str]]) -> None:
    # The budget is per light (the wijk's mean), so one light above it and one below can stay under.
    d = Drive(NIGHT)
    d.read(NIGHT, **{"sl-1__energy": 100.0, "sl-2__energy": 50.0})
    d.read(NIGHT + 1800, **{"sl-1__energy": 100.0 + used + 0.004, "sl-2__energy": 50.0 + used - 0.004})
    assert [x for x in d.at(NIGHT + 1800) if x[0] == "energy-budget"] == expected
