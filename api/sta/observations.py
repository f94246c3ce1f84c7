"""Observations in InfluxDB: keyset-paged pages over one or many Datastreams, counts, points, latest values.

A page over many Datastreams costs a request per time window whatever their number: one statement per
(measurement, field) group and chunk of series (observation_select), merged in Python into one order
(time, then Datastream id; observation_order). Paging is by keyset (``$skiptoken`` names the last
row's sort key, observation_token): the next page asks for ``time > last``, so a page deep into a
long series costs what the first page costs; windows and exact ties are observation_time_page's.
``$skip`` is done by reading ``skip + top`` rows for skips up to ``INLINE_SKIP``, and by walking keyset
steps of ``INLINE_SKIP`` rows up to ``MAX_SKIP`` (deep positions are what ``@iot.nextLink`` is for).
Aggregate Datastreams (aggregates, aggregate_select) page the same way, merged into the same order.
Counts are observation_count's (a per-day cache of closed days), latest values observation_latest's,
deletes observation_delete's.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from api.sta import observation_count, observation_latest, observation_token
from api.sta.aggregate_select import aggregate_where, fetch_aggregates
from api.sta.aggregates import AggregateRef
from api.sta.count_cache import CountCache
from api.sta.model import SeriesRef
from api.sta.observation_bounds import first_times, time_bounds
from api.sta.observation_count import closed_until
from api.sta.observation_delete import delete_point
from api.sta.observation_order import Order, Ranks, parse_order, result_sort_value
from api.sta.observation_select import (
    Group,
    Select,
    group_series,
    run_selects,
    series_key,
    time_literal,
)
from api.sta.observation_time_page import Walk, time_rows
from api.sta.observation_token import Position
from api.sta.query.ast import Node, NotImplementedFeature, OrderItem, QueryError
from core.influx import InfluxClient

INLINE_SKIP = 10_000
MAX_SKIP = 1_000_000
MAX_RESULT_SORT = 50_000  # $orderby=result sorts in Python: only over this many Observations
ID_BATCH = 8  # Datastreams read per request when paging in @iot.id order

Series = Sequence[tuple[str, SeriesRef]]


@dataclass(frozen=True, slots=True)
class ObservationRow:
    """One Observation: its Datastream, time (µs) and result; ``end_us`` ends an aggregate's interval."""

    datastream: str
    time_us: int
    result: Any
    end_us: int | None = None


@dataclass(frozen=True, slots=True)
class ObservationPage:
    """A page of Observations and the token of the next page (None: this is the last)."""

    rows: list[ObservationRow]
    next_token: str | None


def _split(series: Series, where: Node | None = None) -> tuple[list[Group], list[tuple[str, AggregateRef]]]:
    plain = [(i, r) for i, r in series if not isinstance(r, AggregateRef)]
    aggs = [(i, r) for i, r in series if isinstance(r, AggregateRef)]
    return group_series(plain, where), sorted(set(aggs), key=lambda x: x[0])


def _agg_row(ident: str, ref: AggregateRef, start: int, result: dict[str, Any]) -> ObservationRow:
    return ObservationRow(ident, start, result, start + ref.interval_us)


@dataclass(frozen=True, slots=True)
class _Query:
    series: Series
    where: Node | None  # the part of the filter InfluxDB evaluates
    order: Order
    ranks: Ranks


