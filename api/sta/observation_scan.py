"""``$filter`` on Observations beyond InfluxQL: the conditions InfluxDB cannot evaluate, evaluated in Python
over a bounded scan.

Part A's ``to_influxql`` refuses what InfluxQL cannot say (arithmetic such as ``result add 5 gt 10``,
``round(result)``, ``year(phenomenonTime)``, string functions on results, time conditions inside
``or``, ...). The Observation-own part of a filter is split into its top-level ``and`` conjuncts:
those that translate (for every series of the request) go to InfluxDB as before, the rest (the
*residual*) is evaluated with Part A's ``matches`` on each row the store returns. Pages are read
through the store's keyset tokens until ``$top`` rows matched or ``SCAN_LIMIT`` rows were read.

Bounds, so one request never reads a whole history into Python:
- a page reads at most ``SCAN_LIMIT`` rows. When the bound is reached with rows left, the page holds
  what matched so far (possibly nothing) and ``@iot.nextLink`` continues the scan where it stopped.
  OGC 18-088 (9.3.3.4, server-driven paging) lets a page hold fewer entities than ``$top`` when a
  nextLink follows; clients must follow nextLinks rather than stop at a short page.
- ``$count=true`` with a residual counts by scanning; when more than ``COUNT_LIMIT`` Observations
  match the translated part, the answer is 501 (the filter is too expensive to count): narrow it
  with a condition InfluxDB can evaluate (e.g. on phenomenonTime).
- ``$skip`` with a residual skips matched rows; reaching the bound while still skipping is 501
  (a nextLink cannot carry the rest of a skip): follow nextLinks instead.
- ``Things?$filter=Datastreams/Observations/...`` (observation_filter) shares one bound per request
  and answers 501 when it is reached before the question is decided.

The residual sees ``phenomenonTime``/``resultTime`` as UTC datetimes (for aggregate Datastreams: the
interval's start), ``result`` as stored (members of an aggregate's result object by ``result/mean``),
``@iot.id`` as the Observation id.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from api.sta import observation_token
from api.sta.aggregate_select import aggregate_where
from api.sta.aggregates import AggregateRef
from api.sta.model import SeriesRef, observation_id
from api.sta.observation_order import parse_order
from api.sta.query.ast import Binary, Node, NotImplementedFeature, OrderItem, QueryError, properties, quote
from api.sta.query.evaluate import Resolver, matches
from api.sta.query.influxql import to_influxql

SCAN_LIMIT = 20_000  # rows read from InfluxDB per request to evaluate a residual filter
COUNT_LIMIT = 20_000  # $count with a residual: at most this many Observations are read to count
FIRST_CHUNK = 100  # the first read; later reads grow 4x (a selective filter needs few, a loose one many)
MAX_CHUNK = 10_000

Series = Sequence[tuple[str, SeriesRef]]
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class Row(Protocol):
    """An ObservationRow (api.sta.observations)."""

    @property
    def datastream(self) -> str: ...
    @property
    def time_us(self) -> int: ...
    @property
    def result(self) -> Any: ...


class Page(Protocol):
    """An ObservationPage (api.sta.observations)."""

    @property
    def rows(self) -> Sequence[Row]: ...
    @property
    def next_token(self) -> str | None: ...


class Pager(Protocol):
    """The calls of the ObservationStore a scan makes."""

    def page(self, series: Series, where: Node | None, orderby: tuple[OrderItem, ...],  # noqa: PLR0917 - contract
             top: int, skip: int, token: str | None) -> Page: ...
    def count(self, series: Series, where: Node | None) -> int: ...


@dataclass(frozen=True, slots=True)
class Plan:
    """The Observation-own filter as (the part InfluxDB evaluates, the part Python evaluates)."""

    pushed: Node | None
    residual: Node | None


@dataclass(slots=True)
class Budget:
    """Rows a request may still read for residual filters (shared by the scans of one request)."""

    left: int


def _conjuncts(node: Node) -> list[Node]:
    if isinstance(node, Binary) and node.op == "and":
        return _conjuncts(node.left) + _conjuncts(node.right)
    return [node]


def _join(nodes: Sequence[Node]) -> Node | None:
    joined: Node | None = None
    for n in nodes:
        joined = n if joined is None else Binary("and", joined, n)
    return joined


def _translates(node: Node, series: Series) -> bool:
    """Whether the store can hand this filter to InfluxDB for every series (checked without a query)."""
    per_id = any(p[0] in ("@iot.id", "id") for p in properties(node))
    seen: set[tuple[bool, str, str | None]] = set()
    try:
        for ident, ref in series:
            agg = isinstance(ref, AggregateRef)
            key = (agg, ref.field, ident if per_id else None)
            if key in seen:
                continue
            seen.add(key)
            if isinstance(ref, AggregateRef):
                aggregate_where(node, ref)
            else:
                to_influxql(node, ref.field, key[2])
    except NotImplementedFeature:
        return False
    return True


def plan(own: Node | None, series: Series) -> Plan:
    """Split the Observation-own filter into what InfluxDB evaluates and the residual (see the module doc)."""
    if own is None or _translates(own, series):
        return Plan(own, None)
    pushed: list[Node] = []
    rest: list[Node] = []
    for conjunct in _conjuncts(own):
        (pushed if _translates(conjunct, series) else rest).append(conjunct)
    joined = _join(pushed)
    if joined is not None and not _translates(joined, series):  # (not expected: translated parts join by AND)
        joined, rest = None, _conjuncts(own)
    residual = _join(rest)
    if residual is not None and any(isinstance(ref, AggregateRef) for _, ref in series) and any(
            p == ("result",) for p in properties(residual)):
        raise NotImplementedFeature("$filter on the result of aggregate Datastreams' Observations (an object); "
                                    "filter on phenomenonTime or a member such as result/mean")
    return Plan(joined, residual)


def resolver(row: Row) -> Resolver:
    """The values the residual filter reads from one Observation row."""
    def resolve(path: tuple[str, ...]) -> Any:
        name = path[0]
        if name in ("phenomenonTime", "resultTime"):
            return _EPOCH + dt.timedelta(microseconds=row.time_us) if len(path) == 1 else None
        if name in ("@iot.id", "id"):
            return observation_id(row.datastream, row.time_us) if len(path) == 1 else None
        if name == "result":
            value: Any = row.result
            for member in path[1:]:
                value = value.get(member) if isinstance(value, dict) else None
            return value
        raise QueryError(f"Observations have no property {quote('/'.join(path))}")  # the split let it through
    return resolve


def token_after(orderby: tuple[OrderItem, ...], row: Row) -> str:
    """The store's keyset token naming a row (the next page starts after it), as ObservationStore makes it."""
    order = parse_order(orderby)
    return observation_token.encode(observation_token.Position(
        order.code, row.time_us, row.datastream, row.result if order.mode == "r" else None))


