"""The presence_dimming kernel: on/off/hold transitions, grace at start, reassert, late readings."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.registry import Registry
from rules.presence_dimming import PresenceDimming, PresenceDimmingStack, ZoneChange
from rules.rule_file import PresenceDimmingRule, parse_rules
from rules.zone_topology import RuleConflictError, Target
from tests.rules.city import make_registry, rule_toml

START = 1000.0
ALL_ZONES = ("WK000101", "WK000102", "WK000201")


def rule(name: str = "presence-lighting", **overrides: object) -> PresenceDimmingRule:
    """A validated rule: the example's values with overrides."""
    (r,) = parse_rules("version = 1\n" + rule_toml(name, **overrides)).rules
    return r


def feed(kernel: PresenceDimmingStack, device: str, value: float, ts: float,
         metric: str = "presence") -> None:
    """One reading of one device, through update_many."""
    kernel.update_many([kernel.inputs.index((device, metric))], [value], [ts])


def zones(changes: list[ZoneChange]) -> dict[str, tuple[int, bool, bool]]:
    """Zone -> (level, present, reasserted), for compact assertions."""
    return {c.zone: (c.level, c.present, c.reasserted) for c in changes}


@pytest.fixture
def city() -> Registry:
    return make_registry()


@pytest.fixture
def kernel(city: Registry) -> PresenceDimming:
    return PresenceDimming(rule(), city, START)


def test_slots_inputs_and_targets_come_from_the_registry(kernel: PresenceDimming) -> None:
    assert kernel.slot_keys == (("presence-lighting", "WK000101"), ("presence-lighting", "WK000102"),
                                ("presence-lighting", "WK000201"))
    assert kernel.inputs == (("occ-WK000101-0", "presence"), ("occ-WK000101-1", "presence"),
                             ("occ-WK000102-0", "presence"), ("occ-WK000201-0", "presence"),
                             ("occ-WK000201-1", "presence"))
    assert kernel.slot_targets[0] == (Target("sl-WK000101-0", "gw-WK000101-a"),
                                      Target("sl-WK000101-1", "gw-WK000101-b"),
                                      Target("sl-WK000101-2", "gw-WK000101-a"))
    assert kernel.rule.name == "presence-lighting"


def test_presence_switches_a_zone_on_at_once_even_during_grace(kernel: PresenceDimming) -> None:
    feed(kernel, "occ-WK000101-1", 1.0, START + 1)
    (change,) = kernel.evaluate(START + 1)
    assert change == ZoneChange("presence-lighting", "WK000101", 100, True, False, kernel.slot_targets[0])
    assert kernel.evaluate(START + 2) == []


def test_no_change_during_grace_then_zones_without_presence_switch_off(kernel: PresenceDimming) -> None:
    for t in (START, START + 10, START + 30):
        assert kernel.evaluate(t) == [], t
    assert zones(kernel.evaluate(START + 30.001)) == {
        "WK000101": (20, False, False), "WK000102": (20, False, False), "WK000201": (20, False, False)}
    assert kernel.evaluate(START + 31) == []


def test_zone_stays_on_for_hold_seconds_after_the_last_presence(kernel: PresenceDimming) -> None:
    kernel.evaluate(START + 100)  # all off
    feed(kernel, "occ-WK000102-0", 1.0, START + 200)
    assert zones(kernel.evaluate(START + 200)) == {"WK000102": (100, True, False)}
    feed(kernel, "occ-WK000102-0", 1.0, START + 220)  # presence renewed: hold restarts
    assert kernel.evaluate(START + 245) == []
    assert kernel.evaluate(START + 250) == []  # exactly hold_seconds: still on
    assert zones(kernel.evaluate(START + 250.01)) == {"WK000102": (20, False, False)}