class ObservationStore:
    """Reads (and deletes) Observations of Datastreams given by their SeriesRef."""

    def __init__(self, influx: InfluxClient, state_dir: Path, writer: InfluxClient | None = None) -> None:
        self.influx = influx
        self.writer = writer or influx  # deletes: the operators' writing account (api/settings.py influx_writer)
        self.cache = CountCache(Path(state_dir) / "observation_counts.sqlite")

    def close(self) -> None:
        """Close the count cache."""
        self.cache.close()

    # --- pages ---

    def page(self, series: Series, where: Node | None, orderby: tuple[OrderItem, ...], top: int,  # noqa: PLR0917
             skip: int, token: str | None) -> ObservationPage:  # (the contract's positional signature)
        """A page of the Observations of the given Datastreams (see the module doc)."""
        if top < 0 or skip < 0:
            raise QueryError("$top and $skip must not be negative")
        if skip > MAX_SKIP:
            raise NotImplementedFeature(f"$skip over {MAX_SKIP} on Observations; follow @iot.nextLink, "
                                        "which stays fast at any depth")
        order = parse_order(orderby)
        after = observation_token.decode(token, order.code) if token else None
        if not series or top == 0:
            return ObservationPage([], None)
        # A filter InfluxQL cannot express raises NotImplementedFeature in the statements' translation:
        # the routes evaluate such filters themselves (observation_scan) and never pass them here.
        q = _Query(series, where, order, Ranks([i for i, _ in series]))
        while skip > INLINE_SKIP:  # deep $skip: keyset steps, never one huge read
            step = self._read(q, INLINE_SKIP, after)
            if len(step) < INLINE_SKIP:
                return ObservationPage([], None)
            after = self._position(order, step[-1])
            skip -= INLINE_SKIP
        rows = self._read(q, skip + top + 1, after)
        more = len(rows) > skip + top
        rows = rows[skip:skip + top]
        next_token = observation_token.encode(self._position(order, rows[-1])) if more and rows else None
        return ObservationPage(rows, next_token)

    def _agg_firsts(self, aggs: Sequence[tuple[str, AggregateRef]]) -> dict[str, int]:
        """The first reading of each aggregate's sources."""
        refs = [SeriesRef(r.measurement, r.field, r.tag, src) for _, r in aggs for src in r.sources]
        if not refs:
            return {}
        known = first_times(self.influx, self.cache, [(series_key(ref), ref) for ref in refs],
                            closed_until(time.time()))
        out = {}
        for ident, r in aggs:
            times = [known[k] for src in r.sources if (k := series_key(SeriesRef(r.measurement, r.field, r.tag, src)))
                     in known]
            if times:
                out[ident] = min(times)
        return out

    @staticmethod
    def _position(order: Order, row: ObservationRow) -> Position:
        return Position(order.code, row.time_us, row.datastream, row.result if order.mode == "r" else None)

    def _read(self, q: _Query, need: int, after: Position | None) -> list[ObservationRow]:
        if q.order.mode == "i":
            return self._id_rows(q, need, after)
        if q.order.mode == "r":
            return self._result_rows(q, need, after)
        return self._time_rows(q, need, after)

    def _time_rows(self, q: _Query, need: int, after: Position | None) -> list[ObservationRow]:
        series, where, order, ranks = q.series, q.where, q.order, q.ranks
        desc = order.desc
        sign = -1 if desc else 1
        tie_sign = -1 if order.tie_desc else 1

        def key(t: int, ds: str) -> tuple[float, float]:
            return (sign * t, tie_sign * ranks(ds))

        low = key(after.time_us, after.datastream) if after else None
        groups, aggs = _split(series, where)
        rows: list[ObservationRow] = []
        plain = [(i, r) for i, r in series if not isinstance(r, AggregateRef)]
        first = min(first_times(self.influx, self.cache, plain, closed_until(time.time())).values(), default=None)
        if groups and first is not None:
            lower, upper = time_bounds(where)
            walk = Walk(desc, key, after.time_us if after else None, low, first, first, int(time.time() * 1e6),
                        lower, upper)
            rows = [ObservationRow(d, t, v) for d, t, v in time_rows(self.influx, groups, where, walk, need)]
        # Aggregates: each its own exact prefix of `need` rows; merged with the plain prefix, the first
        # `need` rows of the union are exact.
        agg_items = [(i, r, aggregate_where(where, r)) for i, r in aggs]
        refs = {i: r for i, r, _ in agg_items}
        for ident, (found, _) in fetch_aggregates(self.influx, agg_items, descending=desc, need=need,
                                                  after=after.time_us if after else None,
                                                  firsts=self._agg_firsts(aggs)).items():
            rows.extend(_agg_row(ident, refs[ident], t, v) for t, v in found)
        if after is not None and low is not None:
            tied_aggs = [x for x in agg_items if key(after.time_us, x[0]) > low]
            for ident, (found, _) in fetch_aggregates(self.influx, tied_aggs, descending=desc, need=1,
                                                      exactly=after.time_us).items():
                rows.extend(_agg_row(ident, refs[ident], t, v) for t, v in found)
        rows = [r for r in rows if low is None or key(r.time_us, r.datastream) > low]
        rows.sort(key=lambda r: key(r.time_us, r.datastream))
        return rows[:need]

    def _id_rows(self, q: _Query, need: int, after: Position | None) -> list[ObservationRow]:
        where, order, ranks = q.where, q.order, q.ranks
        refs = dict(q.series)
        ordered = list(reversed(ranks.sorted)) if order.desc else ranks.sorted
        if after is not None:
            r0 = ranks(after.datastream)
            ordered = [d for d in ordered if (ranks(d) <= r0 if order.desc else ranks(d) >= r0)]
        rows: list[ObservationRow] = []
        for start in range(0, len(ordered), ID_BATCH):
            remaining = need - len(rows)
            if remaining <= 0:
                break
            batch = ordered[start:start + ID_BATCH]
            got: dict[str, list[ObservationRow]] = {d: [] for d in batch}
            selects: list[Select] = []
            for ident in batch:
                ref = refs[ident]
                cond = None
                if after is not None and ident == after.datastream:
                    cond = f"time {'<' if order.desc else '>'} {time_literal(after.time_us)}"
                if isinstance(ref, AggregateRef):
                    found = fetch_aggregates(self.influx, [(ident, ref, aggregate_where(where, ref))],
                                             descending=order.desc, need=remaining,
                                             after=after.time_us if cond and after else None,
                                             firsts=self._agg_firsts([(ident, ref)]))
                    got[ident] = [_agg_row(ident, ref, t, v) for t, v in found.get(ident, ([], False))[0]]
                    continue
                g = Group(ref.measurement, ref.field, ref.tag, {ref.value: [ident]}, ident)
                selects.append(Select(g, (ref.value,), f"s{len(selects)}", g.where(where), cond,
                                      order.desc, remaining))
            for fetched in run_selects(self.influx, selects):
                ident = fetched.select.group.members[fetched.select.values[0]][0]
                got[ident] = [ObservationRow(ident, t, v) for t, v, _ in fetched.rows]
            for ident in batch:
                rows.extend(got[ident])
        return rows[:need]

    def _result_rows(self, q: _Query, need: int, after: Position | None) -> list[ObservationRow]:
        series, where, order, ranks = q.series, q.where, q.order, q.ranks
        groups, aggs = _split(series, where)
        if aggs:
            raise NotImplementedFeature("$orderby=result over aggregate Datastreams (their result is an object)")
        total = self.count(series, where)
        if total > MAX_RESULT_SORT:
            raise NotImplementedFeature(f"$orderby=result over more than {MAX_RESULT_SORT} Observations; "
                                        "narrow the $filter (e.g. on phenomenonTime)")
        selects = [Select(g, tuple(c), f"s{n}", g.where(where), None, False, None)
                   for n, (g, c) in enumerate((g, c) for g in groups for c in g.chunks())]
        rows = [ObservationRow(d, t, v) for f in run_selects(self.influx, selects)
                for t, v, tag in f.rows for d in f.select.group.members.get(tag, ())]
        values = sorted({result_sort_value(r.result) for r in rows})
        value_rank = {v: float(i) for i, v in enumerate(values)}
        sign, tie = (-1 if order.desc else 1), (-1 if order.tie_desc else 1)

        def rank_of(result: Any) -> float:
            v = result_sort_value(result)
            found = value_rank.get(v)
            if found is not None:
                return found
            return bisect.bisect_left(values, v) - 0.5

        def key(result: Any, t: int, ds: str) -> tuple[float, int, float]:
            return (sign * rank_of(result), tie * t, ranks(ds))

        low = key(after.result, after.time_us, after.datastream) if after else None
        rows = [r for r in rows if low is None or key(r.result, r.time_us, r.datastream) > low]
        rows.sort(key=lambda r: key(r.result, r.time_us, r.datastream))
        return rows[:need]

    # --- single Observations ---

    def get(self, datastream: str, ref: SeriesRef, time_us: int) -> ObservationRow | None:
        """The Observation of a Datastream at a time, or None."""
        if isinstance(ref, AggregateRef):
            found = fetch_aggregates(self.influx, [(datastream, ref, None)], descending=False, need=1,
                                     exactly=time_us).get(datastream, ([], False))[0]
            return _agg_row(datastream, ref, *found[0]) if found else None
        g = Group(ref.measurement, ref.field, ref.tag, {ref.value: [datastream]})
        select = Select(g, (ref.value,), "s0", None, f"time = {time_literal(time_us)}", False, 1)
        for fetched in run_selects(self.influx, [select]):
            for t, v, _ in fetched.rows:
                return ObservationRow(datastream, t, v)
        return None

    def latest(self, series: Series) -> dict[str, ObservationRow]:
        """The newest Observation of each Datastream that has one: one ``last()`` statement per measurement
        and field, grouped by the tag, in one request per time window (observation_latest)."""
        return {ident: ObservationRow(ident, t, v, end)
                for ident, (t, v, end) in observation_latest.latest(self.influx, series).items()}

    # --- counts and deletes ---

    def count(self, series: Series, where: Node | None) -> int:
        """How many Observations the Datastreams have (matching where): closed days from the cache, the
        rest counted live (observation_count); a filter InfluxQL cannot express raises NotImplementedFeature
        (observation_scan counts those by a bounded scan)."""
        return observation_count.count(self.influx, self.cache, series, where, time.time())

    def written(self, ref: SeriesRef, time_us: int) -> None:
        """A writer stored a point at time_us older than the ingest's settle horizon (a day the count cache
        may hold as closed): count that day again (the ingest's late-write markers do this for its points)."""
        observation_count.forget(self.cache, ref, time_us)

    def delete(self, datastream: str, ref: SeriesRef, time_us: int) -> bool:
        """Delete one Observation; False when there is none (aggregates cannot be deleted)."""
        if isinstance(ref, AggregateRef) or self.get(datastream, ref, time_us) is None:
            return False
        delete_point(self.writer, ref, time_us)
        observation_count.forget(self.cache, ref, time_us)
        return True
