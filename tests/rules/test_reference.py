"""Hand-computed scenarios, one or more per clause of rules/README.md "Semantics" and "Restart and reload".

Every scenario runs on both the reference engine and the scalar loop (rules/scalar_loop.py), so
the benchmark's baseline is held to the same expectations.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any

import pytest

from rules.reference import ReferenceEngine
from rules.scalar_loop import ScalarLoop
from rules.transitions import Transition
from tests.rules.rule_builders import ENGINES, T0, EngineType, FixedClock, city, probe, rows, rule, ruleset, value

PEOPLE = value("people", "occupancy", "count", reduce="sum")
WIJK1 = "WK000101"
OCCUPANCY = ["occ-WK000101-0", "occ-WK000101-1", "occ-WK000102-0", "occ-WK000201-0", "occ-WK000201-1"]


@pytest.fixture(params=ENGINES, ids=lambda t: t.__name__)
def engine_type(request: pytest.FixtureRequest) -> EngineType:
    return request.param  # type: ignore[no-any-return]


def brief(transitions: list[Transition]) -> list[tuple[str, str, str, bool]]:
    return [(t.rule, t.group, t.event.value, t.active) for t in transitions]


def count(device: str, n: float, t: float) -> tuple[str, str, float, float]:
    return (device, "count", n, t)


def test_for_needs_the_condition_at_every_evaluation(engine_type: EngineType) -> None:
    e = engine_type(ruleset(rule("busy", [PEOPLE], "people > 2", for_seconds=60.0)), city(), T0)
    e.fold_readings([count("occ-WK000101-0", 2, T0), count("occ-WK000101-1", 1, T0)], T0)
    assert e.evaluate(T0) == []  # pending since T0
    assert e.evaluate(T0 + 59.75) == []
    fired = e.evaluate(T0 + 60)
    assert brief(fired) == [("busy", WIJK1, "activate", True)]
    assert fired[0].values == {"people": 3.0} and fired[0].time == T0 + 60

    e = engine_type(ruleset(rule("busy", [PEOPLE], "people > 2", for_seconds=60.0)), city(), T0)
    e.fold_readings([count("occ-WK000101-0", 3, T0)], T0)
    assert e.evaluate(T0) == []
    e.fold_readings([count("occ-WK000101-0", 0, T0 + 20)], T0 + 20)
    assert e.evaluate(T0 + 20) == []  # A does not hold: pending_since is forgotten
    e.fold_readings([count("occ-WK000101-0", 3, T0 + 30)], T0 + 30)
    assert e.evaluate(T0 + 30) == []
    assert e.evaluate(T0 + 60) == []  # 60 s after the first, but only 30 s after A held again
    assert brief(e.evaluate(T0 + 90)) == [("busy", WIJK1, "activate", True)]


def test_clear_for_and_cooldown(engine_type: EngineType) -> None:
    r = rule("busy", [PEOPLE], "people > 2", clear_for_seconds=30.0, cooldown_seconds=120.0)
    e = engine_type(ruleset(r), city(), T0)
    dev = "occ-WK000101-0"
    steps: list[tuple[float, float | None, list[str]]] = [  # (time, reading or None, events at that time)
        (T0, 3, ["activate"]), (T0 + 10, 0, []), (T0 + 39.75, None, []), (T0 + 40, None, ["clear"]),
        (T0 + 50, 5, []), (T0 + 159.75, None, []),  # A holds, but cooling down until T0 + 160
        (T0 + 160, None, ["activate"]),
        (T0 + 170, 0, []), (T0 + 180, 5, []),  # C broken at T0 + 180: clearing_since forgotten
        (T0 + 190, 0, []), (T0 + 200, None, []), (T0 + 219.75, None, []), (T0 + 220, None, ["clear"]),
    ]
    for now, reading, events in steps:
        if reading is not None:
            e.fold_readings([count(dev, reading, now)], now)
        assert [t.event.value for t in e.evaluate(now)] == events, now


def test_reassert_resends_the_current_state(engine_type: EngineType) -> None:
    e = engine_type(ruleset(rule("busy", [PEOPLE], "people > 2", reassert_seconds=60.0)), city(), T0)
    assert e.evaluate(T0) == [] and e.evaluate(T0 + 100) == []  # no transition yet: nothing to re-send
    e.fold_readings([count("occ-WK000101-0", 3, T0 + 100)], T0 + 100)
    assert brief(e.evaluate(T0 + 110)) == [("busy", WIJK1, "activate", True)]
    assert e.evaluate(T0 + 169.75) == []
    again = e.evaluate(T0 + 170)
    assert brief(again) == [("busy", WIJK1, "reassert", True)] and again[0].values == {"people": 3.0}
    assert e.evaluate(T0 + 200) == []
    e.fold_readings([count("occ-WK000101-0", 0, T0 + 200)], T0 + 200)
    assert brief(e.evaluate(T0 + 210)) == [("busy", WIJK1, "clear", False)]  # a transition restarts the period
    assert e.evaluate(T0 + 269.75) == []
    assert brief(e.evaluate(T0 + 270)) == [("busy", WIJK1, "reassert", False)]
    assert e.evaluate(T0 + 329.75) == []
    assert brief(e.evaluate(T0 + 330)) == [("busy", WIJK1, "reassert", False)]


def test_hysteresis_does_not_flap_on_rain_between_the_thresholds(engine_type: EngineType) -> None:
    r = rule("rain", [value("rain", "rain_gauge", "rain_intensity")], "rain > 0.5", clear_when="rain < 0.1",
             where={"wijk": frozenset({WIJK1})})
    e = engine_type(ruleset(r), city(), T0)
    rates = [0.3, 0.6, 0.1, 0.5, 0.1, 0.5, 0.3, 0.1, 0.5, 0.05, 0.5, 0.1, 0.5, 0.1, 0.6]
    seen = []
    for i, rate in enumerate(rates):
        now = T0 + 10 * i
        e.fold_readings([("rain-WK000101", "rain_intensity", rate, now)], now)
        seen += [(t.time - T0, t.event.value) for t in e.evaluate(now)]
    assert seen == [(10, "activate"), (90, "clear"), (140, "activate")]


def test_stale_after_drops_a_member_by_event_time(engine_type: EngineType) -> None:
    e = engine_type(ruleset(rule("busy", [value("people", "occupancy", "count")], "people > 3",
                                 stale_after=60.0)), city(), T0)
    e.fold_readings([count("occ-WK000101-0", 5, T0)], T0)
    assert brief(e.evaluate(T0)) == [("busy", WIJK1, "activate", True)]
    e.fold_readings([count("occ-WK000101-1", 1, T0 + 50)], T0 + 50)
    assert e.evaluate(T0 + 60) == []  # exactly stale_after old: still a member
    cleared = e.evaluate(T0 + 60.25)
    assert brief(cleared) == [("busy", WIJK1, "clear", False)] and cleared[0].values == {"people": 1.0}
    assert e.evaluate(T0 + 110.25) == []  # every member stale: missing, nothing changes
    e.fold_readings([count("occ-WK000101-0", 9, T0 + 130)], T0 + 200)  # received now, 70 s old by event time
    assert e.evaluate(T0 + 200) == []
    e.fold_readings([count("occ-WK000101-0", 9, T0 + 150)], T0 + 200)
    assert brief(e.evaluate(T0 + 200)) == [("busy", WIJK1, "activate", True)]


def test_latest_reading_by_event_time_later_arrival_wins_ties(engine_type: EngineType) -> None:
    e = engine_type(ruleset(probe("p", [value("x", "rain_gauge", "rain_intensity")], group_by="device",
                                  where={"device": frozenset({"rain-WK000101"})})), city(), T0)
    e.fold_readings([("rain-WK000101", "rain_intensity", 1.0, T0 + 10),
                     ("rain-WK000101", "rain_intensity", 2.0, T0 + 5)], T0 + 10)  # late: does not move it back
    assert [t.values for t in e.evaluate(T0 + 10)] == [{"x": 1.0}]
    e.fold_readings([("rain-WK000101", "rain_intensity", 3.0, T0 + 10)], T0 + 11)
    e.fold_readings([("rain-WK000101", "rain_intensity", 4.0, T0 + 10)], T0 + 11)
    assert [t.values for t in e.evaluate(T0 + 11)] == [{"x": 4.0}]


WINDOWED = [value(n, "rain_gauge", "total_accumulation", fn, over=60.0)
            for n, fn in (("d", "delta"), ("r", "rate"), ("s", "sum"), ("n", "count"), ("m", "mean"),
                          ("lo", "min"), ("hi", "max"))]


def window_values(e: ReferenceEngine | ScalarLoop, now: float) -> dict[str, float | None]:
    [t] = e.evaluate(now)
    return {k: None if math.isnan(v) else v for k, v in t.values.items()}


def test_windows_of_twelve_buckets_by_event_time(engine_type: EngineType) -> None:
    e = engine_type(ruleset(probe("w", WINDOWED, group_by="device",
                                  where={"device": frozenset({"rain-WK000101"})})), city(), T0)
    gauge = "rain-WK000101"

    def fold(*readings: tuple[float, float], received: float) -> None:
        e.fold_readings([(gauge, "total_accumulation", v, t) for v, t in readings], received)

    # Buckets of 5 s: K = T0 / 5 holds T0 .. T0 + 5, and so on.
    fold((10, T0), (11, T0 + 5), (13, T0 + 12), received=T0 + 12)
    assert window_values(e, T0 + 12) == {"d": 3, "r": 0.25, "s": 34, "n": 3, "m": 34 / 3, "lo": 10, "hi": 13}
    fold((12, T0 + 1), received=T0 + 13)  # late, but its bucket is still in its cell
    assert window_values(e, T0 + 13) == {"d": 3, "r": 0.25, "s": 46, "n": 4, "m": 11.5, "lo": 10, "hi": 13}
    fold((20, T0 + 60), received=T0 + 60)  # bucket K + 12 takes over the cell of bucket K
    fold((99, T0 + 2), received=T0 + 60)  # bucket K is older than its cell holds now: dropped
    assert e.late_for_window == 1
    assert window_values(e, T0 + 60) == {"d": 9, "r": 9 / 55, "s": 44, "n": 3, "m": 44 / 3, "lo": 11, "hi": 20}
    # At T0 + 65 the window starts at bucket K + 2: exact to one bucket.
    assert window_values(e, T0 + 65) == {"d": 7, "r": 7 / 48, "s": 33, "n": 2, "m": 16.5, "lo": 13, "hi": 20}
    # One reading left: delta 0, rate missing (no time between first and last).
    assert window_values(e, T0 + 115) == {"d": 0, "r": None, "s": 20, "n": 1, "m": 20, "lo": 20, "hi": 20}
    nothing = dict.fromkeys(("d", "r", "s", "n", "m", "lo", "hi"))
    assert window_values(e, T0 + 120) == nothing  # no reading in the window: every function missing
    fold((7, T0 + 130), received=T0 + 120)  # ahead of the clock: not in a window until its bucket comes
    assert window_values(e, T0 + 125) == nothing
    assert window_values(e, T0 + 130) == {"d": 0, "r": None, "s": 7, "n": 1, "m": 7, "lo": 7, "hi": 7}


def test_window_ties_first_to_arrive_is_earliest_last_to_arrive_is_latest(engine_type: EngineType) -> None:
    spec = [value("d", "rain_gauge", "total_accumulation", "delta", over=60.0),
            value("r", "rain_gauge", "total_accumulation", "rate", over=60.0)]
    e = engine_type(ruleset(probe("w", spec, group_by="device", where={"device": frozenset({"rain-WK000101"})})),
                    city(), T0)
    e.fold_readings([("rain-WK000101", "total_accumulation", v, t)
                     for v, t in ((5, T0), (7, T0), (9, T0 + 3), (11, T0 + 3))], T0 + 3)
    assert window_values(e, T0 + 3) == {"d": 6, "r": 2}


def test_three_valued_logic_missing_never_activates_or_clears(engine_type: EngineType) -> None:
    a, b = value("a", "rain_gauge", "rain_intensity"), value("b", "rain_gauge", "accumulation")
    one: dict[str, Any] = {"group_by": "device", "where": {"device": frozenset({"rain-WK000101"})}, "stale_after": 60.0}
    rules = [rule("or", [a, b], "a > 1 or b > 1", **one), rule("and", [a, b], "a > 1 and b > 1", **one),
             rule("not", [a, b], "not (a > 1)", **one), rule("div", [a, b], "b / a < 1", **one)]
    e = engine_type(ruleset(*rules), city(), T0)
    steps: list[tuple[float, list[tuple[str, float]], list[tuple[str, str]]]] = [
        (T0, [], []),  # everything missing
        (T0 + 10, [("b", 2)], [("or", "activate")]),  # missing or true = true; missing and true = missing
        (T0 + 20, [("a", 0)], [("not", "activate")]),  # 2 / 0 is missing
        (T0 + 30, [("a", 4)], [("and", "activate"), ("not", "clear"), ("div", "activate")]),
        (T0 + 90.25, [], []),  # both stale: every condition missing, every slot keeps its state
        (T0 + 100, [("b", 0)], [("and", "clear")]),  # missing and false = false; missing or false = missing
        (T0 + 110, [("a", 0)], [("or", "clear"), ("not", "activate")]),  # 0 / 0 is missing
    ]
    metric = {"a": "rain_intensity", "b": "accumulation"}
    for now, readings, expected in steps:
        e.fold_readings([("rain-WK000101", metric[n], v, now) for n, v in readings], now)
        assert [(t.rule, t.event.value) for t in e.evaluate(now)] == expected, now - T0


def test_missing_forgets_pending(engine_type: EngineType) -> None:
    r = rule("p", [value("a", "rain_gauge", "rain_intensity")], "a > 1", group_by="device",
             where={"device": frozenset({"rain-WK000101"})}, stale_after=60.0, for_seconds=20.0)
    e = engine_type(ruleset(r), city(), T0)
    e.fold_readings([("rain-WK000101", "rain_intensity", 2.0, T0)], T0)
    assert e.evaluate(T0) == [] and e.evaluate(T0 + 70) == []  # stale at T0 + 70: A missing
    e.fold_readings([("rain-WK000101", "rain_intensity", 2.0, T0 + 80)], T0 + 80)
    assert e.evaluate(T0 + 80) == [] and e.evaluate(T0 + 90) == []
    assert [t.event.value for t in e.evaluate(T0 + 100)] == ["activate"]


def test_deadman_for_a_device_never_heard_from(engine_type: EngineType) -> None:
    quiet = rule("quiet", [value("q", "occupancy", "presence", "silence")], "q > 600", group_by="device")
    heard = rule("heard", [value("q", "*", "*", "silence", reduce="min")], "q > 600")  # any metric, any kind
    e = engine_type(ruleset(quiet, heard), city(), T0)
    assert e.evaluate(T0 + 600) == []
    fired = e.evaluate(T0 + 600.25)
    assert brief(fired) == [("quiet", d, "activate", True) for d in OCCUPANCY] + [
        ("heard", w, "activate", True) for w in ("WK000101", "WK000102", "WK000201")]
    assert all(t.values == {"q": 600.25} for t in fired)
    # Silence counts from when a reading was received, not from its event time.
    e.fold_readings([("occ-WK000102-0", "presence", 1.0, T0 + 650)], T0 + 700)
    cleared = e.evaluate(T0 + 700)
    assert brief(cleared) == [("quiet", "occ-WK000102-0", "clear", False), ("heard", "WK000102", "clear", False)]
    assert [t.values for t in cleared] == [{"q": 0.0}, {"q": 0.0}]


def test_group_reducers(engine_type: EngineType) -> None:
    values = [value(n, "occupancy", "count", reduce=n) for n in ("max", "min", "mean", "sum", "count")]
    e = engine_type(ruleset(probe("g", values, group_by="gemeente")), city(), T0)
    e.fold_readings([count("occ-WK000101-0", 3, T0), count("occ-WK000101-1", 1, T0)], T0)
    assert rows(e.evaluate(T0)) == [
        ("g", "GM0001", "activate", True, T0, (("max", 3), ("min", 1), ("mean", 2), ("sum", 4), ("count", 2))),
        ("g", "GM0002", "activate", True, T0,
         (("max", None), ("min", None), ("mean", None), ("sum", None), ("count", 0))),
    ]
    e.fold_readings([count("occ-WK000201-0", 2, T0 + 1)], T0 + 1)
    assert [t.values for t in e.evaluate(T0 + 1)][1] == {"max": 2, "min": 2, "mean": 2, "sum": 2, "count": 1}


def test_any_kind_with_one_metric_makes_members_of_the_kinds_that_have_it(engine_type: EngineType) -> None:
    e = engine_type(ruleset(rule("none", [value("n", "*", "count", reduce="count")], "n == 0", group_by="device")),
                    city(), T0)
    assert [t.group for t in e.evaluate(T0)] == OCCUPANCY  # no slots for lights or rain gauges


def test_schedules_by_the_gemeente_of_the_slot_leader(engine_type: EngineType) -> None:
    def states(name: str, gemeente: str, now: float) -> bool:
        if name == "night":
            return gemeente == "GM0001" and now >= T0 + 100
        return name == "evening" and now >= T0 + 200

    clock = FixedClock(states)
    rules = [rule("night-lights", [PEOPLE], "night and people > 0"),
             rule("evening", [PEOPLE], "evening and not night", group_by="gemeente"),
             rule("by-kind", [PEOPLE], "night", group_by="kind")]  # one slot; its leader is in GM0001
    e = engine_type(ruleset(*rules, schedules=["evening"]), city(), T0, schedules=clock)
    e.fold_readings([count(d, 1, T0) for d in ("occ-WK000101-0", "occ-WK000102-0", "occ-WK000201-0")], T0)
    assert e.evaluate(T0) == []
    assert brief(e.evaluate(T0 + 100)) == [("night-lights", "WK000101", "activate", True),
                                           ("night-lights", "WK000102", "activate", True),
                                           ("by-kind", "occupancy", "activate", True)]
    assert brief(e.evaluate(T0 + 200)) == [("evening", "GM0002", "activate", True)]
    assert {g for _, g in clock.asked} == {"GM0001", "GM0002"}


def test_evaluation_time_never_goes_back(engine_type: EngineType) -> None:
    e = engine_type(ruleset(rule("busy", [PEOPLE], "people > 2", for_seconds=60.0)), city(), T0)
    e.fold_readings([count("occ-WK000101-0", 3, T0)], T0)
    assert e.evaluate(T0 - 50) == []  # taken as T0, the engine's start: pending since T0
    assert e.evaluate(T0 + 30) == []
    [fired] = e.evaluate(T0 + 60)
    e.fold_readings([count("occ-WK000101-0", 0, T0 + 61)], T0 + 61)
    [cleared] = e.evaluate(T0 + 10)
    assert (fired.time, cleared.event.value, cleared.time) == (T0 + 60, "clear", T0 + 60)
    # Nor across a restart whose clock is behind the last evaluation.
    e.fold_readings([count("occ-WK000101-0", 3, T0 + 62)], T0 + 62)
    [again] = restarted(engine_type, e, ruleset(rule("busy", [PEOPLE], "people > 2")), T0 + 20).evaluate(T0 + 30)
    assert (again.event.value, again.time) == ("activate", T0 + 60)


def restarted(engine_type: EngineType, old: ReferenceEngine | ScalarLoop, rules: Any, now: float,
              **kw: Any) -> ReferenceEngine | ScalarLoop:
    """A new engine restored from old's snapshot (through JSON, as a file would carry it)."""
    new = engine_type(rules, city(), now, **kw)
    new.restore(json.loads(json.dumps(old.snapshot())), now)
    return new


