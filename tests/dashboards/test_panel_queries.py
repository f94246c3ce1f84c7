"""Every panel query of every committed dashboard, for every value of its variables, on the simulated city day.

For each dashboard x panel, each target is interpolated as Grafana would (grafana_macros) for every
combination of variable values (each gemeente, each wijk of that gemeente, each gateway, and All), and run
on the city_day influxd. Each run must succeed and, when it returns data, have the panel type's shape; the
geomap must list exactly the selected devices at their registry coordinates; a target that returns nothing
for every combination is a broken query; and each dashboard needs a panel with data for every combination.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.dashboards import grafana_macros as gm
from tests.dashboards.dashboard_queries import (
    DATASOURCE_UID,
    DashboardRun,
    dashboard_runs,
    load_dashboards,
    query_panels,
    targets_of,
)
from tests.dashboards.panel_shapes import GEOMAP_PANELS, geomap_config_problems, is_empty, shape_problems

pytestmark = pytest.mark.integration

DASHBOARDS = load_dashboards()
MAX_LINES = 40  # of a failure message: enough to see the pattern, short enough to read


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40]


def _panel_params() -> list[Any]:
    params = [pytest.param(uid, int(p.get("id", 0)), id=f"{uid}:{p.get('id')}-{_slug(str(p.get('title', '')))}")
              for uid, d in DASHBOARDS.items() for p in query_panels(d)]
    # An empty list would make pytest skip: no dashboards is a failure of its own.
    return params or [pytest.param(None, 0, id="no-dashboards")]


@pytest.fixture(scope="module")
def runs(city_day: Any) -> dict[str, DashboardRun]:
    """Every dashboard's queries run for every variable combination (once per module)."""
    return dashboard_runs(city_day.influx, city_day.start, city_day.end)


def _panel(uid: str, panel_id: int) -> dict[str, Any]:
    return next(p for p in query_panels(DASHBOARDS[uid]) if int(p.get("id", 0)) == panel_id)


def _selected(combo: dict[str, gm.Selection], name: str) -> set[str] | None:
    return set(combo[name].values) if name in combo else None


def geomap_expected(city_day: Any, combo: dict[str, gm.Selection]) -> dict[str, tuple[float, float]]:
    """The registry's devices in the selected gemeente(n) and wijk(en): id -> (lat, lon)."""
    gemeenten, wijken = _selected(combo, "gemeente"), _selected(combo, "wijk")
    return {d.id: (d.lat, d.lon) for d in city_day.registry.devices.values()
            if (gemeenten is None or d.gemeente in gemeenten) and (wijken is None or d.wijk in wijken)}


def _report(lines: list[str]) -> str:
    more = f"\n... and {len(lines) - MAX_LINES} more" if len(lines) > MAX_LINES else ""
    return "\n".join(lines[:MAX_LINES]) + more


@pytest.mark.parametrize(("uid", "panel_id"), _panel_params())
def test_panel_queries_have_the_panel_shape_for_every_variable_value(
        uid: str | None, panel_id: int, runs: dict[str, DashboardRun], city_day: Any) -> None:
    assert uid is not None, "no dashboards in dashboards/json"
    run, panel = runs[uid], _panel(uid, panel_id)
    assert run.combos, f"{uid}: no variable combination (a variable without values?): {run.variable_errors}"
    kind = str(panel.get("type"))
    targets = targets_of(panel)
    assert targets, f"{uid} panel {panel_id} ({kind}) has no target"
    problems: list[str] = []
    for target in targets:
        ds = target_datasource(panel, target.ref_id)
        if ds != {"type": "influxdb", "uid": DATASOURCE_UID}:
            problems.append(f"{target.ref_id}: datasource {ds}")
        # The same interpolated statement (a variable the target does not use) fails the same way:
        # each problem once, with the combinations it showed in.
        found: dict[str, list[str]] = {}
        nonempty = errors = 0
        for combo in run.combos:
            statement = run.panel_statement(panel, target, combo)
            outcome = run.outcome(statement)
            if outcome.error:
                errors += 1
                issues = [f"InfluxDB error: {outcome.error}"]
            elif kind in GEOMAP_PANELS:
                issues = shape_problems(kind, target.result_format, outcome.result, geomap_expected(city_day, combo))
            elif is_empty(outcome.result):
                continue
            else:
                issues = shape_problems(kind, target.result_format, outcome.result)
            nonempty += not outcome.error and not is_empty(outcome.result)
            for issue in issues:
                found.setdefault(f"{target.ref_id} {statement}\n    {issue}", []).append(gm.describe(combo))
        problems += [f"{text}\n    in {len(combos)} combination(s): {'; '.join(combos[:4])}"
                     for text, combos in found.items()]
        if not nonempty and not errors:
            problems.append(f"{target.ref_id}: no data for any of {len(run.combos)} variable combinations: "
                            f"{target.query}")
    if kind in GEOMAP_PANELS:
        problems += geomap_config_problems(panel)
    if problems:
        pytest.fail(f"{uid} panel {panel_id} {panel.get('title')!r} ({kind}):\n" + _report(problems), pytrace=False)


