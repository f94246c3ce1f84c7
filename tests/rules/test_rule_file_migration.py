"""Version-1 rule files: validated as before, migrated on load, and as text that loads the same."""

from __future__ import annotations

import logging
import tomllib
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.toml_text import toml_string
from rules.expressions import parse
from rules.rule_file import RuleFileError, load_rules, migrate_file, migrate_text, parse_rules
from rules.rule_file_v1 import to_toml, toml_value
from rules.rule_model import (
    CommandAction,
    Expression,
    Reducer,
    Rule,
    SeriesFn,
    TargetSpec,
    ValueSpec,
)
from tests.rules.rule_file_cases import (
    FAST,
    MUNICIPALITIES,
    V1_EXAMPLE,
    rejects,
    rule_file,
)

# ---- version 1 ----

V1_RULE: dict[str, Any] = {
    "name": "presence-lighting", "type": "presence_dimming", "zone": "wijk", "sensor_kind": "occupancy",
    "sensor_metric": "presence", "target_kind": "street_light", "on_level": 100, "off_level": 20,
    "hold_seconds": 30, "reassert_seconds": 300,
}


def v1_file(*rules: dict[str, Any]) -> str:
    """A version-1 file of the given rule tables."""
    return "version = 1\n" + "".join(
        "\n[[rules]]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in r.items()) for r in rules)


def _dim(level: int) -> CommandAction:
    return CommandAction("dim", {"level": level}, TargetSpec("street_light"))


def test_v1_example_migrates_on_load_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="rules.rule_file"):
        ruleset = load_rules(V1_EXAMPLE)
    assert (ruleset.version, ruleset.migrated_from, ruleset.schedules) == (2, 1, {})
    assert ruleset.rules == (Rule(
        name="presence-lighting", kind="occupancy", group_by="wijk",
        values=(ValueSpec("present", "occupancy", "presence", SeriesFn.MAX, 30.0, Reducer.MAX),),
        when=Expression("present > 0", parse("present > 0")), urgent=True, reassert_seconds=300.0,
        on_activate=(_dim(100),), on_clear=(_dim(20),),
        description="Street lights of a wijk to 100 % while people are about, 20 % after 30 s without anyone.",
    ),)
    (record,) = caplog.records
    assert f"smartcity rules migrate {V1_EXAMPLE}" in record.getMessage()


def test_v1_options_migrate() -> None:
    text = v1_file({**V1_RULE, "zone": "gemeente", "gemeenten": ["GM0629", "GM0626"], "hold_seconds": 12.5,
                    "reassert_seconds": 0, "sensor_metric": "count"})
    (rule,) = parse_rules(text).rules
    assert rule.group_by == "gemeente"
    assert rule.where == {"gemeente": MUNICIPALITIES}
    assert rule.values == (ValueSpec("present", "occupancy", "count", SeriesFn.MAX, 12.5, Reducer.MAX),)
    assert (rule.reassert_seconds, rule.description) == (0.0, "")
    (default,) = parse_rules(v1_file({k: v for k, v in V1_RULE.items() if k != "reassert_seconds"})).rules
    assert default.reassert_seconds == 300.0


def test_v1_example_migrates_to_text_that_loads_the_same() -> None:
    text = migrate_file(V1_EXAMPLE)
    assert text.startswith("# Migrated from version 1 (")
    assert 'values.present = { metric = "presence", fn = "max", over = "30s", reduce = "max" }' in text
    migrated = parse_rules(text, str(V1_EXAMPLE))
    assert migrated == replace(load_rules(V1_EXAMPLE), migrated_from=None)


_V1_VALUES = st.fixed_dictionaries({
    "zone": st.sampled_from(["wijk", "gemeente"]),
    "sensor_metric": st.sampled_from(["presence", "count"]),
    "on_level": st.integers(0, 100), "off_level": st.integers(0, 100),
    "hold_seconds": st.one_of(st.integers(1, 86400), st.floats(0.001, 86400.0)),
    "reassert_seconds": st.one_of(st.integers(0, 86400), st.floats(0.0, 86400.0)),
}, optional={"description": st.text(max_size=40), "gemeenten": st.lists(
    st.integers(0, 9999).map(lambda n: f"GM{n:04d}"), min_size=1, max_size=3, unique=True)})


