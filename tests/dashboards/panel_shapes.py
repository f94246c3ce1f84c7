"""The shape of data each panel type needs, checked on what InfluxDB returns for a panel's target.

The contract (issue 9, "Panel shapes"): time-series kinds need series with a time column and a numeric (or,
for state-timeline, boolean) value that is not null somewhere; stat/gauge/bargauge a row with a numeric
value; a table rows; the geomap one row per device with device, lat, lon and code/status; an annotation a
time and a text column. Each check returns the problems it found (empty: the shape holds), so a test can
report every target and variable value at once. Whether a result may be empty is the caller's decision:
``is_empty`` tells it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from core.influx import InfluxClient

TIME_SERIES_PANELS = frozenset({"timeseries", "barchart", "state-timeline", "status-history", "trend"})
SINGLE_VALUE_PANELS = frozenset({"stat", "gauge", "bargauge"})
TABLE_PANELS = frozenset({"table"})
GEOMAP_PANELS = frozenset({"geomap"})
# Panels without a query of their own.
NO_QUERY_PANELS = frozenset({"row", "text", "dashlist", "news", "annolist", "alertlist"})
GEOMAP_THRESHOLDS = ((0, "green"), (1, "orange"), (2, "red"))


@dataclass(frozen=True, slots=True)
class Result:
    """One statement's series as InfluxDB returned them (name, tags, columns, values)."""

    series: tuple[dict[str, Any], ...]

    @classmethod
    def of(cls, statement_result: dict[str, Any]) -> Result:
        """From one entry of the /query response's results array."""
        return cls(tuple(statement_result.get("series", [])))


def is_empty(result: Result) -> bool:
    """No series, or series without rows."""
    return not any(s.get("values") for s in result.series)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def table_rows(result: Result) -> list[dict[str, Any]]:
    """Grafana's table of a result (influx_series getTable): each row with its series' tags as columns."""
    rows: list[dict[str, Any]] = []
    for s in result.series:
        tags = s.get("tags") or {}
        for values in s.get("values", []):
            row = dict(tags)
            row.update(zip(s["columns"], values, strict=True))
            rows.append(row)
    return rows


def time_series_problems(result: Result, *, allow_bool: bool) -> list[str]:
    """>= 1 series, each with a time column first, >= 1 value column with a numeric (or bool) value."""
    problems: list[str] = []
    if not result.series:
        return ["no series"]
    good_series = 0
    for s in result.series:
        cols = s["columns"]
        name = f"series {s.get('name', '')}{s.get('tags') or ''}"
        if not cols or cols[0] != "time":
            problems.append(f"{name}: first column is {cols[:1]}, not time")
            continue
        if any(not _is_number(v[0]) for v in s.get("values", [])):
            problems.append(f"{name}: a time that is not epoch ms")
        value_cols = range(1, len(cols))
        if not value_cols:
            problems.append(f"{name}: no value column")
            continue
        for i in value_cols:
            kinds = {type(v[i]).__name__ for v in s.get("values", []) if v[i] is not None}
            wrong = kinds - ({"int", "float", "bool"} if allow_bool else {"int", "float"})
            if wrong:
                problems.append(f"{name}: column {cols[i]!r} holds {sorted(wrong)}, not numbers")
        if any(_is_number(v[i]) or (allow_bool and isinstance(v[i], bool))
               for v in s.get("values", []) for i in value_cols):
            good_series += 1
    if not problems and not good_series:
        problems.append("every value is null")
    return problems


def single_value_problems(result: Result) -> list[str]:
    """>= 1 row with a numeric value in a column other than time."""
    for row in table_rows(result):
        if any(_is_number(v) for k, v in row.items() if k != "time"):
            return []
    return ["no row with a numeric value"]


def table_problems(result: Result) -> list[str]:
    """>= 1 row."""
    return [] if table_rows(result) else ["no rows"]


def geomap_problems(result: Result, expected: dict[str, tuple[float, float]]) -> list[str]:
    """One row per expected device (id -> (lat, lon)), with device, lat, lon and code or status columns,
    lat/lon equal to the registry's and the code 0, 1 or 2."""
    problems: list[str] = []
    rows = table_rows(result)
    seen: dict[str, int] = {}
    for row in rows:
        missing = [c for c in ("device", "lat", "lon") if c not in row]
        if missing or ("code" not in row and "status" not in row):
            problems.append(f"row without {missing or ['code/status']}: {sorted(row)}")
            continue
        device = str(row["device"])
        seen[device] = seen.get(device, 0) + 1
        if device in expected:
            lat, lon = expected[device]
            if not (_is_number(row["lat"]) and _is_number(row["lon"])
                    and math.isclose(row["lat"], lat, abs_tol=1e-9) and math.isclose(row["lon"], lon, abs_tol=1e-9)):
                problems.append(f"{device}: lat/lon {row['lat']}, {row['lon']} but the registry says {lat}, {lon}")
        if "code" in row and row["code"] not in (0, 1, 2):
            problems.append(f"{device}: code {row['code']!r} is not 0, 1 or 2")
    if dup := sorted(d for d, n in seen.items() if n > 1):
        problems.append(f"more than one row for {dup}")
    if extra := sorted(set(seen) - set(expected)):
        problems.append(f"devices outside the selection: {extra}")
    if missing_devices := sorted(set(expected) - set(seen)):
        problems.append(f"devices of the selection missing: {missing_devices}")
    return problems