@dataclass(frozen=True, slots=True)
class Scanned:
    """Matched rows and the token that continues after them (None: nothing is left); ``bounded``: the
    scan stopped at its row bound, rows may be left."""

    rows: list[Row]
    next_token: str | None
    bounded: bool = False


def scan_page(store: Pager, series: Series, plan_: Plan, orderby: tuple[OrderItem, ...], top: int,  # noqa: PLR0917
              skip: int, token: str | None, budget: Budget | None = None) -> Scanned:
    """Up to ``top`` rows matching the plan after ``skip`` matches, reading at most the budget's rows."""
    if plan_.residual is None:
        page = store.page(series, plan_.pushed, orderby, top, skip, token)
        return Scanned(list(page.rows), page.next_token)
    residual = plan_.residual
    budget = budget if budget is not None else Budget(SCAN_LIMIT)
    matched: list[Row] = []
    skipped = 0
    chunk = FIRST_CHUNK
    position = token
    while True:
        if budget.left <= 0:
            if skipped < skip:
                raise NotImplementedFeature(f"$skip with this $filter: more than {SCAN_LIMIT} Observations "
                                            "would have to be read; follow @iot.nextLink instead")
            if position is None:  # nothing read at all: there is no position to continue from
                raise NotImplementedFeature(f"$filter: more than {SCAN_LIMIT} Observations would have to be "
                                            "read in one request (a condition InfluxDB cannot evaluate)")
            return Scanned(matched, position, bounded=True)  # the bound: continue from the last row read
        size = min(max(chunk, top - len(matched) + skip - skipped), MAX_CHUNK, budget.left)
        page = store.page(series, plan_.pushed, orderby, size, 0, position)
        budget.left -= len(page.rows)
        for i, row in enumerate(page.rows):
            if not row_matches(residual, row):
                continue
            if skipped < skip:
                skipped += 1
                continue
            matched.append(row)
            if len(matched) == top:
                last = i == len(page.rows) - 1
                return Scanned(matched, page.next_token if last else token_after(orderby, row))
        if page.next_token is None or not page.rows:
            return Scanned(matched, None)
        position = page.next_token
        chunk *= 4


def row_matches(residual: Node, row: Row) -> bool:
    """Whether one row passes the Python part of the filter.

    A type error on this row's values (``round(result)`` on a boolean Datastream's row, where
    ``/Observations`` mixes Datastreams of every type) means the row does not match, as a
    comparison of different types does: the filter is about the other rows. Syntax errors and
    unknown functions were refused (400) when the filter was parsed; a condition wrong for every
    row (``round('a') eq 1``) matches nothing.
    """
    try:
        return matches(residual, resolver(row))
    except QueryError:
        return False


def scan_all(store: Pager, series: Series, plan_: Plan, orderby: tuple[OrderItem, ...]) -> list[Row]:
    """Every row matching the plan, in order; 501 when more than COUNT_LIMIT rows would be read."""
    too_many = NotImplementedFeature(f"$count with this $filter: more than {COUNT_LIMIT} Observations would "
                                     "have to be read to count them (the filter is too expensive to count); "
                                     "narrow it, e.g. with conditions on phenomenonTime")
    if store.count(series, plan_.pushed) > COUNT_LIMIT:  # cheap (cached per day): refuse before reading
        raise too_many
    budget = Budget(COUNT_LIMIT + 1)  # one more: new rows may have arrived since the count
    out: list[Row] = []
    token: str | None = None
    while True:
        got = scan_page(store, series, Plan(plan_.pushed, None), orderby, min(MAX_CHUNK, budget.left), 0, token)
        budget.left -= len(got.rows)
        residual = plan_.residual
        out.extend(r for r in got.rows if residual is None or row_matches(residual, r))
        if got.next_token is None:
            return out
        if budget.left <= 0:
            raise too_many
        token = got.next_token


def page_of(rows: Sequence[Row], orderby: tuple[OrderItem, ...], top: int, skip: int) -> Scanned:
    """A page of an already complete list of matching rows, with the token of the next page."""
    served = list(rows[skip:skip + top])
    more = len(rows) > skip + top and bool(served)
    return Scanned(served, token_after(orderby, served[-1]) if more else None)
