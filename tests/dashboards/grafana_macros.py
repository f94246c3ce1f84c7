"""What Grafana does to an InfluxQL query before InfluxDB sees it, so the tests run the queries as Grafana would.

Facts taken from Grafana's source (grafana/grafana, the InfluxDB data source in its backend mode, the default
since Grafana 10; nothing copied):
- Template variables are replaced in the browser (TemplateSrv) before the query goes to the backend. A
  reference is ``$var``, ``${var}``, ``${var:format}``, ``[[var]]`` or ``[[var:format]]``; a name that is no
  variable (``$timeFilter``, ``$__interval``) is left as it is.
- The InfluxDB data source formats a value itself (``interpolateQueryExpr``): a single string that parses
  as a number (JavaScript ``parseFloat``) goes in raw; for a multi-value variable a string is regex-escaped
  and an array of values becomes ``(a|b|c)`` with each value escaped (``escapeRegex``: ``\\ ^ $ * + ? . ( ) |
  [ ] { } /``). A multi-value variable's current value is always an array, so one selected value gives
  ``(a)``. All (no custom allValue) is the array of every option.
- Then the backend (pkg/tsdb/influxdb/models/query.go) replaces ``$timeFilter`` with
  ``time >= <from>ms and time <= <to>ms``, ``$interval`` and ``$__interval`` with the interval formatted by
  gtime.FormatInterval, and ``$__interval_ms`` with its milliseconds.
- The interval comes from the browser (PanelQueryRunner): rangeutil.calculateInterval(range, maxDataPoints,
  lower limit), i.e. roundInterval((to - from) / maxDataPoints), raised to the panel's ``interval`` (min
  interval) or the data source's timeInterval; maxDataPoints is the panel's, else its width in pixels.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

# rangeutil.roundInterval: (upper bound exclusive, rounded interval), both in ms.
_ROUND_STEPS: tuple[tuple[int, int], ...] = (
    (10, 1), (15, 10), (35, 20), (75, 50), (150, 100), (350, 200), (750, 500), (1500, 1000),
    (3500, 2000), (7500, 5000), (12500, 10000), (17500, 15000), (25000, 20000), (45000, 30000),
    (90000, 60000), (210000, 120000), (450000, 300000), (750000, 600000), (1050000, 900000),
    (1500000, 1200000), (2700000, 1800000), (5400000, 3600000), (9000000, 7200000),
    (16200000, 10800000), (32400000, 21600000), (86400000, 43200000), (604800000, 86400000),
    (1814400000, 604800000), (3628800000, 2592000000),
)
_ONE_YEAR_MS = 31536000000

# A panel's width in pixels when it sets no maxDataPoints: a 24-column grid on a 1920 px screen.
PIXELS_PER_GRID_COLUMN = 80

_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000,
            "M": 2_592_000_000, "y": 31_536_000_000}
_INTERVAL = re.compile(r"^(-?\d+(?:\.\d+)?)(ms|[Mwdhmsy])")

# TemplateSrv's variable reference: $var | [[var]] / [[var:fmt]] | ${var} / ${var.path} / ${var:fmt}.
VARIABLE_REFERENCE = re.compile(
    r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^}]+))?(?::([^}]+))?\}")

# JavaScript parseFloat accepts any string that starts with a number ("12abc" -> 12).
_JS_FLOAT_PREFIX = re.compile(r"^\s*[+-]?(Infinity|\d+\.?\d*(e[+-]?\d+)?|\.\d+(e[+-]?\d+)?)", re.IGNORECASE)
_REGEX_SPECIAL = re.compile(r"[\\^$*+?.()|\[\]{}/]")


def round_interval(interval_ms: float) -> int:
    """Grafana's rangeutil.roundInterval: a round interval not above the raw one (ms)."""
    for bound, rounded in _ROUND_STEPS:
        if interval_ms < bound:
            return rounded
    return _ONE_YEAR_MS


def interval_to_ms(text: str) -> int:
    """A Grafana interval string ('10s', '1m', '>1m', '30' = seconds) in ms (rangeutil.intervalToMs)."""
    text = text.strip().lstrip("<>")
    if re.fullmatch(r"\d+", text):
        return int(text) * 1000
    m = _INTERVAL.match(text)
    if not m:
        raise ValueError(f"not a Grafana interval: {text!r}")
    return int(int(float(m.group(1))) * _UNIT_MS[m.group(2)])


def format_interval(interval_ms: int) -> str:
    """gtime.FormatInterval: the largest unit that fits, truncated ('90s' -> '1m', 1 day -> '1d')."""
    for unit, ms in (("y", _UNIT_MS["y"]), ("d", _UNIT_MS["d"]), ("h", _UNIT_MS["h"]), ("m", _UNIT_MS["m"]),
                     ("s", _UNIT_MS["s"]), ("ms", 1)):
        if interval_ms >= ms:
            return f"{interval_ms // ms}{unit}"
    return "1ms"


