"""The rule file: the example parses, and each kind of bad input is rejected with a precise message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rules.rule_file import PresenceDimmingRule, RuleFileError, ZoneLevel, load_rules, parse_rules
from tests.rules.city import rule_toml

EXAMPLE = Path(__file__).parents[2] / "rules" / "examples" / "presence-lighting.toml"


def test_example_file_parses_to_the_documented_rule() -> None:
    ruleset = load_rules(EXAMPLE)
    assert ruleset.version == 1
    assert ruleset.source == str(EXAMPLE)
    assert ruleset.rules == (PresenceDimmingRule(
        name="presence-lighting",
        description="Street lights of a wijk to 100 % while people are about, "
                    "20 % after 30 s without anyone.",
        zone=ZoneLevel.WIJK, sensor_kind="occupancy", sensor_metric="presence", target_kind="street_light",
        on_level=100, off_level=20, hold_seconds=30.0, reassert_seconds=300.0, gemeenten=None,
    ),)
    assert ruleset.rules[0].type == "presence_dimming"


def test_optional_keys_take_their_defaults_and_scope_is_sorted() -> None:
    text = "version = 1\n" + rule_toml(description=None, reassert_seconds=None, hold_seconds=12.5,
                                       zone="gemeente", gemeenten=["GM0363", "GM0014"], sensor_metric="count")
    (rule,) = parse_rules(text, "t.toml").rules
    assert rule.description == ""
    assert rule.reassert_seconds == 300.0
    assert rule.hold_seconds == 12.5
    assert rule.zone is ZoneLevel.GEMEENTE
    assert rule.gemeenten == ("GM0014", "GM0363")
    assert rule.in_scope("GM0014")
    assert not rule.in_scope("GM0001")


def test_several_rules_keep_file_order_and_an_empty_file_has_none() -> None:
    text = "version = 1\n" + rule_toml("b", gemeenten=["GM0001"]) + rule_toml("a", gemeenten=["GM0002"])
    assert [r.name for r in parse_rules(text).rules] == ["b", "a"]
    assert parse_rules("version = 1\n").rules == ()


def test_reassert_zero_means_never() -> None:
    (rule,) = parse_rules("version = 1\n" + rule_toml(reassert_seconds=0)).rules
    assert rule.reassert_seconds == 0.0


BAD_RULES = [
    ({"on_level": 120}, "rule 'presence-lighting': on_level must be 0-100: 120"),
    ({"off_level": -1}, "rule 'presence-lighting': off_level must be 0-100: -1"),
    ({"on_level": True}, "on_level must be 0-100: True"),
    ({"on_level": 50.5}, "on_level must be 0-100: 50.5"),
    ({"on_level": None}, "rule 'presence-lighting': missing 'on_level'"),
    ({"hold_seconds": 0}, "hold_seconds must be a number > 0 (seconds): 0"),
    ({"hold_seconds": -5}, "hold_seconds must be a number > 0 (seconds): -5"),
    ({"hold_seconds": "30"}, "hold_seconds must be a number > 0 (seconds): '30'"),
    ({"hold_seconds": float("nan")}, "hold_seconds must be a number > 0 (seconds): nan"),
    ({"hold_seconds": float("inf")}, "hold_seconds must be a number > 0 (seconds): inf"),
    ({"reassert_seconds": -1}, "reassert_seconds must be a number >= 0 (seconds): -1"),
    ({"type": "threshold"}, "rule 'presence-lighting': unknown type 'threshold'; known: presence_dimming"),
    ({"type": None}, "rule 'presence-lighting': missing 'type'"),
    ({"zone": "street"}, "zone must be one of wijk, gemeente: 'street'"),
    ({"sensor_kind": "camera"}, "sensor_kind must be one of occupancy, rain_gauge, street_light: 'camera'"),
    ({"sensor_metric": "temperature"}, "sensor_metric must be a metric of occupancy (count, presence)"),
    ({"target_kind": "rain_gauge"}, "target_kind must be a dimmable kind (street_light): 'rain_gauge'"),
    ({"target_kind": None}, "missing 'target_kind'"),
    ({"description": 3}, "description must be a string: 3"),
    ({"hold": 30}, "rule 'presence-lighting': unknown key hold; known:"),
    ({"hold": 30, "level": 1}, "unknown keys hold, level; known:"),
    ({"gemeenten": []}, "gemeenten must be a non-empty array of gemeente codes: []"),
    ({"gemeenten": "GM0363"}, "gemeenten must be a non-empty array of gemeente codes: 'GM0363'"),
    ({"gemeenten": ["GM363"]}, "gemeenten entries must match ^GM\\d{4}$: 'GM363'"),
    ({"gemeenten": ["GM0363", "GM0363"]}, "gemeenten lists a code twice"),
    ({"name": "has space"}, "rules[0]: name must match"),
    ({"name": None}, "rules[0]: name must match"),
]


@pytest.mark.parametrize(("overrides", "message"), BAD_RULES, ids=[m for _, m in BAD_RULES])
def test_bad_rule_is_rejected_naming_rule_and_field(overrides: dict[str, Any], message: str) -> None:
    text = "version = 1\n" + rule_toml(**overrides)
    with pytest.raises(RuleFileError) as info:
        parse_rules(text, "city.toml")
    assert message in str(info.value)
    assert str(info.value).startswith("city.toml: ")


BAD_FILES = [
    ("version = 2\n" + rule_toml(), "unsupported version 2; this build reads version 1"),
    ("version = true\n", "unsupported version True"),
    ("version = '1'\n", "unsupported version '1'"),
    (rule_toml(), "missing 'version'"),
    ("version = 1\nrules = 3\n", "'rules' must be an array of tables"),
    ("version = 1\nrules = [1]\n", "rules[0] must be a table"),
    ("version = 1\nowner = 'me'\n", "unknown top-level key owner; known: rules, version"),
    ("version = 1\n" + rule_toml("twice") + rule_toml("twice", gemeenten=["GM0001"]),
     "rule 'twice': duplicate name"),
    ("version = 1\n[[rules]\n", "not valid TOML"),
]


@pytest.mark.parametrize(("text", "message"), BAD_FILES, ids=[m for _, m in BAD_FILES])
def test_bad_file_is_rejected_with_a_precise_message(text: str, message: str) -> None:
    with pytest.raises(RuleFileError, match=r"^city\.toml: ") as info:
        parse_rules(text, "city.toml")
    assert message in str(info.value)


def test_unreadable_files_raise_rule_file_error(tmp_path: Path) -> None:
    with pytest.raises(RuleFileError, match="cannot read rule file"):
        load_rules(tmp_path / "missing.toml")
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b"version = 1\n# caf\xe9\n")
    with pytest.raises(RuleFileError, match="not UTF-8"):
        load_rules(latin)


def test_rule_file_error_is_a_value_error() -> None:
    assert issubclass(RuleFileError, ValueError)
