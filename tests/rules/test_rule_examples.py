"""The example rule files load to the rules they document, and well-formed variations load as meant."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from pathlib import Path

import pytest

from rules import expressions
from rules.expressions import parse
from rules.rule_file import RULE_KEYS, load_rules, parse_rules
from rules.rule_file_v1 import to_toml
from rules.rule_model import (
    ANY,
    ATTRIBUTES,
    AlarmAction,
    CommandAction,
    Expression,
    Reducer,
    Rule,
    Schedule,
    SeriesFn,
    Severity,
    TargetSpec,
    TimeOfDay,
    ValueSpec,
    WebhookAction,
)
from tests.rules.rule_file_cases import (
    BASE_RULE,
    CITY,
    DELETE,
    EXAMPLES,
    MUNICIPALITIES,
    ROOT,
    rule_file,
)

# ---- the examples ----

@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_loads(path: Path) -> None:
    ruleset = load_rules(path)
    assert ruleset.version == 2
    assert ruleset.source == str(path)
    assert ruleset.rules
    for rule in ruleset.rules:
        assert rule.description, f"{path.name}: rule {rule.name} should say what it is for"


def test_city_rules_ship_both_municipalities_rules() -> None:
    ruleset = load_rules(CITY)
    assert ruleset.migrated_from is None
    assert ruleset.timezone == "Europe/Amsterdam"
    assert [r.name for r in ruleset.rules] == [
        "rain-bike-priority", "lights-by-day", "lights-at-night-quiet", "lights-for-people",
        "lamp-failure", "device-silent", "energy-budget"]
    assert all(r.where == {"gemeente": MUNICIPALITIES} for r in ruleset.rules)
    rules = {r.name: r for r in ruleset.rules}

    def bike(enabled: bool) -> CommandAction:
        return CommandAction("bike_priority", {"enabled": enabled}, TargetSpec("traffic_light"))

    assert rules["rain-bike-priority"] == Rule(
        name="rain-bike-priority", kind="rain_gauge", group_by="wijk",
        values=(ValueSpec("rain", "rain_gauge", "rain_intensity", SeriesFn.LAST, None, Reducer.MAX),),
        when=Expression("rain > 0.5", parse("rain > 0.5")), clear_when=Expression("rain < 0.1", parse("rain < 0.1")),
        for_seconds=120.0, clear_for_seconds=600.0, where={"gemeente": MUNICIPALITIES},
        on_activate=(bike(True),), on_clear=(bike(False),),
        description="Bike priority at a wijk's traffic lights while its rain gauges measure rain",
    )
    people = (ValueSpec("people", "occupancy", "count", SeriesFn.LAST, None, Reducer.SUM),)
    for name, when, level, for_seconds, urgent in [
        ("lights-by-day", "day", 0, 0.0, False),
        ("lights-at-night-quiet", "night and people == 0", 20, 300.0, False),
        ("lights-for-people", "night and people > 0", 100, 0.0, True),
    ]:
        rule = rules[name]
        assert (rule.kind, rule.group_by, rule.values) == ("occupancy", "wijk", people)
        assert rule.when == Expression(when, parse(when))
        assert rule.clear_when is None
        assert (rule.for_seconds, rule.urgent, rule.reassert_seconds) == (for_seconds, urgent, 300.0)
        assert rule.on_activate == (CommandAction("dim", {"level": level}, TargetSpec("street_light")),)
        assert rule.on_clear == ()
    lamp = rules["lamp-failure"]
    assert (lamp.kind, lamp.group_by, lamp.for_seconds) == ("street_light", "device", 600.0)
    assert [(v.name, v.metric, v.fn) for v in lamp.values] == [("level", "dim_level", SeriesFn.LAST),
                                                                ("power", "power", SeriesFn.LAST)]
    assert lamp.when.tree == parse("level > 0 and power < 5")
    assert lamp.on_activate == (AlarmAction("Lamp failure", Severity.MAJOR),)
    silent = rules["device-silent"]
    assert (silent.kind, silent.group_by) == (ANY, "device")
    assert silent.values == (ValueSpec("silence", ANY, ANY, SeriesFn.SILENCE, None, Reducer.MIN),)
    assert silent.on_activate == (AlarmAction("Device silent", Severity.WARNING),)
    energy = rules["energy-budget"]
    assert energy.values == (ValueSpec("used", "street_light", "energy", SeriesFn.DELTA, 3600.0, Reducer.MEAN),)
    assert energy.when.tree == parse("used > 0.045")
    assert energy.on_activate == (AlarmAction("Energy budget exceeded", Severity.MINOR),)


def test_all_keys_example_uses_every_key() -> None:
    path = ROOT / "rules" / "examples" / "all-keys.toml"
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    assert set(data) == {"version", "timezone", "schedules", "rules"}
    assert set(data["rules"][0]) == set(RULE_KEYS)
    ruleset = load_rules(path)
    assert ruleset.schedules == {
        "evening": Schedule("evening", TimeOfDay("sunset", -1800.0), TimeOfDay("clock", 23 * 3600.0),
                            frozenset(range(5))),
        "market": Schedule("market", TimeOfDay("clock", 8 * 3600.0), TimeOfDay("clock", 13 * 3600.0),
                           frozenset({5})),
    }
    (rule,) = ruleset.rules
    assert rule.where == {"gemeente": frozenset({"GM0626"}), "link": frozenset({"serial"})}
    assert rule.values == (
        ValueSpec("rain", "rain_gauge", "rain_intensity", SeriesFn.MEAN, 600.0, Reducer.MAX),
        ValueSpec("rising", "rain_gauge", "event_accumulation", SeriesFn.RATE, 900.0, Reducer.MAX),
        ValueSpec("gauges", "rain_gauge", "rain_intensity", SeriesFn.LAST, None, Reducer.COUNT),
        ValueSpec("lights", "street_light", "dim_level", SeriesFn.LAST, None, Reducer.MEAN),
    )
    assert expressions.names_used(rule.when.tree) == {"evening", "market", "gauges", "rain", "rising"}
    assert rule.clear_when is not None
    assert (rule.for_seconds, rule.clear_for_seconds, rule.cooldown_seconds, rule.stale_after,
            rule.reassert_seconds, rule.urgent) == (300.0, 900.0, 3600.0, 1800.0, 0.0, False)
    bike = CommandAction("bike_priority", {"enabled": True}, TargetSpec("traffic_light", "gemeente"))
    hook = WebhookAction("https://hooks.example.org/smartcity/heavy-rain")
    assert rule.on_activate == (bike, hook, AlarmAction("Heavy rain", Severity.MINOR))
    assert rule.on_clear == (replace(bike, params={"enabled": False}), hook)


def test_defaults() -> None:
    (rule,) = parse_rules(rule_file({"on_activate": DELETE, "on_clear": DELETE})).rules
    assert rule == Rule(name="rain", kind="rain_gauge", group_by="wijk",
                        values=(ValueSpec("rain", "rain_gauge", "rain_intensity"),),
                        when=Expression("rain > 0.5", parse("rain > 0.5")))
    ruleset = parse_rules("version = 2\n")
    assert (ruleset.rules, ruleset.schedules, ruleset.timezone, ruleset.migrated_from) == ((), {}, "Europe/Amsterdam",
                                                                                           None)


def test_durations_take_numbers_and_strings() -> None:
    (rule,) = parse_rules(rule_file({"for": 90, "clear_for": "1h30m", "cooldown": 2.5, "reassert": "500ms",
                                     "stale_after": "1d"})).rules
    assert (rule.for_seconds, rule.clear_for_seconds, rule.cooldown_seconds, rule.reassert_seconds,
            rule.stale_after) == (90.0, 5400.0, 2.5, 0.5, 86400.0)


def test_value_kinds_default_to_the_rule_kind_and_star_metrics_need_silence() -> None:
    (rule,) = parse_rules(rule_file({"kind": "*", "values": {
        "quiet": {"metric": "*", "fn": "silence", "reduce": "min"},
        "people": {"kind": "occupancy", "metric": "count", "fn": "sum", "over": "10m", "reduce": "sum"},
        "any_count": {"metric": "count"}}, "when": "quiet > 60 or people + any_count > 1",
        "on_activate": DELETE, "on_clear": DELETE})).rules
    assert rule.values == (ValueSpec("quiet", ANY, ANY, SeriesFn.SILENCE, None, Reducer.MIN),
                           ValueSpec("people", "occupancy", "count", SeriesFn.SUM, 600.0, Reducer.SUM),
                           ValueSpec("any_count", ANY, "count"))


def test_schedules_and_targets_same_device() -> None:
    text = rule_file({"kind": "street_light", "group_by": "device", "values": {"level": {"metric": "dim_level"}},
                      "when": "late and level < 10 and not wrapped",
                      "on_activate": [{"command": "dim", "params": {"level": 50},
                                       "targets": {"kind": "street_light", "same": "device"}}],
                      "on_clear": [{"webhook": "http://127.0.0.1:8080/hook?x=1#f"}]},
                     schedules={"late": {"from": "sunrise+1h30m", "to": "sunset-1h", "days": ["sun", "mon"]},
                                "wrapped": {"from": "22:30", "to": "06:00"}})
    ruleset = parse_rules(text)
    assert ruleset.schedules["late"] == Schedule("late", TimeOfDay("sunrise", 5400.0), TimeOfDay("sunset", -3600.0),
                                                 frozenset({6, 0}))
    assert ruleset.schedules["wrapped"] == Schedule("wrapped", TimeOfDay("clock", 22.5 * 3600),
                                                    TimeOfDay("clock", 6 * 3600.0))
    (rule,) = ruleset.rules
    assert rule.on_activate == (CommandAction("dim", {"level": 50}, TargetSpec("street_light", "device")),)
    assert rule.on_clear == (WebhookAction("http://127.0.0.1:8080/hook?x=1#f"),)


def test_where_accepts_every_attribute() -> None:
    where = {"device": ["rg-1"], "kind": ["rain_gauge"], "gateway": ["gw-1"], "gemeente": ["GM0626"],
             "wijk": ["WK062600", "WK062601"], "link": ["serial"], "classification": ["openbaar"]}
    (rule,) = parse_rules(rule_file({"where": where})).rules
    assert rule.where == {k: frozenset(v) for k, v in where.items()}
    assert list(rule.where) == list(ATTRIBUTES)  # fixed order, whatever the file's


def test_several_rules_keep_file_order() -> None:
    text = rule_file() + "\n" + to_toml({"rules": [{**BASE_RULE, "name": "a.b-c_1"}]})
    assert [r.name for r in parse_rules(text).rules] == ["rain", "a.b-c_1"]


def test_demo_rules_are_the_city_rules_with_short_durations() -> None:
    examples = Path(__file__).parents[2] / "rules" / "examples"
    city, demo = load_rules(examples / "city-rules.toml"), load_rules(examples / "demo-rules.toml")
    assert [r.name for r in demo.rules] == [r.name for r in city.rules]
    for c, d in zip(city.rules, demo.rules, strict=True):
        assert (d.values, d.where, d.group_by, d.on_activate, d.on_clear) == \
               (c.values, c.where, c.group_by, c.on_activate, c.on_clear), c.name
        assert d.for_seconds <= c.for_seconds and d.clear_for_seconds <= c.clear_for_seconds, c.name
    silent = {r.name: r.when.text for r in demo.rules}["device-silent"]
    assert silent == "silence > 300"
