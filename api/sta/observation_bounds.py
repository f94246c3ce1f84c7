"""When each series begins: the lower end of the time windows that pages read in.

InfluxDB 1.x opens every shard a query's time range touches, for every series it selects, so a query
without a lower time bound costs as much as the series' whole history (a year of weekly shards: 50x
the cost of one shard). Pages therefore read bounded windows, starting where the data starts.

What is kept per series is a *lower bound* of its first point: the first point itself once it is older
than the ingest's lateness (plus the margin: nothing can be written before it then), else that closed
boundary (a young series can still get points back to it, never before), and the same boundary for a
series without points. It is asked once per series (``first()``, grouped by the tag, one request for
all) and cached in the count cache's file; a DELETE of a first point only leaves the bound a little
early, which costs nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from api.sta.count_cache import CountCache
from api.sta.model import SeriesRef
from api.sta.observation_select import Group, conditions, group_series, query_all, series_filter, series_key
from api.sta.query.ast import Binary, Node, NotImplementedFeature, Property, QueryError, properties
from api.sta.query.evaluate import evaluate
from api.sta.query.influxql import influx_ident
from core.influx import InfluxClient


def first_times(influx: InfluxClient, cache: CountCache, series: Sequence[tuple[str, SeriesRef]],
                closed_before: int) -> dict[str, int]:
    """Per series key: a time (µs) at or before its first point (see the module doc)."""
    keys = {series_key(ref): ref for _, ref in series}
    found = cache.first_times(keys)
    missing = [(k, ref) for k, ref in keys.items() if k not in found]
    if not missing:
        return found
    texts: list[str] = []
    by_alias: dict[str, Group] = {}
    for g in group_series([(k, ref) for k, ref in missing]):
        for chunk in g.chunks():
            alias = f"f{len(texts)}"
            by_alias[alias] = g
            texts.append(f"SELECT first({influx_ident(g.field)}) AS {influx_ident(alias)} FROM "
                         f"{influx_ident(g.measurement)}{conditions(series_filter(g.tag, chunk))} "
                         f"GROUP BY {influx_ident(g.tag)}")
    fresh: dict[str, int] = {}
    for s in query_all(influx, texts):
        got = by_alias.get(s.columns[1]) if len(s.columns) == 2 else None
        if got is None or not s.values:
            continue
        for key in got.members.get(s.tags.get(got.tag, ""), ()):
            fresh[key] = int(s.values[0][0])
    bounds = {k: min(fresh.get(k, closed_before), closed_before) for k, _ in missing}
    cache.record_first_times(bounds)
    return {**found, **bounds}


TIME_PATHS = (("phenomenonTime",), ("resultTime",))
_LOWER = {"ge", "gt"}
_UPPER = {"le", "lt"}
_FLIP = {"ge": "le", "gt": "lt", "le": "ge", "lt": "gt"}
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def time_bounds(where: Node | None) -> tuple[int | None, int | None]:
    """(lowest, highest) time in µs that a filter's top-level ``and`` conditions on phenomenonTime or
    resultTime allow (None: unbounded), so a page starts its windows there rather than at the data's
    first point; the filter itself still decides which rows match."""
    lower: int | None = None
    upper: int | None = None
    stack = [where] if where is not None else []
    while stack:
        node = stack.pop()
        if isinstance(node, Binary) and node.op == "and":
            stack += [node.left, node.right]
            continue
        if not isinstance(node, Binary) or node.op not in _FLIP:
            continue
        op: str = node.op
        prop, other = node.left, node.right
        if not isinstance(prop, Property):
            op, prop, other = _FLIP[op], node.right, node.left
        if not isinstance(prop, Property) or prop.path not in TIME_PATHS or properties(other):
            continue
        try:
            value = evaluate(other, _no_property)
        except (QueryError, NotImplementedFeature):
            continue
        if not isinstance(value, dt.datetime):
            continue
        delta = (value if value.tzinfo else value.replace(tzinfo=dt.UTC)) - _EPOCH
        us = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
        if op in _LOWER:
            lower = us if lower is None else max(lower, us)
        else:
            upper = us if upper is None else min(upper, us)
    return lower, upper


def _no_property(path: tuple[str, ...]) -> object:  # pragma: no cover - only constants are evaluated
    raise QueryError("not a constant")