def max_data_points(panel: dict[str, Any]) -> int:
    """The panel's maxDataPoints, else its width in pixels (what PanelQueryRunner passes as resolution)."""
    mdp = panel.get("maxDataPoints")
    if isinstance(mdp, int | float) and mdp > 0:
        return int(mdp)
    width = int(panel.get("gridPos", {}).get("w", 12))
    return max(1, width * PIXELS_PER_GRID_COLUMN)


def calculate_interval_ms(from_ms: int, to_ms: int, resolution: int, low_limit: str | None = None) -> int:
    """rangeutil.calculateInterval: the rounded range / resolution, at least the low limit (default 1 ms)."""
    low = interval_to_ms(low_limit) if low_limit else 1
    return max(round_interval((to_ms - from_ms) / resolution), low)


def panel_interval_ms(panel: dict[str, Any], from_ms: int, to_ms: int, datasource_interval: str | None = None) -> int:
    """The $__interval of one panel: its min interval ('interval') or the data source's as the low limit."""
    low = panel.get("interval") or datasource_interval
    return calculate_interval_ms(from_ms, to_ms, max_data_points(panel), str(low) if low else None)


def time_filter(from_ms: int, to_ms: int) -> str:
    """The backend's $timeFilter for an absolute range."""
    return f"time >= {from_ms}ms and time <= {to_ms}ms"


def escape_regex(value: str) -> str:
    """@grafana/data escapeRegex: a backslash before each regex special character and '/'."""
    return _REGEX_SPECIAL.sub(lambda m: "\\" + m.group(0), value)


def _js_parses_as_number(value: str) -> bool:
    return bool(_JS_FLOAT_PREFIX.match(value))


@dataclass(frozen=True, slots=True)
class Variable:
    """A dashboard template variable of type query, as the tests need it."""

    name: str
    query: str
    multi: bool
    include_all: bool
    all_value: str | None = None
    regex: str = ""
    sort: int = 0

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Variable:
        """One entry of templating.list (the query is a string or {"query": ...})."""
        query = raw.get("query", "")
        if isinstance(query, dict):
            query = query.get("query", "")
        return cls(str(raw["name"]), str(query), bool(raw.get("multi")), bool(raw.get("includeAll")),
                   raw.get("allValue") or None, str(raw.get("regex") or ""), int(raw.get("sort") or 0))

    def references(self) -> set[str]:
        """The names of the variables (and macros) its own query refers to."""
        return referenced_names(self.query)


@dataclass(frozen=True, slots=True)
class Selection:
    """A variable's current value: the chosen values, or All (every option)."""

    values: tuple[str, ...]
    is_all: bool = False
    label: str = field(default="", compare=False)

    @classmethod
    def single(cls, value: str) -> Selection:
        """One chosen value."""
        return cls((value,), False, value)

    @classmethod
    def all(cls, options: Sequence[str]) -> Selection:
        """All, which Grafana expands to every option when there is no custom allValue."""
        return cls(tuple(options), True, "All")


def referenced_names(text: str) -> set[str]:
    """Every name referenced as $name, ${name...} or [[name...]] in text."""
    return {m.group(1) or m.group(2) or m.group(4) for m in VARIABLE_REFERENCE.finditer(text)}


def influx_format(selection: Selection, variable: Variable) -> str:
    """The InfluxDB data source's interpolateQueryExpr for the variables these dashboards use."""
    values = list(selection.values)
    if variable.multi or selection.is_all:
        # A multi-value variable's value is an array (also with one value selected); All is one too.
        return "(" + "|".join(escape_regex(v) for v in values) + ")"
    value = values[0]
    if _js_parses_as_number(value):
        return value
    # A single-value variable is escaped only inside a /regex/; the dashboards use no such variable,
    # so one is an error of the dashboard the test should name rather than a case to emulate.
    raise ValueError(f"variable {variable.name!r} is neither multi-value nor All: not supported by the tests")


def explicit_format(selection: Selection, fmt: str) -> str:
    """A ${var:format} of TemplateSrv's format registry (the ones a query of these dashboards may use)."""
    values = list(selection.values)
    if fmt == "regex":
        escaped = [escape_regex(v) for v in values]
        return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"
    if fmt == "pipe":
        return "|".join(values)
    if fmt in ("csv", "raw"):
        return ",".join(values)
    if fmt == "singlequote":
        return ",".join("'" + v.replace("'", "\\'") + "'" for v in values)
    if fmt == "doublequote":
        return ",".join('"' + v.replace('"', '\\"') + '"' for v in values)
    raise ValueError(f"variable format {fmt!r} not supported by the tests")