@pytest.mark.parametrize("value", [0.0, -1.0, False, math.nan])
def test_only_values_above_zero_count_as_presence(kernel: PresenceDimming, value: float) -> None:
    kernel.evaluate(START + 100)
    feed(kernel, "occ-WK000101-0", value, START + 100)
    assert kernel.evaluate(START + 100) == []
    feed(kernel, "occ-WK000101-0", True, START + 101)
    assert zones(kernel.evaluate(START + 101)) == {"WK000101": (100, True, False)}


def test_a_count_above_zero_counts_as_presence(city: Registry) -> None:
    k = PresenceDimming(rule(sensor_metric="count"), city, START)
    k.update_many([k.inputs.index(("occ-WK000201-1", "count"))], [3], [START + 5])
    assert zones(k.evaluate(START + 5)) == {"WK000201": (100, True, False)}


def test_reassert_resends_the_current_level_periodically(city: Registry) -> None:
    k = PresenceDimming(rule(reassert_seconds=100), city, START)
    assert len(k.evaluate(START + 40)) == 3  # off after grace
    assert k.evaluate(START + 139.9) == []
    assert zones(k.evaluate(START + 140)) == {z: (20, False, True) for z in ALL_ZONES}
    assert k.evaluate(START + 141) == []
    # Presence moves the reassert clock: the change counts as an emission.
    feed(k, "occ-WK000101-0", 1, START + 200)
    assert zones(k.evaluate(START + 200)) == {"WK000101": (100, True, False)}
    assert k.evaluate(START + 230) == []
    assert zones(k.evaluate(START + 240)) == {
        "WK000101": (20, False, False), "WK000102": (20, False, True), "WK000201": (20, False, True)}
    assert zones(k.evaluate(START + 340)) == {z: (20, False, True) for z in ALL_ZONES}


def test_reassert_zero_never_resends(city: Registry) -> None:
    k = PresenceDimming(rule(reassert_seconds=0), city, START)
    assert len(k.evaluate(START + 40)) == 3
    assert [k.evaluate(START + 40 + 1000 * i) for i in range(1, 5)] == [[], [], [], []]


def test_late_readings_never_move_last_presence_back(kernel: PresenceDimming) -> None:
    kernel.evaluate(START + 100)
    feed(kernel, "occ-WK000101-0", 1, START + 200)
    feed(kernel, "occ-WK000101-1", 1, START + 190)  # older, from another sensor of the zone
    feed(kernel, "occ-WK000101-0", 1, START + 185)  # older, same sensor
    assert zones(kernel.evaluate(START + 200)) == {"WK000101": (100, True, False)}
    assert kernel.evaluate(START + 230) == []  # on until 200 + 30, not 190 + 30
    assert zones(kernel.evaluate(START + 230.5)) == {"WK000101": (20, False, False)}
    feed(kernel, "occ-WK000101-1", 1, START + 150)  # stale presence switches nothing on
    assert kernel.evaluate(START + 231) == []


def test_late_presence_within_hold_switches_on(kernel: PresenceDimming) -> None:
    kernel.evaluate(START + 100)
    feed(kernel, "occ-WK000201-0", 1, START + 95)  # arrives late but is still within hold
    assert zones(kernel.evaluate(START + 100)) == {"WK000201": (100, True, False)}
    assert zones(kernel.evaluate(START + 125.5)) == {"WK000201": (20, False, False)}


def test_a_batch_with_one_zone_many_times_keeps_the_latest_presence(kernel: PresenceDimming) -> None:
    rng = np.random.default_rng(7)
    ts = START + 100 + rng.permutation(50).astype(float)
    idx = rng.choice([0, 1], size=50)  # both sensors of WK000101
    kernel.update_many(idx, np.ones(50), ts)
    assert kernel.last_presence[0] == START + 149
    assert np.all(np.isneginf(kernel.last_presence[1:]))


def test_zone_without_sensors_switches_off_after_grace_and_sensors_without_targets_are_no_inputs() -> None:
    city = make_registry({"GM0001": {"WK000101": (0, 2), "WK000102": (3, 0)}})
    k = PresenceDimming(rule(), city, START)
    assert k.inputs == ()
    assert zones(k.evaluate(START + 31)) == {"WK000101": (20, False, False)}


