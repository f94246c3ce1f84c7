"""The rule file (version 2): every mistake is refused with a message naming file, rule and field;
hostile and random input gives RuleFileError, never a crash."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import ConfigError
from rules.rule_file import RULE_KEYS, VALUE_KEYS, RuleFileError, load_rules, parse_rules
from rules.rule_model import (
    CommandAction,
    TargetSpec,
)
from tests.rules.rule_file_cases import (
    DELETE,
    FAST,
    rejects,
    rule_file,
)

# ---- every mistake, with its message ----

BAD_RULES: list[tuple[dict[str, Any], str]] = [
    # the rule table
    ({"name": "has space"}, "rules[0]: name must match ^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$: 'has space'"),
    ({"name": DELETE}, "rules[0]: name must match"),
    ({"name": "x" * 64}, "rules[0]: name must match"),
    ({"clear-when": "rain < 1"}, "rule 'rain': unknown key 'clear-when' (did you mean clear_when?); known: clear_for, "
                                 "clear_when, cooldown, description, for, group_by, kind, name, on_activate, on_clear, "
                                 "reassert, stale_after, urgent, values, when, where"),
    ({"type": "x", "zone": "y"}, "rule 'rain': unknown keys 'type', 'zone'; known:"),
    ({"kind": DELETE}, "rule 'rain': missing 'kind'"),
    ({"kind": "lamp"}, "rule 'rain': kind must be one of *, occupancy, parking_spot, rain_gauge, street_light, "
                       "traffic_light: "
                       "'lamp'"),
    ({"group_by": DELETE}, "missing 'group_by'"),
    ({"group_by": "street"}, "group_by must be one of device, kind, gateway, gemeente, wijk, link, classification: "
                             "'street'"),
    ({"description": 3}, "rule 'rain': description must be a string: 3"),
    ({"urgent": "yes"}, "rule 'rain': urgent must be true or false: 'yes'"),
    ({"urgent": 1}, "urgent must be true or false: 1"),
    # durations
    ({"for": "2 min"}, "rule 'rain': for must be a duration (seconds >= 0, or a string like '90s', '2m', '1h30m', "
                       "'1d', '500ms'): '2 min'"),
    ({"for": -1}, "for must be a duration"),
    ({"clear_for": True}, "clear_for must be a duration (seconds >= 0, or a string like"),
    ({"cooldown": "5"}, "cooldown must be a duration (seconds >= 0, or a string like '90s', '2m', '1h30m', '1d', "
                        "'500ms') (a number in a string needs a unit, e.g. '30s'): '5'"),
    ({"reassert": "400d"}, "reassert must be at most 366d: '400d'"),
    ({"stale_after": 0}, "stale_after must be a duration > 0: 0"),
    ({"stale_after": 1e300}, "stale_after must be at most 366d"),
    # values
    ({"values": DELETE}, "rule 'rain': values: a rule needs at least one value"),
    ({"values": {}}, "values: a rule needs at least one value"),
    ({"values": 3}, "values must be a table: 3"),
    ({"values.rain": 3}, "values.rain must be a table: 3"),
    ({"values.rain.metirc": "x"}, "rule 'rain': values.rain: unknown key 'metirc' (did you mean metric?); "
                                  "known: fn, kind, metric, over, reduce"),
    ({"values.rain.metric": DELETE}, "missing 'values.rain.metric'"),
    ({"values.rain.metric": "rain"}, "values.rain.metric must be a metric of rain_gauge (accumulation, "
                                     "event_accumulation, rain_intensity, total_accumulation) or \"*\": 'rain'"),
    ({"values.rain.metric": ""}, "values.rain.metric must be a non-empty string: ''"),
    ({"values.rain.kind": "*", "values.rain.metric": "bogus"}, "values.rain.metric must be a metric of any kind ("),
    ({"values.rain.metric": "*"}, "values.rain.metric \"*\" (every metric) is allowed only with fn = \"silence\""),
    ({"values.rain.kind": "camera"}, "values.rain.kind must be one of *, occupancy, parking_spot, rain_gauge, "
                                     "street_light, "
                                     "traffic_light: 'camera'"),
    ({"values.rain.kind": "occupancy"}, "values.rain.metric must be a metric of occupancy (count, presence)"),
    ({"values.rain.fn": "avg"}, "values.rain.fn must be one of last, mean, min, max, sum, count, rate, delta, "
                                "silence: 'avg'"),
    ({"values.rain.fn": "mean"}, "values.rain.fn 'mean' is a trailing window: it needs over, a duration > 0"),
    ({"values.rain.fn": "delta", "values.rain.over": 0}, "values.rain.over must be a duration > 0: 0"),
    ({"values.rain.fn": "rate", "values.rain.over": "1 h"}, "values.rain.over must be a duration (seconds"),
    ({"values.rain.over": "1h"}, "values.rain.over is only for the windowed functions (mean, min, max, sum, count, "
                                 "rate, delta), not fn = 'last'"),
    ({"values.rain.fn": "silence", "values.rain.over": "1h"}, "not fn = 'silence'"),
    ({"values.rain.reduce": "median"}, "values.rain.reduce must be one of max, min, mean, sum, count: 'median'"),
    ({"values": {"night": {"metric": "rain_intensity"}}}, "value name 'night' must be letters, digits and _ (not "
                                                          "starting with a digit, at most 63), other than abs, and, "
                                                          "day, false, max, min, night, not, or, true"),
    ({"values": {"max": {"metric": "rain_intensity"}}}, "value name 'max' must be"),
    ({"values": {"2x": {"metric": "rain_intensity"}}}, "value name '2x' must be"),
    ({"values": {"rain-mm": {"metric": "rain_intensity"}}}, "value name 'rain-mm' must be"),
    ({"values": {"régen": {"metric": "rain_intensity"}}}, "value name 'régen' must be"),
    ({"values": {"x" * 64: {"metric": "rain_intensity"}}}, "value name 'xxxx"),
    # where
    ({"where": {"zone": ["x"]}}, "rule 'rain': where: unknown key 'zone'; known: classification, device, gateway, "
                                 "gemeente, kind, link, wijk"),
    ({"where": {"gemeente": "GM0626"}}, "where.gemeente must be a non-empty array of strings: 'GM0626'"),
    ({"where": {"gemeente": []}}, "where.gemeente must be a non-empty array of strings: []"),
    ({"where": {"gemeente": [""]}}, "where.gemeente entries must be non-empty strings: ''"),
    ({"where": {"gemeente": [626]}}, "where.gemeente entries must be non-empty strings: 626"),
    ({"where": {"gemeente": ["GM626"]}}, "where.gemeente entries must each be a gemeente code (^GM\\d{4}$): 'GM626'"),
    ({"where": {"gemeente": ["GM0626", "GM0629", "GM0626"]}}, "where.gemeente lists 'GM0626' twice"),
    ({"where": {"wijk": ["WK0626"]}}, "where.wijk entries must each be a wijk code (^WK\\d{6}$): 'WK0626'"),
    ({"where": {"kind": ["lamp"]}}, "where.kind entries must each be a kind (occupancy, parking_spot, rain_gauge, "
                                    "street_light, "
                                    "traffic_light): 'lamp'"),
    ({"where": {"kind": ["occupancy"]}}, "where.kind excludes every kind the values read (rain_gauge)"),
    ({"where": {"link": ["wifi"]}}, "where.link entries must each be a link (lora, serial): 'wifi'"),
    ({"where": {"classification": ["secret"]}}, "where.classification entries must each be a classification ("
                                                "openbaar, bedrijfsvertrouwelijk, vertrouwelijk, geheim): 'secret'"),
    ({"where": {"device": ["a b"]}}, "where.device entries must each be a device id"),
    ({"where": {"gateway": ["-gw"]}}, "where.gateway entries must each be a gateway id"),
    ({"where": ["GM0626"]}, "where must be a table: ['GM0626']"),
    # conditions
    ({"when": DELETE}, "rule 'rain': missing 'when'"),
    ({"when": 1}, "when must be a non-empty string: 1"),
    ({"when": ""}, "when must be a non-empty string: ''"),
    ({"when": "rain >"}, "rule 'rain': when 'rain >': expected a number, name or '(', got the end of the condition"),
    ({"when": "rian > 0.5"}, "rule 'rain': when 'rian > 0.5': unknown name 'rian'; known: day, night, rain"),
    ({"when": "rain"}, "rule 'rain': when must be a condition (true or false), got a number: 'rain'"),
    ({"when": "rain and night"}, "when 'rain and night': expected a boolean on the left of 'and', got number 'rain'"),
    ({"when": "0.1 < rain < 0.5"}, "when '0.1 < rain < 0.5': comparisons cannot be chained"),
    ({"when": "__import__('os').system('true')"}, "when \"__import__('os').system('true')\": unexpected character"),
    ({"when": "evening and rain > 1"}, "unknown name 'evening'; known: day, night, rain"),
    ({"clear_when": "rain + 1"}, "clear_when must be a condition (true or false), got a number: 'rain + 1'"),
    ({"clear_when": "rain < 0.1 or"}, "clear_when 'rain < 0.1 or': expected a number, name or '('"),
    ({"when": "rain > 0.5 and " + "rain " * 2000}, "condition too long"),
    ({"when": "(" * 990 + "rain > 1" + ")" * 990}, "nested too deeply"),
    ({"when": "x" * 5000}, "when 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...': condition too long"),
    # actions
    ({"on_activate": {"command": "dim"}}, "on_activate must be an array: {'command': 'dim'}"),
    ({"on_activate": ["dim"]}, "on_activate[0] must be a table such as { command = ... }: 'dim'"),
    ({"on_activate.0": {"level": 1}}, "on_activate[0] names no action: give one of command, alarm, webhook"),
    ({"on_activate.0.alarm": "x"}, "on_activate[0] has command and alarm; an action does one thing"),
    ({"on_activate.0.command": "reboot"}, "on_activate[0].command must be one of bike_priority, dim: 'reboot'"),
    ({"on_activate.0.command": "dim"}, "on_activate[0].command 'dim' is not an action of traffic_light "
                                       "(kinds that accept it: street_light)"),
    ({"on_activate.0.expires": 5}, "on_activate[0]: unknown key 'expires'; known: command, params, targets"),
    ({"on_activate.0.targets": DELETE}, "missing 'on_activate[0].targets'"),
    ({"on_activate.0.targets": "traffic_light"}, "on_activate[0].targets must be a table: 'traffic_light'"),
    ({"on_activate.0.targets.kind": DELETE}, "missing 'on_activate[0].targets.kind'"),
    ({"on_activate.0.targets.kind": "*"}, "on_activate[0].targets.kind must be one of occupancy, parking_spot, "
                                          "rain_gauge, street_light, traffic_light: '*'"),
    ({"on_activate.0.targets.kind": "rain_gauge"}, "'bike_priority' is not an action of rain_gauge"),
    ({"on_activate.0.targets.kinds": "x"}, "on_activate[0].targets: unknown key 'kinds' (did you mean kind?); "
                                           "known: kind, same"),
    ({"on_activate.0.targets.same": "street"}, "on_activate[0].targets.same must be one of group, device, kind, "
                                               "gateway, gemeente, wijk, link, classification: 'street'"),
    ({"on_activate.0.targets.same": "device"}, "on_activate[0].targets.same = \"device\" needs group_by = "
                                               "\"device\" (this rule's slots are wijk groups, not devices)"),
    ({"group_by": "device"}, "on_activate[0].targets.kind 'traffic_light' never matches: the targets are the "
                             "slot's own device, which is of kind rain_gauge"),
    ({"on_activate.0.params": DELETE}, "missing 'on_activate[0].params'"),
    ({"on_activate.0.params": {}}, "on_activate[0].params: bike_priority needs params.enabled true or false: None"),
    ({"on_activate.0.params.enabled": 1}, "on_activate[0].params: bike_priority needs params.enabled true or false"),
    ({"on_activate.0.params.level": 1}, "on_activate[0].params: unknown key 'level'; known: enabled"),
    ({"on_clear.0": {"alarm": "x", "severity": "major"}}, "on_clear[0]: an alarm is raised only in on_activate "
                                                          "(the rule's clear clears it)"),
    ({"on_activate.0": {"alarm": "Wet", "severity": "high"}}, "on_activate[0].severity must be one of critical, "
                                                              "major, minor, warning, indeterminate: 'high'"),
    ({"on_activate.0": {"alarm": "Wet"}}, "missing 'on_activate[0].severity'"),
    ({"on_activate.0": {"alarm": "", "severity": "major"}}, "on_activate[0].alarm must be a non-empty string: ''"),
    ({"on_activate.0": {"alarm": "a\nb", "severity": "major"}}, "on_activate[0].alarm must be one line of at most "
                                                                "200 characters: 'a\\nb'"),
    ({"on_activate.0": {"alarm": "x" * 201, "severity": "major"}}, "must be one line of at most 200 characters"),
    ({"on_activate.0": {"alarm": "x", "severity": "major", "text": "y"}}, "on_activate[0]: unknown key 'text'; "
                                                                          "known: alarm, severity"),
    ({"on_activate.0": {"webhook": "ftp://example.org/x"}}, "on_activate[0].webhook must be an http:// or https:// "
                                                            "URL: 'ftp://example.org/x'"),
    ({"on_activate.0": {"webhook": "https://ops:s3cret@example.org/x"}},
     "on_activate[0].webhook must not contain credentials (user:password@): secrets do not belong in rule files"),
    ({"on_activate.0": {"webhook": "https://token@example.org/x"}}, "must not contain credentials"),
    ({"on_activate.0": {"webhook": "https://example.org/a b"}}, "must not contain spaces or control characters"),
    ({"on_activate.0": {"webhook": "https://example.org/\x00"}}, "must not contain spaces or control characters"),
    ({"on_activate.0": {"webhook": "https://"}}, "on_activate[0].webhook must name a host: 'https://'"),
    ({"on_activate.0": {"webhook": "https://example.org:99999/"}}, "on_activate[0].webhook is not a valid URL (Port "
                                                                   "out of range 0-65535)"),
    ({"on_activate.0": {"webhook": "https://[::1/"}}, "on_activate[0].webhook is not a valid URL"),
    ({"on_activate.0": {"webhook": "example.org/hook"}}, "must be an http:// or https:// URL"),
    ({"on_activate.0": {"webhook": "javascript:alert(1)"}}, "must be an http:// or https:// URL"),
    ({"on_activate.0": {"webhook": 5}}, "on_activate[0].webhook must be a non-empty string: 5"),
    ({"on_activate.0": {"webhook": "https://x.org", "method": "GET"}}, "on_activate[0]: unknown key 'method'; "
                                                                       "known: webhook"),
]


@pytest.mark.parametrize(("changes", "message"), BAD_RULES, ids=[m[:70] for _, m in BAD_RULES])
def test_bad_rule_is_rejected_naming_file_rule_and_field(changes: dict[str, Any], message: str) -> None:
    assert message in rejects(rule_file(changes))


DIM_RULE = {"kind": "street_light", "values": {"level": {"metric": "dim_level"}}, "when": "level > 1",
            "on_activate": [{"command": "dim", "params": {"level": 20}, "targets": {"kind": "street_light"}}],
            "on_clear": DELETE}


@pytest.mark.parametrize(("params", "message"), [
    ({"level": 120}, "on_activate[0].params: dim 'level' must be a number 0-100: 120"),
    ({"level": -1}, "dim 'level' must be a number 0-100: -1"),
    ({"level": True}, "dim 'level' must be a number 0-100: True"),
    ({"level": "50"}, "dim 'level' must be a number 0-100: '50'"),
    ({"level": 10**30}, "dim 'level' must be a number 0-100: 1000000000000000000000000000000"),
    ({}, "dim 'level' must be a number 0-100: None"),
    ({"levle": 5}, "on_activate[0].params: unknown key 'levle' (did you mean level?); known: level"),
    ({"level": 5, "fade": 2}, "on_activate[0].params: unknown key 'fade'; known: level"),
])
def test_dim_params_are_checked_as_the_edge_checks_them(params: dict[str, Any], message: str) -> None:
    assert message in rejects(rule_file({**DIM_RULE, "on_activate.0.params": params}))


def test_dim_level_may_be_fractional_as_on_the_wire() -> None:
    (rule,) = parse_rules(rule_file({**DIM_RULE, "on_activate.0.params": {"level": 33.3}})).rules
    assert rule.on_activate == (CommandAction("dim", {"level": 33.3}, TargetSpec("street_light")),)


BAD_SCHEDULES: list[tuple[Any, str]] = [
    ("evening", "city.toml: schedules must be a table of [schedules.NAME] tables: 'evening'"),
    ({"evening": "18:00-23:00"}, "city.toml: schedules.evening must be a table: '18:00-23:00'"),
    ({"evening": {"from": "18:00", "till": "23:00"}}, "city.toml: schedules.evening: unknown key 'till'; known: days, "
                                                      "from, to"),
    ({"evening": {"from": "18:00"}}, "city.toml: missing 'schedules.evening.to'"),
    ({"evening": {"from": "25:00", "to": "23:00"}}, "city.toml: schedules.evening.from must be \"HH:MM\", \"sunrise\" "
                                                    "or \"sunset\", with an optional offset such as \"sunset-30m\" "
                                                    "(offset at most 12h): '25:00'"),
    ({"evening": {"from": "6:00", "to": "23:00"}}, "schedules.evening.from must be"),
    ({"evening": {"from": "18:00", "to": "23:60"}}, "schedules.evening.to must be"),
    ({"evening": {"from": "18:00", "to": 1380}}, "schedules.evening.to must be \"HH:MM\""),
    ({"evening": {"from": "noon", "to": "23:00"}}, "schedules.evening.from must be"),
    ({"evening": {"from": "sunset-13h", "to": "23:00"}}, "(offset at most 12h): 'sunset-13h'"),
    ({"evening": {"from": "sunset - 30m", "to": "23:00"}}, "'sunset - 30m'"),
    ({"evening": {"from": "sunset-30", "to": "23:00"}}, "'sunset-30'"),
    ({"evening": {"from": "18:00+1h", "to": "23:00"}}, "'18:00+1h'"),
    ({"evening": {"from": "18:00", "to": "18:00"}}, "schedules.evening: from and to are the same time"),
    ({"evening": {"from": "sunset", "to": "sunset+0s"}}, "from and to are the same time"),
    ({"evening": {"from": "18:00", "to": "23:00", "days": ["monday"]}}, "schedules.evening.days entries must be one "
                                                                        "of mon, tue, wed, thu, fri, sat, sun: "
                                                                        "'monday'"),
    ({"evening": {"from": "18:00", "to": "23:00", "days": []}}, "schedules.evening.days must be a non-empty array of "
                                                                "day names: []"),
    ({"evening": {"from": "18:00", "to": "23:00", "days": ["mon", "mon"]}}, "schedules.evening.days lists 'mon' twice"),
    ({"evening": {"from": "18:00", "to": "23:00", "days": "mon"}}, "days must be a non-empty array of day names"),
    ({"night": {"from": "18:00", "to": "23:00"}}, "city.toml: schedule name 'night' must be letters, digits and _"),
    ({"and": {"from": "18:00", "to": "23:00"}}, "schedule name 'and' must be"),
    ({"late-evening": {"from": "18:00", "to": "23:00"}}, "schedule name 'late-evening' must be"),
    ({"rain": {"from": "18:00", "to": "23:00"}}, "city.toml: rule 'rain': values.rain: a schedule has that name; "
                                                 "values and schedules share the names of the conditions"),
]


@pytest.mark.parametrize(("schedules", "message"), BAD_SCHEDULES, ids=[m[:70] for _, m in BAD_SCHEDULES])
def test_bad_schedule_is_rejected_naming_it(schedules: Any, message: str) -> None:
    assert message in rejects(rule_file(schedules=schedules))


BAD_FILES = [
    ("version = 3\n", "city.toml: unsupported version 3; this build reads version 1, 2"),
    ("version = true\n", "unsupported version True"),
    ("version = 2.0\n", "unsupported version 2.0"),
    ("version = '2'\n", "unsupported version '2'"),
    ("[[rules]]\nname = 'x'\n", "city.toml: missing 'version' (this build reads version 1, 2)"),
    ("version = 2\nrules = 3\n", "city.toml: 'rules' must be an array of tables ([[rules]])"),
    ("version = 2\nrules = [1]\n", "city.toml: rules[0] must be a table ([[rules]]): 1"),
    ("version = 2\nowner = 'me'\n", "city.toml: unknown top-level key 'owner'; known: rules, schedules, timezone, "
                                    "version"),
    ("version = 2\ntimezon = 'UTC'\n", "unknown top-level key 'timezon' (did you mean timezone?)"),
    ("version = 2\ntimezone = 'Mars/Olympus'\n", "city.toml: timezone must be an IANA time zone such as "
                                                 "Europe/Amsterdam: 'Mars/Olympus'"),
    ("version = 2\ntimezone = '../../etc/passwd'\n", "timezone must be an IANA time zone"),
    ("version = 2\ntimezone = ''\n", "timezone must be an IANA time zone"),
    ("version = 2\ntimezone = 1\n", "timezone must be an IANA time zone"),
    (rule_file() + rule_file().replace("version = 2\n", ""), "city.toml: rule 'rain': duplicate name"),
    ("version = 2\n[[rules]\n", "city.toml: not valid TOML"),
    ("version = 2\nx = " + "[" * 5000 + "]" * 5000 + "\n", "city.toml: not valid TOML"),
    ("version = 2\nx = " + "{a = " * 5000 + "1" + "}" * 5000 + "\n", "city.toml: not valid TOML"),
    ("version = " + "9" * 5000 + "\n", "city.toml: not valid TOML"),
    ("version = 2\x00\n", "city.toml: not valid TOML"),
]


@pytest.mark.parametrize(("text", "message"), BAD_FILES, ids=[m[:70] for _, m in BAD_FILES])
def test_bad_file_is_rejected_with_a_precise_message(text: str, message: str) -> None:
    assert message in rejects(text)


def test_timezones_are_checked_against_the_tz_database() -> None:
    assert parse_rules("version = 2\ntimezone = 'UTC'\n").timezone == "UTC"
    assert parse_rules("version = 2\ntimezone = 'America/Argentina/Buenos_Aires'\n").timezone == \
        "America/Argentina/Buenos_Aires"


def test_unreadable_files_raise_rule_file_error(tmp_path: Path) -> None:
    with pytest.raises(RuleFileError, match="cannot read rule file"):
        load_rules(tmp_path / "missing.toml")
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b"version = 2\n# caf\xe9\n")
    with pytest.raises(RuleFileError, match="not UTF-8"):
        load_rules(latin)
    with pytest.raises(RuleFileError, match="cannot read rule file"):
        load_rules(tmp_path)


def test_rule_file_error_is_a_config_error() -> None:
    assert issubclass(RuleFileError, ConfigError)
    assert issubclass(RuleFileError, ValueError)



_SCALARS = st.one_of(st.booleans(), st.integers(-(2**63), 2**63 - 1), st.text(max_size=10),
                     st.floats(allow_nan=False, allow_infinity=False))
# ---- hostile and random input ----

_STRINGS = st.sampled_from(["*", "max", "last", "silence", "mean", "GM0626", "WK062600", "device", "wijk", "2m", "0",
                            "dim", "bike_priority", "rain > 1", "night", "street_light", "rain_intensity",
                            "https://x.org", "__import__('os')", "\u0000", "é", "1e999", ""])
_RANDOM = st.recursive(st.one_of(_SCALARS, _STRINGS), lambda c: st.lists(c, max_size=3) | st.dictionaries(
    st.one_of(_STRINGS, st.sampled_from([*RULE_KEYS, *VALUE_KEYS, "level", "enabled", "gemeente"])), c, max_size=3),
    max_leaves=6)


def _fuzz_keys(keys: tuple[str, ...]) -> st.SearchStrategy[dict[str, Any]]:
    # No dots in the random keys: rule_file() would read them as paths.
    junk = st.text(st.characters(blacklist_characters="."), max_size=6)
    return st.dictionaries(st.one_of(st.sampled_from(keys), junk), _RANDOM, max_size=3)


@FAST
@given(_fuzz_keys(RULE_KEYS), _fuzz_keys(VALUE_KEYS), _fuzz_keys(("command", "params", "targets", "alarm", "webhook")),
       _fuzz_keys(("kind", "same")))
def test_random_changes_give_a_rule_set_or_a_rule_file_error(rule: dict[str, Any], value: dict[str, Any],
                                                           action: dict[str, Any], targets: dict[str, Any]) -> None:
    changes = {**rule, **{f"values.rain.{k}": v for k, v in value.items()},
               **{f"on_activate.0.{k}": v for k, v in action.items()},
               **{f"on_clear.0.targets.{k}": v for k, v in targets.items()}}
    try:
        text = rule_file(changes)
    except (AttributeError, IndexError, KeyError, TypeError, ValueError):  # a change replaced a parent table
        return
    try:
        parse_rules(text, "fuzz.toml")
    except RuleFileError as exc:
        assert str(exc).startswith("fuzz.toml: ")


@FAST
@given(st.text(max_size=200))
def test_random_text_gives_a_rule_file_error(text: str) -> None:
    for candidate in (text, "version = 2\n" + text, "version = 1\n" + text):
        with contextlib.suppress(RuleFileError):
            parse_rules(candidate, "fuzz.toml")