@FAST
@given(st.lists(_V1_VALUES, min_size=0, max_size=3))
def test_v1_migration_text_round_trips(rules: list[dict[str, Any]]) -> None:
    tables = [{**V1_RULE, **r, "name": f"rule-{i}"} for i, r in enumerate(rules)]
    text = v1_file(*tables)
    in_memory = parse_rules(text, "old.toml")
    assert in_memory.migrated_from == 1
    assert parse_rules(migrate_text(text, "old.toml"), "old.toml") == replace(in_memory, migrated_from=None)


def test_migrate_refuses_a_version_2_file() -> None:
    with pytest.raises(RuleFileError, match=r"^city.toml: already version 2; there is nothing to migrate$"):
        migrate_text(rule_file(), "city.toml")


BAD_V1 = [
    ({"on_level": 120}, "rule 'presence-lighting': on_level must be 0-100: 120"),
    ({"off_level": True}, "off_level must be 0-100: True"),
    ({"on_level": 50.5}, "on_level must be 0-100: 50.5"),
    ({"hold_seconds": 0}, "hold_seconds must be a number > 0 (seconds): 0"),
    ({"hold_seconds": "30"}, "hold_seconds must be a number > 0 (seconds): '30'"),
    ({"reassert_seconds": -1}, "reassert_seconds must be a number >= 0 (seconds): -1"),
    ({"type": "threshold"}, "rule 'presence-lighting': unknown type 'threshold'; known: presence_dimming"),
    ({"zone": "street"}, "zone must be one of wijk, gemeente: 'street'"),
    ({"sensor_kind": "camera"}, "sensor_kind must be one of occupancy, parking_spot, rain_gauge, street_light, "
                                "traffic_light"),
    ({"sensor_metric": "temperature"}, "sensor_metric must be a metric of occupancy (count, presence)"),
    ({"target_kind": "rain_gauge"}, "target_kind must be a dimmable kind (street_light): 'rain_gauge'"),
    ({"hold": 30}, "rule 'presence-lighting': unknown key 'hold'; known:"),
    ({"gemeenten": []}, "gemeenten must be a non-empty array of gemeente codes: []"),
    ({"gemeenten": ["GM363"]}, "gemeenten entries must match ^GM\\d{4}$: 'GM363'"),
    ({"gemeenten": ["GM0363", "GM0363"]}, "gemeenten lists a code twice"),
    ({"name": "has space"}, "rules[0]: name must match"),
    ({"hold_seconds": 400 * 86400}, "values.present.over must be at most 366d"),
]


@pytest.mark.parametrize(("changes", "message"), BAD_V1, ids=[m[:60] for _, m in BAD_V1])
def test_bad_v1_rule_is_rejected(changes: dict[str, Any], message: str) -> None:
    assert message in rejects(v1_file({**V1_RULE, **changes}))
    with pytest.raises(RuleFileError):
        migrate_text(v1_file({**V1_RULE, **changes}), "city.toml")


def test_bad_v1_file_is_rejected() -> None:
    assert "unknown top-level key 'timezone'; known: rules, version (version 1)" in rejects(
        "version = 1\ntimezone = 'UTC'\n")
    assert "rules[0] must be a table" in rejects("version = 1\nrules = [1]\n")


# ---- the TOML writer of the migration ----

@FAST
@given(st.text())
def test_toml_string_reads_back(text: str) -> None:
    assert tomllib.loads(f"x = {toml_string(text)}")["x"] == text


_SCALARS = st.one_of(st.booleans(), st.integers(-(2**63), 2**63 - 1), st.text(max_size=10),
                     st.floats(allow_nan=False, allow_infinity=False))
_TOML_VALUES = st.recursive(_SCALARS, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c,
                                                                                            max_size=3), max_leaves=8)


@FAST
@given(st.dictionaries(st.text(min_size=1, max_size=8).filter(lambda k: k != "rules"), _TOML_VALUES, max_size=4))
def test_to_toml_reads_back(data: dict[str, Any]) -> None:
    assert tomllib.loads(to_toml(data, "a comment\nover two lines")) == data
