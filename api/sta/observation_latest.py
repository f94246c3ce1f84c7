"""The newest Observation of many Datastreams at once (``$expand=Observations($top=1;$orderby=phenomenonTime
desc)`` over a page of Things or Datastreams).

One ``last()`` statement per (measurement, field) group and chunk, grouped by the tag, all in one request,
over a time window: the last day first, then windows 8x longer back in time, asked only for the series
still without a value, and at the end the rest of time. ``last()`` with no time bound opens every shard
of every series (on influxd 1.6, 3.6 s for 290 lights x 6 fields over a year of weekly shards, against
0.2 s for the last week), and a live series has its newest point in the last day.

An aggregate Datastream's newest Observation is the interval holding the newest reading of its sources:
those readings are found with the plain series above (same request), then every aggregate's interval is
computed from the raw readings of those intervals, read in one more request (aggregate_latest).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from api.sta.aggregate_latest import latest_intervals
from api.sta.aggregate_select import floor
from api.sta.aggregates import AggregateRef
from api.sta.model import SeriesRef
from api.sta.observation_select import Group, conditions, group_series, query_all, series_filter, time_literal
from api.sta.query.influxql import influx_ident
from core.influx import InfluxClient

DAY_US = 86_400_000_000
FIRST_WINDOW_US = DAY_US
GROWTH = 8
WINDOWS = 4  # 1 day, 8 days, 64 days, 512 days; then everything older


def _windows(now_us: int) -> list[tuple[int | None, int | None]]:
    out: list[tuple[int | None, int | None]] = []
    hi: int | None = None
    span = FIRST_WINDOW_US
    lo = now_us - span
    for _ in range(WINDOWS):
        out.append((lo, hi))
        hi, span = lo, span * GROWTH
        lo = hi - span
    out.append((None, hi))
    return out


def last_values(influx: InfluxClient, series: Sequence[tuple[str, SeriesRef]],
                now_us: int | None = None) -> dict[str, tuple[int, Any]]:
    """(time µs, value) of the newest point of each plain series id that has one."""
    groups = group_series(series)
    found: dict[str, tuple[int, Any]] = {}
    missing = {g.measurement + "\0" + g.field + "\0" + g.tag: set(g.members) for g in groups}
    for lo, hi in _windows(now_us if now_us is not None else int(time.time() * 1e6)):
        texts: list[str] = []
        by_alias: dict[str, Group] = {}
        for g in groups:
            want = missing[g.measurement + "\0" + g.field + "\0" + g.tag]
            for chunk in g.chunks(want):
                alias = f"s{len(texts)}"
                by_alias[alias] = g
                cond = " AND ".join(c for c in (None if lo is None else f"time >= {time_literal(lo)}",
                                                None if hi is None else f"time < {time_literal(hi)}") if c)
                texts.append(f"SELECT last({influx_ident(g.field)}) AS {influx_ident(alias)} "
                             f"FROM {influx_ident(g.measurement)}{conditions(series_filter(g.tag, chunk), cond)} "
                             f"GROUP BY {influx_ident(g.tag)}")
        if not texts:
            break
        for s in query_all(influx, texts):
            got = by_alias.get(s.columns[1]) if len(s.columns) == 2 else None
            if got is None:
                continue
            value = s.tags.get(got.tag, "")
            for v in s.values:
                for d in got.members.get(value, ()):
                    found[d] = (int(v[0]), v[1])
                missing[got.measurement + "\0" + got.field + "\0" + got.tag].discard(value)
    return found


def latest(influx: InfluxClient, series: Sequence[tuple[str, SeriesRef]]) -> dict[str, tuple[int, Any, int | None]]:
    """Per Datastream id: (time µs, result, interval end µs for aggregates) of its newest Observation."""
    plain = [(i, r) for i, r in series if not isinstance(r, AggregateRef)]
    aggs = [(i, r) for i, r in series if isinstance(r, AggregateRef)]
    # Each raw series once, however many Datastreams and aggregates read it (a wijk's aggregates read
    # every light of the wijk that its measured Datastreams read too).
    keyed: dict[tuple[str, str, str, str], str] = {}
    for _, r in plain:
        keyed.setdefault((r.measurement, r.field, r.tag, r.value), f"\0{len(keyed)}")
    for _, r in aggs:
        for src in r.sources:
            keyed.setdefault((r.measurement, r.field, r.tag, src), f"\0{len(keyed)}")
    found = last_values(influx, [(k, SeriesRef(*ref)) for ref, k in keyed.items()])
    out: dict[str, tuple[int, Any, int | None]] = {}
    for ident, r in plain:
        got = found.get(keyed[(r.measurement, r.field, r.tag, r.value)])
        if got is not None:
            out[ident] = (got[0], got[1], None)
    starts: dict[str, int] = {}
    for ident, ref in aggs:
        times = [got[0] for src in ref.sources
                 if (got := found.get(keyed[(ref.measurement, ref.field, ref.tag, src)])) is not None]
        if times:
            starts[ident] = floor(max(times), ref.interval_us)
    refs = dict(aggs)
    for ident, interval in latest_intervals(influx, [(i, refs[i], start) for i, start in starts.items()]).items():
        out[ident] = interval
    return out
