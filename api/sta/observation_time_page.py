"""Pages in time order over plain series: bounded time windows, keyset position, exact ties.

InfluxDB 1.x opens every shard a query's time range touches (observation_bounds), so a page reads
windows: one day from where it starts (the keyset position, or the data's first point for the
first ascending page, or now for the first descending one), then windows 8x longer, and after a few
rounds the rest of time, unbounded, so that nothing is ever missed. Each round is one request, for
the rows still needed; a live Datastream's page is almost always one round.

Ties: many series can share a timestamp, and InfluxDB's LIMIT may cut a statement in the middle of
such a tie. Rows are only trusted up to the *frontier*, the earliest last time of any statement that
stopped at its LIMIT; a statement over k series asks for ``need + k`` rows (k capped at need), which
leaves enough rows before the frontier unless ties are wide; if not, every row at the frontier time
is read too (at most one per series), in one more request. A page is exact whatever the ties.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from api.sta.observation_select import Group, Select, run_selects, time_literal
from api.sta.query.ast import Node

FIRST_WINDOW_US = 86_400_000_000
GROWTH = 8
ROUNDS = 5  # 1, 8, 64, 512 days, then unbounded
HORIZON_US = 86_400_000_000  # beyond now + this, an ascending walk reads the rest unbounded (no shards there)

Key = Callable[[int, str], tuple[float, float]]
Row = tuple[str, int, Any]  # (datastream, time µs, result)


@dataclass(frozen=True, slots=True)
class Walk:
    """Where a page starts and how rows compare: ``key`` of (time, datastream), ``low`` the key rows must exceed."""

    desc: bool
    key: Key
    after: int | None  # the keyset position's time
    low: tuple[float, float] | None
    start: int | None  # ascending first page: the first point of any series (None: no data)
    floor: int | None  # descending: no series has points before this (None: unknown)
    now: int
    lower: int | None = None  # the filter's own time bounds (observation_bounds.time_bounds)
    upper: int | None = None


def _windows(w: Walk) -> Iterator[tuple[int | None, int | None, bool]]:
    """(lo, hi, lower bound strict) per round: half-open [lo, hi), None for unbounded."""
    span = FIRST_WINDOW_US
    if not w.desc:
        lo = w.after if w.after is not None else w.start
        if lo is None:
            return
        strict = w.after is not None
        if w.lower is not None and w.lower > lo:
            lo, strict = w.lower, False
        for i in range(ROUNDS):
            end = lo + span
            last = i == ROUNDS - 1 or end > w.now + HORIZON_US or (w.upper is not None and end >= w.upper)
            hi = None if last else end  # the rest: no shards beyond now, or the filter's own bound ends it
            yield lo, hi, i == 0 and strict
            if hi is None:
                return
            lo, span = hi, span * GROWTH
    else:
        top = w.after
        if w.upper is not None and (top is None or w.upper + 1 < top):
            top = w.upper + 1  # + 1: "le" admits the bound itself
        floor = w.floor if w.lower is None or w.floor is None else max(w.floor, w.lower)
        low_edge: int | None = (w.now if top is None else top) - span
        for i in range(ROUNDS):
            # (<= floor + 1: a window ending at upper + 1 that starts at lower + 1 has read all but lower)
            if i == ROUNDS - 1 or (floor is not None and low_edge is not None and low_edge <= floor + 1):
                low_edge = None
            yield low_edge, top, False
            if low_edge is None:
                return
            top, span = low_edge, span * GROWTH
            low_edge = top - span


def _cond(w: Walk, lo: int | None, hi: int | None, strict: bool) -> str | None:
    parts = []
    if lo is not None:
        parts.append(f"time {'>' if strict else '>='} {time_literal(lo)}")
    if hi is not None:
        parts.append(f"time < {time_literal(hi)}")
    return " AND ".join(parts) or None


def time_rows(influx: Any, groups: Sequence[Group], where: Node | None, w: Walk, need: int) -> list[Row]:
    """The first ``need`` rows after the position, in the walk's order (exact; see the module doc)."""
    sign = -1 if w.desc else 1
    acc: list[Row] = []

    def keep(rows: list[Row]) -> list[Row]:
        return [r for r in rows if w.low is None or w.key(r[1], r[0]) > w.low]

    def rows_of(selects: list[Select]) -> tuple[list[Row], list[float]]:
        out: list[Row] = []
        cut: list[float] = []
        for fetched in run_selects(influx, selects):
            members = fetched.select.group.members
            out.extend((d, t, v) for t, v, tag in fetched.rows for d in members.get(tag, ()))
            if fetched.truncated:
                cut.append(sign * fetched.rows[-1][0])
        return keep(out), cut

    for n, (lo, hi, strict) in enumerate(_windows(w)):
        first = n == 0
        remaining = need - len(acc)
        selects: list[Select] = []
        for g in groups:
            text = g.where(where)
            for chunk in g.chunks():
                selects.append(Select(g, tuple(chunk), f"s{len(selects)}", text, _cond(w, lo, hi, strict), w.desc,
                                      remaining + min(len(chunk), remaining)))
                if first and w.after is not None and w.low is not None:  # the rest of the position's own time
                    tied = tuple(v for v in chunk if any(w.key(w.after, d) > w.low for d in g.members[v]))
                    if tied:
                        selects.append(Select(g, tied, f"s{len(selects)}", text,
                                              f"time = {time_literal(w.after)}", w.desc, None))
        rows, cut = rows_of(selects)
        if cut:
            frontier = min(cut)
            complete = [r for r in rows if sign * r[1] < frontier]
            if len(acc) + len(complete) < need:  # a wide tie at the frontier: read all of it
                at = int(sign * frontier)
                again = [Select(g, tuple(c), f"s{n}", g.where(where), f"time = {time_literal(at)}", w.desc, None)
                         for n, (g, c) in enumerate((g, c) for g in groups for c in g.chunks())]
                complete += rows_of(again)[0]
            acc += complete
            break
        acc += rows
        if len(acc) >= need:
            break
    acc.sort(key=lambda r: w.key(r[1], r[0]))
    return acc[:need]