def test_gemeente_zones_and_scope(city: Registry) -> None:
    by_gemeente = PresenceDimming(rule(zone="gemeente"), city, START)
    assert [z for _, z in by_gemeente.slot_keys] == ["GM0001", "GM0002"]
    assert len(by_gemeente.slot_targets[0]) == 5
    feed(by_gemeente, "occ-WK000102-0", 1, START + 1)
    assert zones(by_gemeente.evaluate(START + 1)) == {"GM0001": (100, True, False)}
    scoped = PresenceDimming(rule(gemeenten=["GM0002"]), city, START)
    assert scoped.slot_keys == (("presence-lighting", "WK000201"),)
    assert [d for d, _ in scoped.inputs] == ["occ-WK000201-0", "occ-WK000201-1"]


def test_rules_commanding_one_device_conflict(city: Registry) -> None:
    with pytest.raises(RuleConflictError, match="rules 'a' and 'b' both command device 'sl-WK000101-0'"):
        PresenceDimmingStack([rule("a", gemeenten=["GM0001"]), rule("b", zone="gemeente")], city, START)
    stack = PresenceDimmingStack([rule("a", gemeenten=["GM0001"]), rule("b", gemeenten=["GM0002"],
                                                                         hold_seconds=5)], city, START)
    assert [k for k, _ in stack.slot_keys] == ["a", "a", "b"]


def test_a_stack_needs_unique_rule_names(city: Registry) -> None:
    with pytest.raises(ValueError, match=r"rule names must be unique: \['a'\]"):
        PresenceDimmingStack([rule("a", gemeenten=["GM0001"]), rule("a", gemeenten=["GM0002"])], city, START)


def test_stacked_rules_keep_their_own_parameters(city: Registry) -> None:
    stack = PresenceDimmingStack([rule("a", gemeenten=["GM0001"], on_level=80, off_level=0),
                                  rule("b", gemeenten=["GM0002"], hold_seconds=5, off_level=35)], city, START)
    assert {(c.rule, c.zone, c.level) for c in stack.evaluate(START + 6)} == {("b", "WK000201", 35)}
    feed(stack, "occ-WK000101-0", 1, START + 7)
    assert {(c.rule, c.zone, c.level) for c in stack.evaluate(START + 31)} == {("a", "WK000101", 80),
                                                                               ("a", "WK000102", 0)}


def test_update_many_rejects_malformed_batches(kernel: PresenceDimming) -> None:
    with pytest.raises(ValueError, match="one length"):
        kernel.update_many([0, 1], [1.0], [START, START])
    with pytest.raises(IndexError, match="out of range"):
        kernel.update_many([-1], [1.0], [START])
    with pytest.raises(IndexError, match="out of range"):
        kernel.update_many([5], [1.0], [START])
    kernel.update_many([], [], [])
    assert np.all(np.isneginf(kernel.last_presence))


def test_carry_over_keeps_zones_that_still_exist(city: Registry) -> None:
    old = PresenceDimming(rule(), city, START)
    old.evaluate(START + 40)
    feed(old, "occ-WK000101-0", 1, START + 50)
    old.evaluate(START + 50)
    smaller = make_registry({"GM0001": {"WK000101": (2, 3), "WK000102": (1, 3)},
                             "GM0003": {"WK000301": (1, 1)}})
    new = PresenceDimming(rule(), smaller, START)
    new.carry_over(old, START + 60)
    assert new.slot_keys == (("presence-lighting", "WK000101"), ("presence-lighting", "WK000102"),
                             ("presence-lighting", "WK000301"))
    assert new.last_presence[0] == START + 50
    # WK000102 gained a light, so it sends its level again; WK000301 is new and in grace until 90.
    assert zones(new.evaluate(START + 60)) == {"WK000102": (20, False, False)}
    assert zones(new.evaluate(START + 80.5)) == {"WK000101": (20, False, False)}
    assert zones(new.evaluate(START + 90.5)) == {"WK000301": (20, False, False)}