def annotation_problems(result: Result, text_column: str) -> list[str]:
    """A time column and the text column in every series."""
    if not result.series:
        return ["no series"]
    problems = []
    for s in result.series:
        cols = s["columns"]
        if "time" not in cols:
            problems.append(f"series {s.get('name')}: no time column")
        if text_column not in cols and text_column not in (s.get("tags") or {}):
            problems.append(f"series {s.get('name')}: no text column {text_column!r} (columns {cols})")
    return problems


def geomap_config_problems(panel: dict[str, Any]) -> list[str]:
    """The geomap's layer places markers by the lat/lon columns and colours them by code 0/1/2."""
    problems: list[str] = []
    layers = panel.get("options", {}).get("layers") or [{}]
    location = layers[0].get("location", {})
    if (location.get("mode"), location.get("latitude"), location.get("longitude")) != ("coords", "lat", "lon"):
        problems.append(f"layer 0 location is {location}, not coords by lat/lon")
    color = layers[0].get("config", {}).get("style", {}).get("color", {})
    if color.get("field") != "code":
        problems.append(f"layer 0 colour field is {color.get('field')!r}, not 'code'")
    steps = panel.get("fieldConfig", {}).get("defaults", {}).get("thresholds", {}).get("steps", [])
    got = tuple((s.get("value"), s.get("color")) for s in steps)
    # The first step's value is null in Grafana's JSON (-Infinity): it stands for 0 here.
    normalised = tuple((0 if v is None else v, c) for v, c in got)
    if normalised != GEOMAP_THRESHOLDS:
        problems.append(f"thresholds {got}, not 0 green / 1 orange / 2 red")
    return problems


def shape_problems(panel_type: str, result_format: str, result: Result,
                   geomap_expected: dict[str, tuple[float, float]] | None = None) -> list[str]:
    """The problems of one non-empty target result for a panel of this type."""
    if panel_type in TIME_SERIES_PANELS:
        if result_format != "time_series":
            return [f"resultFormat {result_format!r}, not time_series"]
        return time_series_problems(result, allow_bool=panel_type in ("state-timeline", "status-history"))
    if panel_type in SINGLE_VALUE_PANELS:
        return single_value_problems(result)
    if panel_type in TABLE_PANELS:
        return ([] if result_format == "table" else [f"resultFormat {result_format!r}, not table"]) \
            + table_problems(result)
    if panel_type in GEOMAP_PANELS:
        if result_format != "table":
            return [f"resultFormat {result_format!r}, not table"]
        return geomap_problems(result, geomap_expected or {})
    return [f"panel type {panel_type!r} has no shape the tests know"]


def panels_of(dashboard: dict[str, Any]) -> Iterable[dict[str, Any]]:
    """Every panel, also those inside collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


@dataclass(frozen=True, slots=True)
class Outcome:
    """One statement's fate: its result, or InfluxDB's error text."""

    result: Result
    error: str | None = None


class StatementRunner:
    """Runs InfluxQL on the test database and keeps each statement's own result or error.

    core.influx.InfluxClient.query merges the series of all statements and raises on the first error;
    the tests need them apart, and several statements in one request (InfluxDB answers one result per
    statement) keep the run short. One short-lived connection per request: nothing to close.
    """

    def __init__(self, influx: InfluxClient) -> None:
        cfg = influx.config
        self._url = cfg.url.rstrip("/") + "/query"
        self._auth = (cfg.username or "", cfg.password) if cfg.password else None
        self._db = cfg.database
        self.requests = 0

    def _request(self, q: str) -> tuple[list[dict[str, Any]], str | None]:
        self.requests += 1
        resp = httpx.post(self._url, data={"db": self._db, "q": q, "epoch": "ms"}, auth=self._auth, timeout=60)
        try:
            body = resp.json()
        except ValueError:
            return [], f"HTTP {resp.status_code}: {resp.text[:500]}"
        if resp.status_code >= 300 or "error" in body:
            return [], f"HTTP {resp.status_code}: {body.get('error', body)}"
        return list(body.get("results", [])), None

    def run(self, queries: Sequence[str]) -> list[Outcome]:
        """Every query's outcome, in order; one request when they all parse, else one request each."""
        if not queries:
            return []
        joined = ";\n".join(q.strip().rstrip(";") for q in queries)
        results, error = self._request(joined)
        if error is None and len(results) == len(queries):
            return [Outcome(Result.of(r), r.get("error")) for r in results]
        if len(queries) == 1:
            return [Outcome(Result(()), error or f"{len(results)} results for one statement")]
        return [o for q in queries for o in self.run([q])]
