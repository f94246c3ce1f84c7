"""Validation of the dashboard JSON: the checks Grafana's schema would make, and ours.

Grafana publishes no JSON schema of schemaVersion 42 dashboards that the SDK carries (the kind is
defined in CUE in Grafana's repository, kinds/dashboard, and the SDK's Python models are generated
from it), so this is an equivalent check, plus what this project requires of every dashboard:
schemaVersion 42; unique uid and title; known panel types with the options their plugin needs;
unique panel ids; integer grid positions inside 24 columns that do not overlap; every datasource
reference the provisioned InfluxDB one; raw InfluxQL targets; template variables defined before
use and no unknown ``$name``; well-formed annotations; and a lossless round trip through the SDK's
``Dashboard.from_json`` (the generated models know every key of the v42 schema, so a key they drop
or a value they cannot read is an error here too).

Every problem is one message naming the dashboard and the panel, e.g.
``smartcity-lighting-energy panel 3 'Power per wijk': gridPos overlaps panel 2``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard

from dashboards.build import render
from dashboards.influxql import datasource_json, register

SCHEMA_VERSION = 42
GRID_COLUMNS = 24
# Panel plugin -> option keys its JSON must carry (those the SDK's panel builders always write).
PANEL_OPTIONS: dict[str, frozenset[str]] = {
    "timeseries": frozenset({"legend", "tooltip"}),
    "barchart": frozenset({"legend", "tooltip", "xField"}),
    "state-timeline": frozenset({"legend", "tooltip", "showValue", "mergeValues"}),
    "stat": frozenset({"reduceOptions", "colorMode", "graphMode"}),
    "gauge": frozenset({"reduceOptions"}),
    "bargauge": frozenset({"reduceOptions", "orientation"}),
    "table": frozenset({"showHeader"}),
    "geomap": frozenset({"view", "basemap", "layers", "controls"}),
}
TIME_SERIES_PANELS = frozenset({"timeseries", "barchart", "state-timeline"})
TABLE_PANELS = frozenset({"table", "geomap"})
# Grafana's InfluxQL macros the contract allows (template variables come on top).
MACROS = frozenset({"timeFilter", "__interval"})
_VARIABLE_REF = re.compile(r"\$(\w+)|\$\{(\w+)(?::[\w-]+)?\}|\[\[(\w+)(?::[\w-]+)?\]\]")


def referenced_variables(text: str) -> list[str]:
    """The ``$name``, ``${name}`` and ``[[name]]`` references in a query or title, in order."""
    return [next(g for g in m.groups() if g) for m in _VARIABLE_REF.finditer(text)]


def _datasource_problem(ref: object) -> str | None:
    expected = datasource_json()
    if not isinstance(ref, Mapping):
        return f"datasource is missing (want {expected})"
    if ref.get("type") != expected["type"]:
        return f"datasource type is {ref.get('type')!r}, want {expected['type']!r}"
    if ref.get("uid") != expected["uid"]:
        return f"datasource uid is {ref.get('uid')!r}, want {expected['uid']!r}"
    return None


def _query_problems(query: object, known: set[str], where: str) -> list[str]:
    if not isinstance(query, str) or not query.strip():
        return [f"{where}: query is missing or empty"]
    return [f"{where}: query uses undefined variable ${name}"
            for name in dict.fromkeys(referenced_variables(query)) if name not in known]


def _variables(uid: str, d: Mapping[str, Any]) -> tuple[set[str], list[str]]:
    problems: list[str] = []
    defined: set[str] = set()
    templating = d.get("templating")
    variables = templating.get("list") if isinstance(templating, Mapping) else None
    if not isinstance(variables, list):
        return defined, [f"{uid}: templating.list is missing"]
    for n, var in enumerate(variables):
        name = var.get("name") if isinstance(var, Mapping) else None
        where = f"{uid} variable {n} {name!r}"
        if not isinstance(name, str) or not name:
            problems.append(f"{where}: has no name")
            continue
        if name in defined:
            problems.append(f"{where}: name is defined twice")
        if var.get("type") != "query":
            problems.append(f"{where}: type is {var.get('type')!r}, want 'query'")
        if (ds := _datasource_problem(var.get("datasource"))) is not None:
            problems.append(f"{where}: {ds}")
        if var.get("multi") is not True or var.get("includeAll") is not True:
            problems.append(f"{where}: must be multi-value with includeAll")
        if var.get("allValue"):
            problems.append(f"{where}: has a custom allValue (Grafana's regex of all values is wanted)")
        if var.get("refresh") != 1:
            problems.append(f"{where}: refresh is {var.get('refresh')!r}, want 1 (on dashboard load)")
        # A variable may use only the variables defined before it (Grafana resolves them in order).
        problems += _query_problems(var.get("query"), defined | MACROS, where)
        defined.add(name)
    return defined, problems


def _grid(uid: str, label: str, panel: Mapping[str, Any]) -> tuple[tuple[int, int, int, int] | None, list[str]]:
    pos = panel.get("gridPos")
    if not isinstance(pos, Mapping):
        return None, [f"{label}: gridPos is missing"]
    values = {k: pos.get(k) for k in ("x", "y", "w", "h")}
    bad = [k for k, val in values.items() if not isinstance(val, int) or isinstance(val, bool)]
    if bad:
        return None, [f"{label}: gridPos {', '.join(bad)} must be integers"]
    x, y, w, h = (int(pos[k]) for k in ("x", "y", "w", "h"))
    problems = []
    if w < 1 or h < 1:
        problems.append(f"{label}: gridPos w and h must be at least 1")
    if x < 0 or y < 0:
        problems.append(f"{label}: gridPos x and y must not be negative")
    if x + w > GRID_COLUMNS:
        problems.append(f"{label}: gridPos x + w = {x + w} is beyond {GRID_COLUMNS} columns")
    return (x, y, w, h), problems


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah


def _targets(label: str, panel: Mapping[str, Any], known: set[str]) -> list[str]:
    targets = panel.get("targets")
    if not isinstance(targets, list) or not targets:
        return [f"{label}: has no targets"]
    problems: list[str] = []
    ref_ids: set[str] = set()
    ptype = panel.get("type")
    for t in targets:
        ref = t.get("refId") if isinstance(t, Mapping) else None
        where = f"{label} target {ref!r}"
        if not isinstance(t, Mapping) or not isinstance(ref, str) or not ref:
            problems.append(f"{label}: a target has no refId")
            continue
        if ref in ref_ids:
            problems.append(f"{where}: refId is used twice")
        ref_ids.add(ref)
        if (ds := _datasource_problem(t.get("datasource"))) is not None:
            problems.append(f"{where}: {ds}")
        if t.get("rawQuery") is not True:
            problems.append(f"{where}: rawQuery must be true (raw InfluxQL)")
        fmt = t.get("resultFormat")
        if fmt not in ("time_series", "table"):
            problems.append(f"{where}: resultFormat is {fmt!r}, want 'time_series' or 'table'")
        elif ptype in TABLE_PANELS and fmt != "table":
            problems.append(f"{where}: a {ptype} panel needs resultFormat 'table'")
        elif ptype in TIME_SERIES_PANELS and fmt != "time_series":
            problems.append(f"{where}: a {ptype} panel needs resultFormat 'time_series'")
        problems += _query_problems(t.get("query"), known, where)
    return problems


def _geomap(label: str, panel: Mapping[str, Any]) -> list[str]:
    layers = (panel.get("options") or {}).get("layers")
    if not isinstance(layers, list) or not layers or not isinstance(layers[0], Mapping):
        return [f"{label}: geomap has no data layer"]
    loc = layers[0].get("location") or {}
    if (loc.get("mode"), loc.get("latitude"), loc.get("longitude")) != ("coords", "lat", "lon"):
        return [f"{label}: geomap layer location must be mode 'coords' with latitude 'lat' and longitude 'lon'"]
    steps = (((panel.get("fieldConfig") or {}).get("defaults") or {}).get("thresholds") or {}).get("steps")
    colours = [(s.get("value"), s.get("color")) for s in steps or [] if isinstance(s, Mapping)]
    if colours != [(None, "green"), (1, "orange"), (2, "red")]:
        return [f"{label}: geomap thresholds must be green (base, 0 ok) / orange 1 (fault) / red 2 (silent)"]
    return []


def _panels(uid: str, d: Mapping[str, Any], known: set[str]) -> list[str]:
    panels = d.get("panels")
    if not isinstance(panels, list) or not panels:
        return [f"{uid}: has no panels"]
    problems: list[str] = []
    seen_ids: set[int] = set()
    placed: list[tuple[int, tuple[int, int, int, int]]] = []
    for n, panel in enumerate(panels):
        if not isinstance(panel, Mapping):
            problems.append(f"{uid} panel #{n}: is not an object")
            continue
        pid = panel.get("id")
        label = f"{uid} panel {pid} {panel.get('title')!r}"
        if not isinstance(pid, int) or isinstance(pid, bool):
            problems.append(f"{label}: id must be an integer")
        elif pid in seen_ids:
            problems.append(f"{label}: id {pid} is used by another panel")
        else:
            seen_ids.add(pid)
        ptype = panel.get("type")
        if ptype not in PANEL_OPTIONS:
            problems.append(f"{label}: unknown panel type {ptype!r}")
        else:
            options = panel.get("options")
            missing = sorted(PANEL_OPTIONS[ptype] - set(options)) if isinstance(options, Mapping) else ["options"]
            if missing:
                problems.append(f"{label}: {ptype} options lack {', '.join(missing)}")
        if not panel.get("title"):
            problems.append(f"{label}: has no title")
        if not panel.get("description"):
            problems.append(f"{label}: has no description")
        for name in referenced_variables(str(panel.get("title", ""))):
            if name not in known:
                problems.append(f"{label}: title uses undefined variable ${name}")
        if (repeat := panel.get("repeat")) is not None and repeat not in known - MACROS:
            problems.append(f"{label}: repeats over undefined variable {repeat!r}")
        if (ds := _datasource_problem(panel.get("datasource"))) is not None:
            problems.append(f"{label}: {ds}")
        box, grid_problems = _grid(uid, label, panel)
        problems += grid_problems
        if box is not None:
            problems += [f"{label}: gridPos overlaps panel {other}" for other, ob in placed if _overlap(box, ob)]
            placed.append((pid if isinstance(pid, int) else n, box))
        problems += _targets(label, panel, known)
        if ptype == "geomap":
            problems += _geomap(label, panel)
    return problems


def _annotations(uid: str, d: Mapping[str, Any], known: set[str]) -> list[str]:
    container = d.get("annotations")
    items = container.get("list") if isinstance(container, Mapping) else None
    if not isinstance(items, list):
        return [f"{uid}: annotations.list is missing"]
    problems: list[str] = []
    for n, a in enumerate(items):
        where = f"{uid} annotation {n} {a.get('name') if isinstance(a, Mapping) else None!r}"
        if not isinstance(a, Mapping) or not a.get("name"):
            problems.append(f"{where}: has no name")
            continue
        if not isinstance(a.get("enable"), bool) or not isinstance(a.get("iconColor"), str):
            problems.append(f"{where}: needs enable (bool) and iconColor")
        if (ds := _datasource_problem(a.get("datasource"))) is not None:
            problems.append(f"{where}: {ds}")
        target = a.get("target")
        if not isinstance(target, Mapping):
            problems.append(f"{where}: has no target")
            continue
        if not target.get("refId") or target.get("rawQuery") is not True:
            problems.append(f"{where}: target needs a refId and rawQuery true")
        if not target.get("textColumn"):
            problems.append(f"{where}: target names no textColumn")
        problems += _query_problems(target.get("query"), known, where)
    return problems


def _first_difference(a: object, b: object, path: str = "") -> str | None:
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        for key in sorted(set(a) | set(b)):
            if key not in b:
                return f"{path}.{key} is dropped"
            if key not in a:
                return f"{path}.{key} is added"
            if (diff := _first_difference(a[key], b[key], f"{path}.{key}")) is not None:
                return diff
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path} has {len(b)} items instead of {len(a)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if (diff := _first_difference(x, y, f"{path}[{i}]")) is not None:
                return diff
        return None
    return None if a == b else f"{path} changes from {a!r} to {b!r}"


def _round_trip(uid: str, d: Mapping[str, Any]) -> list[str]:
    register()
    try:
        again = json.loads(json.dumps(Dashboard.from_json(dict(d)), cls=JSONEncoder))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return [f"{uid}: the SDK cannot read the dashboard: {type(exc).__name__}: {exc}"]
    diff = _first_difference(d, again)
    return [] if diff is None else [f"{uid}: does not round-trip through the SDK: {diff.lstrip('.')}"]


def check_dashboard(d: Mapping[str, Any]) -> list[str]:
    """The problems of one dashboard's JSON (empty when it is valid)."""
    raw_uid = d.get("uid")
    uid = raw_uid if isinstance(raw_uid, str) and raw_uid else "<no uid>"
    problems: list[str] = []
    if uid == "<no uid>":
        problems.append(f"{uid}: dashboard has no uid")
    if not d.get("title"):
        problems.append(f"{uid}: dashboard has no title")
    if d.get("schemaVersion") != SCHEMA_VERSION:
        problems.append(f"{uid}: schemaVersion is {d.get('schemaVersion')!r}, want {SCHEMA_VERSION}")
    defined, var_problems = _variables(uid, d)
    problems += var_problems
    known = defined | MACROS
    problems += _panels(uid, d, known)
    problems += _annotations(uid, d, known)
    if not problems:  # the SDK's reading of broken JSON only repeats what is said above
        problems += _round_trip(uid, d)
    return problems


