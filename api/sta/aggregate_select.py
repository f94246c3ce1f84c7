"""The Observations of aggregate Datastreams: ``GROUP BY time(1h|1d)`` over the source series.

A page of N intervals reads a time window of N intervals first (intervals without readings have no
Observation, so a window can hold fewer), then windows four times as long, so a gap of a year costs
a handful of statements, not one per empty interval. Each round sends the statements of every
aggregate Datastream still short of rows in one request. The walk starts at the sources' first
reading (observation_bounds, cached) and ends a day past now, so InfluxDB never computes intervals
outside the data nor opens shards a window does not need.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from api.sta.aggregates import AGGREGATE_FUNCTIONS, AggregateRef
from api.sta.observation_select import conditions, query_all, series_filter, time_literal
from api.sta.query.ast import Node, NotImplementedFeature, properties
from api.sta.query.influxql import influx_ident, to_influxql
from core.influx import InfluxClient

FUNCTIONS = (*AGGREGATE_FUNCTIONS, "count")
GROWTH = 4
MAX_ROUNDS = 16
HORIZON_US = 86_400_000_000  # windows grow 4x a round: 16 rounds span far more than InfluxDB's time range


def aggregate_where(where: Node | None, ref: AggregateRef) -> str | None:
    """The filter over an aggregate's sources: only times can be filtered (the result is an object)."""
    if where is None:
        return None
    if any(p[0] in ("result", "@iot.id", "id") for p in properties(where)):
        raise NotImplementedFeature("$filter on the result or id of aggregate Datastreams' Observations; "
                                    "filter on phenomenonTime")
    return to_influxql(where, ref.field)


def floor(time_us: int, step: int) -> int:
    """The start of the interval holding time_us."""
    return time_us - time_us % step


@dataclass(slots=True)
class Walk:
    """One aggregate Datastream's progress through its windows."""

    ident: str
    ref: AggregateRef
    where: str | None
    descending: bool
    need: int
    lo: int  # next window's bounds (µs, half-open [lo, hi))
    hi: int
    bound: int  # the walk ends past this (first reading for a descending walk, last for ascending)
    span: int
    rows: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    done: bool = False

    def statement(self, alias: str) -> str:
        """The statement of this round's window."""
        r = self.ref
        name = influx_ident(r.field)
        columns = ",".join(f"{fn}({name}) AS {influx_ident(f'{alias}_{fn}')}" for fn in FUNCTIONS)
        time_cond = f"time >= {time_literal(self.lo)} AND time < {time_literal(self.hi)}"
        return (f"SELECT {columns} FROM {influx_ident(r.measurement)}"
                f"{conditions(series_filter(r.tag, r.sources), time_cond, self.where)}"
                f" GROUP BY time({r.interval}) fill(none) ORDER BY time {'DESC' if self.descending else 'ASC'}"
                f" LIMIT {self.need - len(self.rows)}")

    def advance(self) -> None:
        """Move to the next, longer window, or finish."""
        if len(self.rows) >= self.need:
            self.done = True
            return
        self.span *= GROWTH
        if self.descending:
            self.hi = self.lo
            self.lo = self.hi - self.span
            self.done = self.hi <= self.bound
        else:
            self.lo = self.hi
            self.hi = self.lo + self.span
            self.done = self.lo > self.bound


def fetch_aggregates(influx: InfluxClient, items: Sequence[tuple[str, AggregateRef, str | None]], *,
                     descending: bool, need: int, after: int | None = None,
                     exactly: int | Mapping[str, int] | None = None,
                     firsts: Mapping[str, int] | None = None,
                     now_us: int | None = None) -> dict[str, tuple[list[tuple[int, dict[str, Any]]], bool]]:
    """Per aggregate Datastream id: up to ``need`` intervals (start µs, result) in time order after
    ``after`` (exclusive) -- or only the interval starting at ``exactly`` (one time, or one per id) -- and
    whether more may follow.
    ``firsts``: the first reading of each aggregate's sources (observation_bounds); the walk ends a day
    past now (intervals beyond that are not served)."""
    if not items or need <= 0:
        return {}
    walks: list[Walk] = []
    if exactly is not None:
        for ident, ref, where in items:
            at = exactly if isinstance(exactly, int) else exactly.get(ident)
            if at is not None and at % ref.interval_us == 0:
                walks.append(Walk(ident, ref, where, descending, 1, at, at + ref.interval_us, at, ref.interval_us))
    else:
        last = (now_us if now_us is not None else int(time.time() * 1e6)) + HORIZON_US
        for ident, ref, where in items:
            first = (firsts or {}).get(ident)
            if first is None:
                continue  # no readings at all
            step = ref.interval_us
            span = need * step
            if descending:
                hi = floor(last, step) + step
                if after is not None:
                    hi = min(hi, floor(after, step) if after % step == 0 else floor(after, step) + step)
                walks.append(Walk(ident, ref, where, True, need, hi - span, hi, floor(first, step), span))
            else:
                lo = floor(first, step)
                if after is not None:
                    lo = max(lo, floor(after, step) + step)
                walks.append(Walk(ident, ref, where, False, need, lo, lo + span, last, span))
    for _ in range(MAX_ROUNDS):
        active = [w for w in walks if not w.done]
        if not active:
            break
        by_alias = {f"a{i}": w for i, w in enumerate(active)}
        for series in query_all(influx, [w.statement(a) for a, w in by_alias.items()]):
            alias = series.columns[1].rsplit("_", 1)[0] if len(series.columns) > 1 else ""
            walk = by_alias.get(alias)
            if walk is None:
                continue
            for v in series.values:
                walk.rows.append((int(v[0]), dict(zip(FUNCTIONS, v[1:], strict=True))))
        for w in active:
            if exactly is not None:
                w.done = True
            else:
                w.advance()
    return {w.ident: (w.rows[:need], len(w.rows) >= need) for w in walks}
