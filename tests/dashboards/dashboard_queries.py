"""Every query of the committed dashboards, interpolated for every variable value and run on the city day.

A DashboardRun resolves a dashboard's variables by running their own queries (grafana_macros), then runs
every panel target and annotation for every combination of values, each distinct query once and many
statements per request, and keeps the outcomes for the tests to check.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.dashboards import grafana_macros as gm
from tests.dashboards.panel_shapes import NO_QUERY_PANELS, Outcome, StatementRunner, panels_of

DASHBOARD_DIR = Path(__file__).resolve().parents[2] / "dashboards" / "json"
DATASOURCE_UID = "smartcity-influxdb"
BATCH = 80  # statements per request: InfluxDB runs them one after another, the HTTP round trip is saved


def load_dashboards() -> dict[str, dict[str, Any]]:
    """The committed dashboards by uid (the file name)."""
    return {p.stem: json.loads(p.read_text()) for p in sorted(DASHBOARD_DIR.glob("*.json"))}


@dataclass(frozen=True, slots=True)
class Target:
    """One raw InfluxQL target of a panel."""

    ref_id: str
    query: str
    result_format: str


def query_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """The panels that query data."""
    return [p for p in panels_of(dashboard) if p.get("type") not in NO_QUERY_PANELS]


def targets_of(panel: dict[str, Any]) -> list[Target]:
    """The panel's visible targets."""
    return [Target(str(t.get("refId", "")), str(t.get("query", "")), str(t.get("resultFormat", "time_series")))
            for t in panel.get("targets", []) if not t.get("hide")]


def annotation_query(annotation: dict[str, Any]) -> str | None:
    """An InfluxQL annotation's query (newer JSON keeps it in target, older on the annotation itself)."""
    target = annotation.get("target")
    query = target.get("query") if isinstance(target, dict) else None
    return str(query or annotation.get("query") or "") or None


def influx_annotations(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """The dashboard's annotations on the InfluxDB data source (not Grafana's built-in one)."""
    out = []
    for a in dashboard.get("annotations", {}).get("list", []):
        ds = a.get("datasource")
        if isinstance(ds, dict) and ds.get("type") == "influxdb":
            out.append(a)
    return out


def annotation_setting(annotation: dict[str, Any], key: str) -> str | None:
    """textColumn, tagsColumn, ... from the annotation or its target."""
    target = annotation.get("target") if isinstance(annotation.get("target"), dict) else {}
    value = annotation.get(key) or target.get(key)
    return str(value) if value else None


class DashboardRun:
    """One dashboard's variable combinations and the outcome of each of its queries under each of them."""

    def __init__(self, uid: str, dashboard: dict[str, Any], runner: StatementRunner, from_ms: int, to_ms: int):
        self.uid = uid
        self.dashboard = dashboard
        self.runner = runner
        self.from_ms, self.to_ms = from_ms, to_ms
        self.variables = gm.variables_of(dashboard)
        self.by_name = {v.name: v for v in self.variables}
        self.variable_errors: list[str] = []
        self.combos = gm.selection_combinations(self.variables, self._variable_query, from_ms, to_ms)
        self._outcomes: dict[str, Outcome] = {}
        self._prefetch()

    def _variable_query(self, query: str) -> list[tuple[list[str], list[list[Any]]]]:
        [outcome] = self.runner.run([query])
        if outcome.error:
            self.variable_errors.append(f"{query}: {outcome.error}")
        return [(s["columns"], s.get("values", [])) for s in outcome.result.series]

    def panel_statement(self, panel: dict[str, Any], target: Target, combo: dict[str, gm.Selection]) -> str:
        """The target as InfluxDB gets it from Grafana for this combination."""
        interval = gm.panel_interval_ms(panel, self.from_ms, self.to_ms)
        return gm.interpolate(target.query, self.by_name, combo, self.from_ms, self.to_ms, interval)

    def annotation_statement(self, annotation: dict[str, Any], combo: dict[str, gm.Selection]) -> str:
        """The annotation query as InfluxDB gets it (no panel: the backend's 1 ms minimum interval)."""
        return gm.interpolate(annotation_query(annotation) or "", self.by_name, combo, self.from_ms, self.to_ms, 1)

    def _all_statements(self) -> Iterator[str]:
        for combo in self.combos:
            for panel in query_panels(self.dashboard):
                for target in targets_of(panel):
                    yield self.panel_statement(panel, target, combo)
            for annotation in influx_annotations(self.dashboard):
                yield self.annotation_statement(annotation, combo)

    def _prefetch(self) -> None:
        todo = list(dict.fromkeys(s for s in self._all_statements() if s not in self._outcomes))
        for i in range(0, len(todo), BATCH):
            chunk = todo[i:i + BATCH]
            self._outcomes.update(zip(chunk, self.runner.run(chunk), strict=True))

    def outcome(self, statement: str) -> Outcome:
        """The outcome of an interpolated statement (run now if it was not prefetched)."""
        if statement not in self._outcomes:
            [self._outcomes[statement]] = self.runner.run([statement])
        return self._outcomes[statement]


_RUNS: dict[tuple[str, int, int], dict[str, DashboardRun]] = {}


def dashboard_runs(influx: Any, from_s: float, to_s: float) -> dict[str, DashboardRun]:
    """Every dashboard's run on this database and range (unix seconds), computed once per test session."""
    from_ms, to_ms = round(from_s * 1000), round(to_s * 1000)
    key = (str(influx.config.url), from_ms, to_ms)
    if key not in _RUNS:
        runner = StatementRunner(influx)
        _RUNS[key] = {uid: DashboardRun(uid, d, runner, from_ms, to_ms)
                      for uid, d in load_dashboards().items()}
    return _RUNS[key]