def check_all(dashboards: Iterable[Mapping[str, Any]]) -> list[str]:
    """The problems of a set of dashboards: each one's, and uids or titles used twice."""
    problems: list[str] = []
    uids: dict[str, int] = {}
    titles: dict[str, str] = {}
    for d in dashboards:
        problems += check_dashboard(d)
        uid, title = str(d.get("uid")), str(d.get("title"))
        uids[uid] = uids.get(uid, 0) + 1
        if uids[uid] == 2:
            problems.append(f"{uid}: uid is used by more than one dashboard")
        if title in titles and titles[title] != uid:
            problems.append(f"{uid}: title {title!r} is also the title of {titles[title]}")
        titles.setdefault(title, uid)
    return problems


def check_committed(json_dir: Path, built: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Differences between the committed dashboards/json/*.json and what the builder produces."""
    problems = []
    for uid, d in built.items():
        path = json_dir / f"{uid}.json"
        if not path.exists():
            problems.append(f"{uid}: {path.name} is not committed (run: smartcity dashboards build)")
        elif path.read_text() != render(dict(d)):
            problems.append(f"{uid}: {path.name} differs from the builder's output (run: smartcity dashboards build)")
    for path in sorted(json_dir.glob("*.json")):
        if path.stem not in built:
            problems.append(f"{path.stem}: {path.name} is not built by any dashboard module (remove it)")
    return problems


def load_dir(json_dir: Path) -> list[dict[str, Any]]:
    """Every dashboard JSON file in a directory, sorted by name."""
    return [json.loads(p.read_text()) for p in sorted(json_dir.glob("*.json"))]
