"""The newest interval of many aggregate Datastreams at once, computed from the raw readings in Python.

For the newest interval of each aggregate (the one holding its sources' newest reading), the raw
readings of those intervals are read in one statement per measurement and cluster of nearby intervals
(``SELECT "f1","f2","device" ... WHERE time >= <first start> AND time < <last end>``), and mean / min /
max / sum / count are computed here. Measured on influxd 1.6 (29 lights, 5 fields, the last day):
4 ms for the raw readings against 38 ms for the same aggregates by ``GROUP BY time(1h),"device"``,
which InfluxDB 1.x computes series by series. A cluster with more than ``RAW_LIMIT`` readings (very
dense sources) is left to InfluxDB's ``GROUP BY time`` instead (aggregate_select).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Any

from api.sta.aggregate_select import fetch_aggregates
from api.sta.aggregates import AggregateRef
from api.sta.observation_select import conditions, query_all, series_filter, time_literal
from api.sta.query.influxql import influx_ident
from core.influx import InfluxClient

RAW_LIMIT = 200_000
CLUSTER_US = 2 * 86_400_000_000  # intervals starting this close are read in one window

Item = tuple[str, AggregateRef, int]  # aggregate id, its series, the start of its newest interval
Interval = tuple[int, dict[str, Any], int]  # start, result, end


def _summary(values: list[float]) -> dict[str, Any]:
    total = sum(values)
    return {"mean": total / len(values), "min": min(values), "max": max(values), "sum": total, "count": len(values)}


def _clusters(items: Sequence[Item]) -> list[list[Item]]:
    by_measurement: dict[tuple[str, str], list[Item]] = {}
    for item in items:
        by_measurement.setdefault((item[1].measurement, item[1].tag), []).append(item)
    out: list[list[Item]] = []
    for members in by_measurement.values():
        members.sort(key=lambda x: x[2])
        start = len(out)
        for m in members:
            if len(out) > start and m[2] - out[-1][0][2] <= CLUSTER_US:
                out[-1].append(m)
            else:
                out.append([m])
    return out


def latest_intervals(influx: InfluxClient, items: Sequence[Item]) -> dict[str, Interval]:
    """Per aggregate id: its newest interval (start, result, end), when it has readings."""
    clusters = _clusters(items)
    texts = []
    layout: list[list[str]] = []
    for n, cluster in enumerate(clusters):
        ref0 = cluster[0][1]
        fields = sorted({r.field for _, r, _ in cluster})
        values = sorted({s for _, r, _ in cluster for s in r.sources})
        lo, hi = cluster[0][2], max(start + r.interval_us for _, r, start in cluster)
        columns = ",".join(f"{influx_ident(f)} AS {influx_ident(f'r{n}_{i}')}" for i, f in enumerate(fields))
        cond = f"time >= {time_literal(lo)} AND time < {time_literal(hi)}"
        texts.append(f"SELECT {columns},{influx_ident(ref0.tag)} FROM {influx_ident(ref0.measurement)}"
                     f"{conditions(series_filter(ref0.tag, values), cond)} LIMIT {RAW_LIMIT + 1}")
        layout.append(fields)
    # (cluster, tag value, field) -> sorted times and their values
    points: dict[tuple[int, str, str], tuple[list[int], list[float]]] = {}
    counts = [0] * len(clusters)
    for s in query_all(influx, texts):
        if len(s.columns) < 3 or not s.columns[1].startswith("r"):
            continue
        n = int(s.columns[1][1:].split("_", 1)[0])
        fields = layout[n]
        counts[n] += len(s.values)
        for row in s.values:
            t, tag = int(row[0]), str(row[-1])
            for i, field in enumerate(fields):
                v = row[1 + i]
                if v is not None and not isinstance(v, bool):
                    times, vals = points.setdefault((n, tag, field), ([], []))
                    times.append(t)
                    vals.append(v)
    out: dict[str, Interval] = {}
    dense: list[Item] = []
    for n, cluster in enumerate(clusters):
        if counts[n] > RAW_LIMIT:
            dense.extend(cluster)
            continue
        for ident, ref, start in cluster:
            end = start + ref.interval_us
            found: list[float] = []
            for src in ref.sources:
                times, vals = points.get((n, src, ref.field), ([], []))
                found.extend(vals[bisect.bisect_left(times, start):bisect.bisect_left(times, end)])
            if found:
                out[ident] = (start, _summary(found), end)
    if dense:
        starts = {ident: start for ident, _, start in dense}
        for ident, (rows, _) in fetch_aggregates(influx, [(i, r, None) for i, r, _ in dense], descending=True,
                                                  need=1, exactly=starts).items():
            ref = next(r for i, r, _ in dense if i == ident)
            if rows:
                out[ident] = (rows[0][0], rows[0][1], rows[0][0] + ref.interval_us)
    return out