def target_datasource(panel: dict[str, Any], ref_id: str) -> Any:
    """A target's datasource reference (the panel's when the target names none)."""
    target = next(t for t in panel.get("targets", []) if str(t.get("refId", "")) == ref_id)
    return target.get("datasource") or panel.get("datasource")


# The device kinds a dashboard is about; a combination of variables with none of them selects nothing to show
# (a wijk without a rain gauge, a Wassenaar gateway with a Voorschoten wijk). Not listed: any kind.
DASHBOARD_KINDS = {"smartcity-rain-cycling": {"rain_gauge", "traffic_light"},
                   "smartcity-occupancy": {"occupancy", "parking_spot"},
                   "smartcity-lighting-energy": {"street_light"}}


def selects_devices(uid: str, city_day: Any, combo: dict[str, gm.Selection]) -> bool:
    """Whether the registry has a device of the dashboard's kinds that every selected variable lets through."""
    kinds = DASHBOARD_KINDS.get(uid)
    chosen = {name: _selected(combo, name) for name in ("gemeente", "wijk", "gateway")}
    return any((kinds is None or d.kind in kinds)
               and all(values is None or getattr(d, name) in values for name, values in chosen.items())
               for d in city_day.registry.devices.values())


@pytest.mark.parametrize("uid", sorted(DASHBOARDS) or [None])
def test_each_dashboard_has_a_panel_with_data_for_every_variable_value(
        uid: str | None, runs: dict[str, DashboardRun], city_day: Any) -> None:
    """For every combination that selects devices of the dashboard's kinds, one panel at least shows data."""
    assert uid is not None, "no dashboards in dashboards/json"
    run = runs[uid]
    combos = [c for c in run.combos if selects_devices(uid, city_day, c)]
    assert combos, f"{uid}: no variable combination selects a device"
    always: list[str] = []
    for panel in query_panels(run.dashboard):
        if all(any(not is_empty(run.outcome(run.panel_statement(panel, t, combo)).result)
                   for t in targets_of(panel)) for combo in combos):
            always.append(str(panel.get("title")))
    assert always, f"{uid}: no panel has data for every one of {len(combos)} variable combinations"


@pytest.mark.parametrize("uid", sorted(DASHBOARDS) or [None])
def test_variables_list_the_registry_values(uid: str | None, runs: dict[str, DashboardRun], city_day: Any) -> None:
    """gemeente, wijk (given each gemeente) and gateway (given each gemeente) as the registry has them."""
    assert uid is not None, "no dashboards in dashboards/json"
    run = runs[uid]
    assert not run.variable_errors, f"{uid}: variable queries failed: {run.variable_errors}"
    names = [v.name for v in run.variables]
    assert {"gemeente", "wijk"} <= set(names), f"{uid}: variables {names}, not gemeente and wijk"
    for v in run.variables:
        assert v.multi and v.include_all and not v.all_value, f"{uid}: {v.name} must be multi, All, no allValue"
    lights = [d for d in city_day.registry.devices.values() if d.kind == "street_light"]
    gemeenten = {d.gemeente for d in lights}
    problems = []
    for combo in run.combos:
        g = set(combo["gemeente"].values)
        if set(_all_options(run, combo, "gemeente")) != gemeenten:
            problems.append(f"gemeente options {_all_options(run, combo, 'gemeente')} != {sorted(gemeenten)}")
        want_wijken = {d.wijk for d in lights if d.gemeente in g}
        if set(_all_options(run, combo, "wijk")) != want_wijken:
            problems.append(f"[{gm.describe(combo)}] wijk options {_all_options(run, combo, 'wijk')} "
                            f"!= {sorted(want_wijken)}")
        if "gateway" in combo:
            want_gw = {gw.id for gw in city_day.registry.gateways.values() if gw.gemeente in g}
            if set(_all_options(run, combo, "gateway")) != want_gw:
                problems.append(f"[{gm.describe(combo)}] gateway options {_all_options(run, combo, 'gateway')} "
                                f"!= {sorted(want_gw)}")
    assert not problems, f"{uid}:\n" + _report(sorted(set(problems)))


def _all_options(run: DashboardRun, combo: dict[str, gm.Selection], name: str) -> list[str]:
    """The options of a variable under the combination's choices for the variables before it."""
    return sorted({v for c in run.combos if _same_parents(run, c, combo, name) for v in c[name].values})


def _same_parents(run: DashboardRun, a: dict[str, gm.Selection], b: dict[str, gm.Selection], name: str) -> bool:
    names = [v.name for v in run.variables]
    parents = names[:names.index(name)]
    return all(a[p] == b[p] for p in parents)
