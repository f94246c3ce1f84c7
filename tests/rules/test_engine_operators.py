"""The engine's operators: folding a batch at once equals folding it one reading at a time (river style)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.registry import parse
from rules.engine import Engine
from rules.rule_model import (
    Binary,
    Const,
    Expression,
    Name,
    Reducer,
    Rule,
    RuleSet,
    SeriesFn,
    ValueSpec,
)
from rules.series_state import SeriesState
from rules.window_ring import WindowRing
from tests.rules.city import SMALL, registry_data

# Readings as (series, value, time); times on a coarse grid so that ties are frequent.
readings = st.lists(st.tuples(st.integers(0, 4), st.integers(-3, 3).map(float),
                              st.integers(0, 40).map(lambda k: 1000.0 + k * 2.5)), max_size=40)


def columns(batch: list[tuple[int, float, float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    s, v, t = zip(*batch, strict=True) if batch else ((), (), ())
    return np.array(s, dtype=np.intp), np.array(v, dtype=np.float64), np.array(t, dtype=np.float64)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(readings, max_size=4))
def test_series_fold_of_a_batch_equals_one_reading_at_a_time(batches: list[list[tuple[int, float, float]]]) -> None:
    together, alone = SeriesState(5, 0.0), SeriesState(5, 0.0)
    for batch in batches:
        together.fold(*columns(batch), received=1.0)
        for reading in batch:
            alone.fold(*columns([reading]), received=1.0)
    np.testing.assert_array_equal(together.value, alone.value)
    np.testing.assert_array_equal(together.time, alone.time)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(readings, max_size=4), st.integers(0, 60))
def test_window_fold_of_a_batch_equals_one_reading_at_a_time(batches: list[list[tuple[int, float, float]]],
                                                             later: int) -> None:
    fns = list(SeriesFn)[1:8]  # every windowed function
    series = np.array([0, 2, 3], dtype=np.intp)
    together, alone = WindowRing(30.0, series, 5, fns), WindowRing(30.0, series, 5, fns)
    for batch in batches:
        together.fold(*columns(batch))
        for reading in batch:
            alone.fold(*columns([reading]))
    now = 1000.0 + later * 2.5
    together.compute(now)
    alone.compute(now)
    for fn in fns:
        np.testing.assert_array_equal(together.results[fn], alone.results[fn], err_msg=fn.value)
    # ``late`` may differ: in one batch a reading superseded by a newer bucket of its cell counts as
    # late, one at a time it entered the cell first and was then reset away. The windows are equal.


def test_window_drops_a_reading_for_a_bucket_its_cell_no_longer_holds() -> None:
    ring = WindowRing(12.0, np.array([0], dtype=np.intp), 1, [SeriesFn.SUM, SeriesFn.DELTA])
    ring.fold(*columns([(0, 5.0, 1000.0), (0, 7.0, 1005.0)]))
    # 12 s later the same cell is reused: the reading of bucket 1000 arriving now is too late.
    ring.fold(*columns([(0, 1.0, 1012.0), (0, 9.0, 1000.5)]))
    assert ring.late == 1
    ring.compute(1012.5)
    assert ring.results[SeriesFn.SUM][0] == 8.0  # 7 (bucket 1005) + 1 (bucket 1012)
    assert ring.results[SeriesFn.DELTA][0] == 1.0 - 7.0


def _engine() -> Engine:
    rule = Rule(name="busy", kind="occupancy", group_by="wijk",
                values=(ValueSpec("people", "occupancy", "count", reduce=Reducer.SUM),),
                when=Expression("people > 2", Binary(">", Name("people"), Const(2.0))))
    return Engine(RuleSet(2, (rule,), {}, "Europe/Amsterdam", "<test>"), parse(registry_data(SMALL)), 0.0)


def test_fold_rejects_columns_of_different_lengths_and_series_out_of_range() -> None:
    engine = _engine()
    with pytest.raises(ValueError, match="one length"):
        engine.fold([0, 1], [1.0], [1.0, 2.0], 3.0)
    with pytest.raises(IndexError, match="out of range"):
        engine.fold([len(engine.series_keys)], [1.0], [1.0], 3.0)
    with pytest.raises(IndexError, match="out of range"):
        engine.fold([-1], [1.0], [1.0], 3.0)


def test_group_sum_activates_a_wijk_and_a_snapshot_keeps_it_active() -> None:
    engine = _engine()
    wijk_sensors = [engine.series_index[("occ-WK000101-0", "count")], engine.series_index[("occ-WK000101-1", "count")]]
    engine.fold(wijk_sensors, [2.0, 1.0], [10.0, 10.0], 10.0)
    [t] = engine.evaluate(11.0)
    assert (t.rule, t.group, t.event.value, t.values) == ("busy", "WK000101", "activate", {"people": 3.0})
    again = _engine()
    again.restore(engine.snapshot(), 12.0)
    assert again.evaluate(12.0) == []  # restored active: no second activation
    assert again.machine.active.sum() == 1


def test_cooldown_blocks_activation_until_exactly_its_end_and_for_counts_from_the_first_true() -> None:
    rule = Rule(name="busy", kind="occupancy", group_by="wijk",
                values=(ValueSpec("people", "occupancy", "count", reduce=Reducer.SUM),),
                when=Expression("people > 2", Binary(">", Name("people"), Const(2.0))),
                for_seconds=4.0, cooldown_seconds=10.0)
    engine = Engine(RuleSet(2, (rule,), {}, "Europe/Amsterdam", "<test>"), parse(registry_data(SMALL)), 0.0)
    sensor = engine.series_index[("occ-WK000101-0", "count")]

    def at(now: float, count: float) -> list[str]:
        engine.fold([sensor], [count], [now], now)
        return [t.event.value for t in engine.evaluate(now)]

    assert at(1.0, 5) == []
    assert at(5.0, 5) == ["activate"]  # held for exactly `for`
    assert at(6.0, 0) == ["clear"]  # no clear_when: clears when `when` is known false
    assert at(7.0, 5) == []  # pending from 7, but in cooldown until 16
    assert at(15.5, 5) == []
    assert at(16.0, 5) == ["activate"]  # cooldown over at exactly 10 s after the clear; `for` long since held
