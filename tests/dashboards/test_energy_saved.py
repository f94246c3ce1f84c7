"""The energy-saved panels' figures equal the saving computed here from the raw street-light readings.

Independent of InfluxQL: every reading of the simulated day is fetched as it was stored, and per lamp the
saving against the always-on baseline (dashboards.energy's definition: a lamp at dim level d drawing P W
would draw P * 100 / d at full level; off by day saves nothing) is integrated by trapezoids between
consecutive readings, then summed over the wijk. The panels are repeated per wijk, so each copy is run
with one wijk, as Grafana runs it, for every wijk of every gemeente.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from typing import Any

import pytest

from dashboards import energy
from scenario.day import query_rows
from tests.dashboards import grafana_macros as gm
from tests.dashboards.dashboard_queries import DashboardRun, dashboard_runs, query_panels, targets_of

pytestmark = pytest.mark.integration

UID = "smartcity-lighting-energy"
REL = 1e-6  # float sums in another order


def lamp_energy_kwh(day: Any) -> dict[str, tuple[float, float]]:
    """wijk -> (saved kWh, actual kWh) of the day, from the raw readings."""
    rows = query_rows(day, f'SELECT "power", "dim_level" FROM "street_light" WHERE time >= {round(day.start)}s '
                           f'AND time < {round(day.end)}s GROUP BY "device", "wijk"')
    per_lamp: dict[tuple[str, str], list[tuple[float, float, float]]] = defaultdict(list)
    for r in rows:
        if r["power"] is not None and r["dim_level"] is not None:
            per_lamp[(r["wijk"], r["device"])].append((r["time"], float(r["power"]), float(r["dim_level"])))
    out: dict[str, tuple[float, float]] = defaultdict(lambda: (0.0, 0.0))
    for (wijk, _), readings in per_lamp.items():
        readings.sort()
        saved_wh = actual_wh = 0.0
        for (t0, p0, d0), (t1, p1, d1) in itertools.pairwise(readings):
            hours = (t1 - t0) / 3600
            saved_wh += hours * (_saved_w(p0, d0) + _saved_w(p1, d1)) / 2
            actual_wh += hours * (p0 + p1) / 2
        s, a = out[wijk]
        out[wijk] = (s + saved_wh / 1000, a + actual_wh / 1000)
    return dict(out)


def _saved_w(power: float, dim: float) -> float:
    """What dimming saves at this reading: the full-level draw minus the draw (nothing when the lamp is off)."""
    return power * (100 - dim) / dim if dim > 0 else 0.0


@pytest.fixture(scope="module")
def run(city_day: Any) -> DashboardRun:
    return dashboard_runs(city_day.influx, city_day.start, city_day.end)[UID]


def _panel(run: DashboardRun, title: str) -> dict[str, Any]:
    [panel] = [p for p in query_panels(run.dashboard) if p.get("title") == title]
    assert panel.get("repeat") == "wijk", f"{title!r} must repeat per wijk (see dashboards/energy.py)"
    return panel


def _one_wijk_combos(run: DashboardRun) -> list[dict[str, gm.Selection]]:
    """The combinations a repeated panel copy runs under: one wijk each (and its gemeente alone)."""
    return [c for c in run.combos if not c["wijk"].is_all and len(c["wijk"].values) == 1
            and not c["gemeente"].is_all]


def _day_row(run: DashboardRun, panel: dict[str, Any], combo: dict[str, gm.Selection]) -> dict[str, float]:
    [target] = targets_of(panel)
    outcome = run.outcome(run.panel_statement(panel, target, combo))
    assert outcome.error is None, outcome.error
    rows = [dict(zip(s["columns"], v, strict=True)) for s in outcome.result.series for v in s.get("values", [])]
    # The day's bucket (Amsterdam midnight to midnight); GROUP BY time(1d) also yields the day before and after
    # when the time filter touches them, with fill(none) only where lamps reported.
    days = [r for r in rows if r.get("saved_kwh") is not None]
    assert len(days) == 1, f"{gm.describe(combo)}: expected one day, got {rows}"
    return days[0]


def test_energy_saved_per_wijk_equals_the_figure_from_the_raw_readings(run: DashboardRun, city_day: Any) -> None:
    expected = lamp_energy_kwh(city_day)
    panel = _panel(run, energy.PANEL_TITLE)
    combos = _one_wijk_combos(run)
    assert {c["wijk"].values[0] for c in combos} == set(expected), "every wijk with lamps is checked"
    for combo in combos:
        wijk = combo["wijk"].values[0]
        got = _day_row(run, panel, combo)["saved_kwh"]
        assert expected[wijk][0] > 0, f"{wijk}: the simulated night dims no lamp?"
        assert got == pytest.approx(expected[wijk][0], rel=REL), wijk


def test_the_energy_table_has_actual_baseline_and_percentage_from_the_raw_readings(
        run: DashboardRun, city_day: Any) -> None:
    expected = lamp_energy_kwh(city_day)
    panel = _panel(run, energy.TABLE_TITLE)
    for combo in _one_wijk_combos(run):
        wijk = combo["wijk"].values[0]
        saved, actual = expected[wijk]
        row = _day_row(run, panel, combo)
        assert row["saved_kwh"] == pytest.approx(saved, rel=REL), wijk
        assert row["actual_kwh"] == pytest.approx(actual, rel=REL), wijk
        assert row["baseline_kwh"] == pytest.approx(actual + saved, rel=REL), wijk
        assert row["saved_pct"] == pytest.approx(100 * saved / (actual + saved), rel=REL), wijk
        assert 0 < row["saved_pct"] < 100
