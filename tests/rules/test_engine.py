"""The engine: readings in, one dim command per target device of a changed zone out."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.commands import Action, Command, parse_command
from core.registry import Registry
from core.senml import Reading
from rules.engine import IngestCounters, RulesEngine
from rules.rule_file import RuleSet, load_rules, parse_rules
from rules.zone_topology import RuleConflictError
from tests.rules.city import SMALL, make_registry, rain_gauge, rule_toml

START = 1_700_000_000.0
EXAMPLE = Path(__file__).parents[2] / "rules" / "examples" / "presence-lighting.toml"


@pytest.fixture
def city() -> Registry:
    return make_registry(SMALL, [rain_gauge("GM0001", "WK000101")])


@pytest.fixture
def engine(city: Registry) -> RulesEngine:
    return RulesEngine(load_rules(EXAMPLE), city, START)


def by_device(commands: list[tuple[str, Command]]) -> dict[str, tuple[str, Command]]:
    return {c.device: (gw, c) for gw, c in commands}


def test_presence_reading_becomes_dim_commands_for_the_zone(engine: RulesEngine) -> None:
    engine.ingest([Reading("occ-WK000101-1", "presence", True, START + 3)])
    commands = engine.evaluate(START + 4)
    assert [(gw, c.device) for gw, c in commands] == [
        ("gw-WK000101-a", "sl-WK000101-0"), ("gw-WK000101-b", "sl-WK000101-1"),
        ("gw-WK000101-a", "sl-WK000101-2")]
    for _, c in commands:
        assert c.action is Action.DIM
        assert c.params == {"level": 100}
        assert c.origin == "rule:presence-lighting"
        assert c.issued_at == START + 4
        assert c.expires_at == START + 4 + 60
        assert parse_command(c.to_json()) == c  # a valid contract v1 command
    assert len({c.id for _, c in commands}) == 3
    assert engine.counters == IngestCounters(used=1)


def test_hold_expiry_dims_to_off_level_after_grace(engine: RulesEngine) -> None:
    engine.ingest([Reading("occ-WK000102-0", "presence", True, START + 10)])
    assert set(by_device(engine.evaluate(START + 10))) == {"sl-WK000102-0", "sl-WK000102-1"}
    assert engine.evaluate(START + 30) == []  # grace: the other zones stay untouched
    off = by_device(engine.evaluate(START + 30.5))
    assert set(off) == {"sl-WK000101-0", "sl-WK000101-1", "sl-WK000101-2", "sl-WK000201-0", "sl-WK000201-1"}
    assert {c.params["level"] for _, c in off.values()} == {20}
    later = by_device(engine.evaluate(START + 41))
    assert set(later) == {"sl-WK000102-0", "sl-WK000102-1"}
    assert later["sl-WK000102-1"] == ("gw-WK000102-b", later["sl-WK000102-1"][1])
    assert later["sl-WK000102-1"][1].params == {"level": 20}


def test_readings_no_rule_reads_are_counted_and_ignored(engine: RulesEngine) -> None:
    engine.ingest([
        Reading("ghost-1", "presence", True, START),  # not in the registry
        Reading("occ-WK000101-0", "count", 4.0, START),  # the rule reads presence, not count
        Reading("rain-WK000101", "rain_intensity", 2.5, START),
        Reading("occ-WK000101-0", "presence", "yes", START),  # wrong type
        Reading("occ-WK000101-0", "presence", False, START),
    ])
    assert engine.counters == IngestCounters(used=1, not_used=2, unknown_device=1, bad_value=1)
    assert engine.evaluate(START + 1) == []


def test_command_ttl_is_configurable_and_checked(city: Registry) -> None:
    engine = RulesEngine(load_rules(EXAMPLE), city, START, command_ttl=5)
    engine.ingest([Reading("occ-WK000201-0", "presence", 1.0, START)])
    assert {c.expires_at for _, c in engine.evaluate(START + 1)} == {START + 6}
    for bad in (0, -1, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="command_ttl"):
            RulesEngine(load_rules(EXAMPLE), city, START, command_ttl=bad)


def test_evaluate_changes_gives_the_zone_changes_for_rule_events(engine: RulesEngine) -> None:
    engine.ingest([Reading("occ-WK000201-1", "presence", 1.0, START + 1)])
    (change,) = engine.evaluate_changes(START + 1)
    assert (change.rule, change.zone, change.level, change.present, change.reasserted) == \
        ("presence-lighting", "WK000201", 100, True, False)
    assert len(engine.commands([change], START + 1)) == 2


def test_rebuild_keeps_state_of_zones_that_still_exist(engine: RulesEngine) -> None:
    engine.ingest([Reading("occ-WK000101-0", "presence", True, START + 50)])
    engine.evaluate(START + 50)  # WK000101 on, the rest off
    grown = make_registry({"GM0001": {"WK000101": (2, 3), "WK000102": (1, 3)},
                           "GM0003": {"WK000301": (1, 1)}})
    engine.rebuild(grown, now=START + 60)
    assert engine.registry is grown
    # Same presence: WK000101 stays on with nothing to send; WK000102 gained a light and resends.
    assert {c.device: c.params["level"] for _, c in engine.evaluate(START + 60)} == {
        "sl-WK000102-0": 20, "sl-WK000102-1": 20, "sl-WK000102-2": 20}
    engine.ingest([Reading("occ-WK000301-0", "presence", True, START + 61)])
    assert [c.device for _, c in engine.evaluate(START + 61)] == ["sl-WK000301-0"]
    assert {c.device for _, c in engine.evaluate(START + 80.5)} == {
        "sl-WK000101-0", "sl-WK000101-1", "sl-WK000101-2"}
    engine.ingest([Reading("occ-WK000201-0", "presence", True, START + 81)])  # a zone that is gone
    assert engine.counters.unknown_device == 1


def test_rebuild_with_a_new_ruleset_and_a_conflict_keeps_the_old_engine(engine: RulesEngine) -> None:
    both = parse_rules("version = 1\n" + rule_toml("a") + rule_toml("b", zone="gemeente"))
    old_stack = engine.stack
    with pytest.raises(RuleConflictError):
        engine.rebuild(engine.registry, now=START, ruleset=both)
    assert engine.stack is old_stack
    renamed = parse_rules("version = 1\n" + rule_toml("renamed", on_level=60))
    engine.rebuild(engine.registry, now=START, ruleset=renamed)
    assert engine.ruleset is renamed
    engine.ingest([Reading("occ-WK000201-0", "presence", True, START + 1)])
    assert {(c.origin, c.params["level"]) for _, c in engine.evaluate(START + 1)} == {("rule:renamed", 60)}


def test_an_empty_rule_set_does_nothing(city: Registry) -> None:
    engine = RulesEngine(RuleSet(1, (), "empty"), city, START)
    engine.ingest([Reading("occ-WK000101-0", "presence", True, START)])
    assert engine.evaluate(START + 100) == []
    assert engine.counters == IngestCounters(not_used=1)