def test_restart_mid_for_keeps_the_duration_and_does_not_fire_twice(engine_type: EngineType) -> None:
    rules = ruleset(rule("busy", [PEOPLE], "people > 2", for_seconds=600.0))
    a = engine_type(rules, city(), T0)
    a.fold_readings([count("occ-WK000101-0", 3, T0)], T0)
    assert a.evaluate(T0) == [] and a.evaluate(T0 + 300) == []
    b = restarted(engine_type, a, rules, T0 + 400)
    assert b.evaluate(T0 + 400) == []  # the restored reading still holds
    assert brief(b.evaluate(T0 + 600)) == [("busy", WIJK1, "activate", True)]  # 600 s after T0, not T0 + 400
    c = restarted(engine_type, b, rules, T0 + 700)
    assert c.evaluate(T0 + 700) == [] and c.evaluate(T0 + 800) == []


def test_changed_rule_starts_afresh_and_new_series_count_silence_from_the_reload(engine_type: EngineType) -> None:
    busy = rule("busy", [PEOPLE], "people > 2", for_seconds=600.0)
    now_active = rule("active", [PEOPLE], "people > 2")
    a = engine_type(ruleset(busy, now_active), city(), T0)
    a.fold_readings([count("occ-WK000101-0", 3, T0)], T0)
    assert brief(a.evaluate(T0)) == [("active", WIJK1, "activate", True)]
    assert a.evaluate(T0 + 300) == []
    changed = [replace(busy, for_seconds=590.0), replace(now_active, description="new words only"),
               replace(now_active, name="active2")]
    b = restarted(engine_type, a, ruleset(*changed), T0 + 400)
    b.fold_readings([count("occ-WK000101-0", 3, T0 + 400)], T0 + 400)
    # busy starts afresh (pending since T0 + 400); "active" kept its state; "active2" is new.
    assert brief(b.evaluate(T0 + 400)) == [("active2", WIJK1, "activate", True)]
    assert b.evaluate(T0 + 600) == [] and b.evaluate(T0 + 989.75) == []
    assert brief(b.evaluate(T0 + 990)) == [("busy", WIJK1, "activate", True)]

    quiet = [rule("quiet", [value("q", "occupancy", "presence", "silence")], "q > 100", group_by="device"),
             rule("quiet-count", [value("q", "occupancy", "count", "silence")], "q > 1000", group_by="device")]
    c = restarted(engine_type, a, ruleset(busy, *quiet), T0 + 1000)
    # count series came from the snapshot (received at T0); presence series are new: silent since T0 + 1000.
    assert brief(c.evaluate(T0 + 1000.25)) == [("quiet-count", d, "activate", True) for d in OCCUPANCY]
    assert c.evaluate(T0 + 1100) == []
    assert brief(c.evaluate(T0 + 1100.25)) == [("quiet", d, "activate", True) for d in OCCUPANCY]