def interpolate_variables(text: str, variables: dict[str, Variable], selections: dict[str, Selection],
                          formatter: Callable[[Selection, Variable], str] = influx_format) -> str:
    """TemplateSrv.replace: every reference of a known variable replaced, anything else left as it is."""

    def replace(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(4)
        fmt = m.group(3) or m.group(6)
        if name not in variables:
            return m.group(0)
        if name not in selections:
            raise KeyError(f"variable {name!r} referenced but no value selected")
        selection, variable = selections[name], variables[name]
        if selection.is_all and variable.all_value:
            return variable.all_value  # a custom all value goes in unformatted
        return explicit_format(selection, fmt) if fmt else formatter(selection, variable)

    return VARIABLE_REFERENCE.sub(replace, text)


def interpolate_backend(text: str, from_ms: int, to_ms: int, interval_ms: int) -> str:
    """The backend's own macros, in its order ($timeFilter, $interval, $__interval_ms, $__interval)."""
    interval_text = format_interval(max(interval_ms, 1))
    text = text.replace("$timeFilter", time_filter(from_ms, to_ms))
    text = text.replace("$interval", interval_text)
    text = text.replace("$__interval_ms", str(interval_ms))
    return text.replace("$__interval", interval_text)


def interpolate(query: str, variables: dict[str, Variable], selections: dict[str, Selection],  # noqa: PLR0917
                from_ms: int, to_ms: int, interval_ms: int) -> str:
    """A raw InfluxQL target as InfluxDB receives it from Grafana."""
    return interpolate_backend(interpolate_variables(query, variables, selections), from_ms, to_ms, interval_ms)


def variables_of(dashboard: dict[str, Any]) -> list[Variable]:
    """The dashboard's query variables, in the order Grafana resolves them (templating.list order)."""
    return [Variable.from_json(v) for v in dashboard.get("templating", {}).get("list", [])
            if v.get("type") == "query"]


def option_values(series_values: Sequence[Sequence[Any]], columns: Sequence[str], variable: Variable) -> list[str]:
    """A variable's options from its query's result: the 'value' column of SHOW TAG VALUES, else the first
    column that is not time; filtered by the variable's regex and sorted as its sort option says."""
    col = columns.index("value") if "value" in columns else next(i for i, c in enumerate(columns) if c != "time")
    seen: dict[str, None] = {}
    for row in series_values:
        if row[col] is not None:
            seen[str(row[col])] = None
    options = list(seen)
    if variable.regex:
        pattern = re.compile(variable.regex.strip("/"))
        options = [o for o in options if pattern.search(o)]
    if variable.sort in (1, 2):  # alphabetical ascending / descending
        options.sort(reverse=variable.sort == 2)
    elif variable.sort in (3, 4):  # numerical
        options.sort(key=lambda o: float(re.sub(r"[^\d.]", "", o) or 0), reverse=variable.sort == 4)
    elif variable.sort in (5, 6):  # alphabetical, case-insensitive
        options.sort(key=str.lower, reverse=variable.sort == 6)
    return options


VariableQuery = Callable[[str], list[tuple[list[str], list[list[Any]]]]]


def selection_combinations(variables: Sequence[Variable], run_query: VariableQuery, from_ms: int, to_ms: int,
                           ) -> list[dict[str, Selection]]:
    """Every combination of values a user can pick: each variable's options come from running its own query
    with the values of the variables before it (a chained wijk gets the wijken of the chosen gemeente),
    and each option is picked alone and as All. ``run_query`` takes InfluxQL and returns (columns, values)
    per series. A variable without options yields no combination: Grafana would show 'None'."""
    by_name = {v.name: v for v in variables}
    combos: list[dict[str, Selection]] = [{}]
    for variable in variables:
        grown: list[dict[str, Selection]] = []
        for chosen in combos:
            query = interpolate(variable.query, by_name, chosen, from_ms, to_ms, 1)
            options: list[str] = []
            for columns, values in run_query(query):
                options += [o for o in option_values(values, columns, variable) if o not in options]
            picks = [Selection.single(o) for o in options]
            if variable.include_all and options:
                picks.append(Selection.all(options))
            grown += [{**chosen, variable.name: pick} for pick in picks]
        combos = grown
    return combos


def describe(selections: dict[str, Selection]) -> str:
    """A short label of a combination for messages: gemeente=GM0626 wijk=All."""
    return " ".join(f"{k}={s.label}" for k, s in selections.items()) or "(no variables)"