def test_unread_series_are_ignored(engine_type: EngineType) -> None:
    e = engine_type(ruleset(probe("p", [PEOPLE])), city(), T0)
    e.fold_readings([("ghost", "count", 9.0, T0), ("occ-WK000101-0", "presence", 1.0, T0),
                     ("sl-WK000101-0", "count", 9.0, T0)], T0)
    assert all(math.isnan(t.values["people"]) for t in e.evaluate(T0))


def test_scalar_loop_matches_reference_state_and_cross_restores() -> None:
    rules = ruleset(probe("w", WINDOWED, group_by="device", where={"device": frozenset({"rain-WK000101"})}),
                    rule("busy", [PEOPLE], "people > 2", for_seconds=600.0, reassert_seconds=30.0))
    ref, loop = ReferenceEngine(rules, city(), T0), ScalarLoop(rules, city(), T0)
    assert list(loop.series_index) == sorted(loop.series_index)
    readings = [("rain-WK000101", "total_accumulation", 1.5, T0 + 3), count("occ-WK000101-0", 3, T0 + 4),
                ("rain-WK000101", "total_accumulation", 2.5, T0 + 1), ("ghost", "count", 1.0, T0)]
    ref.fold_readings(readings, T0 + 5)
    known = [r for r in readings if (r[0], r[1]) in loop.series_index]
    loop.fold_indexed([loop.series_index[d, m] for d, m, _, _ in known], [v for *_, v, _ in known],
                      [t for *_, t in known], T0 + 5)
    assert rows(ref.evaluate(T0 + 5)) == rows(loop.evaluate(T0 + 5))
    assert ref.snapshot() == loop.snapshot()
    for src, dst_type in ((ref, ScalarLoop), (loop, ReferenceEngine)):
        dst = dst_type(rules, city(), T0 + 10)
        dst.restore(src.snapshot(), T0 + 10)
        twin = type(src)(rules, city(), T0 + 10)
        twin.restore(src.snapshot(), T0 + 10)
        for now in (T0 + 10, T0 + 40, T0 + 604, T0 + 640):
            assert rows(dst.evaluate(now)) == rows(twin.evaluate(now))
