"""The speed baseline of the kernel benchmark: rules/README.md's semantics as a tight scalar loop.

Same results as rules/reference.py, written as fast as plain Python goes: state in flat lists
indexed by series, ring cell and slot numbers, member index lists precomputed, no per-reading
method calls, missing as NaN. Series are numbered in sorted (device, metric) order
(`series_index`). It shares no logic with rules/engine.py or rules/reference.py; its snapshots are
in the reference's plain-data format, so either can restore the other's.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from core.kinds import KINDS
from core.registry import Device, Registry
from rules.reference_expr import ScheduleState  # a type only: the loop shares no logic with the reference
from rules.rule_model import ANY, WINDOW_BUCKETS, Reducer, Rule, RuleSet, SeriesFn, fingerprint
from rules.scalar_loop_expr import Truth, compile_truth
from rules.schedules import ScheduleClock
from rules.transitions import Event, Transition

T = TypeVar("T")
NAN, INF = math.nan, math.inf
B = WINDOW_BUCKETS
EMPTY = -(1 << 62)  # the bucket number of a cell that never held a reading: any reading is newer
SNAPSHOT_FORMAT = "smartcity-rules-reference/1"  # rules/reference.py's format, on purpose
# group -> (its leader's gemeente, per value its sorted ((device, metric), over or None) member series)
_Slots = dict[str, tuple[str, list[list[tuple[tuple[str, str], float | None]]]]]
SLOT_FIELDS = ("active", "pending_since", "clearing_since", "last_clear", "transitioned", "last_sent")


def _attr(device: Device, name: str) -> str:
    return device.id if name == "device" else str(getattr(device, name))


@dataclass(slots=True)
class _Plan:
    """One rule compiled: its slot numbers, per value a column and per slot the member positions in it."""

    rule: Rule
    first: int  # the number of its first slot; its slots are first .. first + len(groups) - 1
    groups: list[str]
    gemeenten: list[str]  # per slot, its leader's (for schedules)
    values: list[tuple[int, Reducer, list[list[int]]]]  # per value: column, reducer, per slot positions
    when: Truth
    clear: Truth | None
    name: str = ""
    fp: str = ""
    names: list[str] = field(default_factory=list)
    durations: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        rule = self.rule
        self.name, self.fp, self.names = rule.name, fingerprint(rule), [spec.name for spec in rule.values]
        self.durations = (rule.for_seconds, rule.clear_for_seconds, rule.cooldown_seconds, rule.reassert_seconds)


class ScalarLoop:
    """Every rule of a rule set over a registry, in flat lists; the benchmark's scalar baseline."""

    def __init__(self, ruleset: RuleSet, registry: Registry, now: float,
                 *, schedules: ScheduleState | None = None) -> None:
        self.ruleset, self.registry, self._clock, self._floor = ruleset, registry, schedules, now
        self.late_for_window = 0
        laid = [_lay_out(rule, registry) for rule in ruleset.rules]
        keys = sorted({key for slots in laid for _, members in slots.values() for per in members for key, _ in per})
        self.series_keys: list[tuple[str, str]] = keys
        self.series_index = {key: i for i, key in enumerate(keys)}
        n = len(keys)
        self._t, self._v, self._r = [-INF] * n, [NAN] * n, [float(now)] * n
        ring_keys = sorted({(self.series_index[key], over) for slots in laid for _, members in slots.values()
                            for per in members for key, over in per if over is not None})
        self._ring_keys = ring_keys
        ring_index = {rk: i for i, rk in enumerate(ring_keys)}
        self._width = [over / B for _, over in ring_keys]
        self._rings_of: list[list[tuple[int, float]]] = [[] for _ in range(n)]
        for r, (s, over) in enumerate(ring_keys):
            self._rings_of[s].append((r * B, over / B))
        # Ring cells, field by field: bucket k, count, sum, min, max, first t, first v, last t, last v.
        self._cells: list[list[Any]] = [[EMPTY] * (B * len(ring_keys)), [0] * (B * len(ring_keys))]
        self._cells += [[0.0] * (B * len(ring_keys)) for _ in range(7)]
        # A column is one series function over the series (or rings) that some value reads, computed
        # once per evaluation however many rules share it: (fn, stale_after or over, series or ring ids).
        self._columns: list[tuple[SeriesFn, float, list[int]]] = []
        self._column_of: dict[tuple[SeriesFn, float], tuple[int, dict[int, int]]] = {}
        self._plans: list[_Plan] = []
        first = 0
        for rule, slots in zip(ruleset.rules, laid, strict=True):
            self._plans.append(self._compile(rule, slots, ring_index, first))
            first += len(slots)
        self._fresh_slots(first)

    def _compile(self, rule: Rule, slots: _Slots, ring_index: dict[tuple[int, float], int], first: int) -> _Plan:
        groups = sorted(slots)
        values = []
        for v, spec in enumerate(rule.values):
            param = rule.stale_after if spec.fn is SeriesFn.LAST else float(spec.over or 0.0)
            if (spec.fn, param) not in self._column_of:
                self._column_of[spec.fn, param] = (len(self._columns), {})
                self._columns.append((spec.fn, param, []))
            col, position = self._column_of[spec.fn, param]
            ids = self._columns[col][2]
            per_slot = []
            for g in groups:
                per = []
                for key, over in slots[g][1][v]:
                    s = self.series_index[key]
                    ident = s if over is None else ring_index[s, over]
                    if ident not in position:
                        position[ident] = len(ids)
                        ids.append(ident)
                    per.append(position[ident])
                per_slot.append(per)
            values.append((col, spec.reduce, per_slot))
        index = {spec.name: i for i, spec in enumerate(rule.values)}
        when = compile_truth(rule.when.tree, index, self._schedule)
        clear = None if rule.clear_when is None else compile_truth(rule.clear_when.tree, index, self._schedule)
        return _Plan(rule, first, groups, [slots[g][0] for g in groups], values, when, clear)

    def _fresh_slots(self, n: int) -> None:
        self._active, self._transitioned = [False] * n, [False] * n
        self._pending: list[float | None] = [None] * n
        self._clearing: list[float | None] = [None] * n
        self._last_clear: list[float | None] = [None] * n
        self._last_sent: list[float | None] = [None] * n

    def _schedule(self, name: str, gemeente: str, now: float) -> bool:
        if self._clock is None:  # made when first needed: most rule sets name no schedule
            self._clock = ScheduleClock(self.ruleset, self.registry)
        return self._clock.state(name, gemeente, now)

    def fold_readings(self, readings: Iterable[tuple[str, str, float, float]], received: float) -> None:
        """Fold (device, metric, value, event time) readings received at `received`; unread series are skipped."""
        index = self.series_index
        idx, values, times = [], [], []
        for device, metric, value, t in readings:
            s = index.get((device, metric))
            if s is not None:
                idx.append(s)
                values.append(value)
                times.append(t)
        self.fold_indexed(idx, values, times, received)

    def fold_indexed(self, series_idx: Iterable[int], values: Iterable[float], times: Iterable[float],
                     received: float) -> None:
        """Fold readings by series number (sorted (device, metric) order), in arrival order."""
        last_t, last_v, recv, rings_of = self._t, self._v, self._r, self._rings_of
        ck, cn, cs, clo, chi, cft, cfv, clt, clv = self._cells
        floor = math.floor
        late = 0
        for s, v, t in zip(_items(series_idx), _items(values), _items(times), strict=True):
            if t >= last_t[s]:  # of equal event times the later-arriving reading wins
                last_t[s] = t
                last_v[s] = v
            if received > recv[s]:  # noqa: PLR1730 - an if is cheaper than a call to max per reading
                recv[s] = received
            for base, width in rings_of[s]:
                k = floor(t / width)
                c = base + k % B
                held = ck[c]
                if k > held:  # a newer bucket resets the cell
                    ck[c], cn[c], cs[c], clo[c], chi[c], cft[c], cfv[c], clt[c], clv[c] = k, 1, v, v, v, t, v, t, v
                elif k == held:
                    cn[c] += 1
                    cs[c] += v
                    if v < clo[c]:  # noqa: PLR1730 - cheaper than min(); same result
                        clo[c] = v
                    if v > chi[c]:  # noqa: PLR1730
                        chi[c] = v
                    if t < cft[c]:
                        cft[c], cfv[c] = t, v
                    if t >= clt[c]:
                        clt[c], clv[c] = t, v
                else:
                    late += 1
        self.late_for_window += late

    def _column(self, fn: SeriesFn, param: float, ids: list[int], now: float) -> list[float]:
        if fn is SeriesFn.LAST:
            last_t, last_v = self._t, self._v
            return [last_v[s] if now - last_t[s] <= param else NAN for s in ids]
        if fn is SeriesFn.SILENCE:
            recv = self._r
            return [now - recv[s] for s in ids]
        return [self._window(fn, r, now) for r in ids]

    def _window(self, fn: SeriesFn, r: int, now: float) -> float:
        ck, cn, cs, clo, chi, cft, cfv, clt, clv = self._cells
        width = self._width[r]
        base = r * B
        newest = math.floor(now / width)
        count, total, low, high, first, latest = 0, 0.0, INF, -INF, -1, -1
        for k in range(newest - B + 1, newest + 1):  # oldest bucket first, as the reference sums
            c = base + k % B
            if ck[c] != k:
                continue
            count += cn[c]
            total += cs[c]
            if clo[c] < low:  # noqa: PLR1730 - cheaper than min(); same result
                low = clo[c]
            if chi[c] > high:  # noqa: PLR1730
                high = chi[c]
            if first < 0:
                first = c
            latest = c
        if not count:
            return NAN
        if fn is SeriesFn.COUNT:
            return float(count)
        if fn is SeriesFn.SUM:
            return total
        if fn is SeriesFn.MEAN:
            return total / count
        if fn is SeriesFn.MIN:
            return float(low)
        if fn is SeriesFn.MAX:
            return float(high)
        if fn is SeriesFn.DELTA:
            return float(clv[latest] - cfv[first])
        if clt[latest] == cft[first]:
            return NAN
        return float((clv[latest] - cfv[first]) / (clt[latest] - cft[first]))

    def evaluate(self, now: float) -> list[Transition]:
        """Evaluate every slot at wall time now; transitions by rule (file order), then group key."""
        now = max(now, self._floor)
        self._floor = now
        cols = [self._column(fn, param, ids, now) for fn, param, ids in self._columns]
        active, pending, clearing, last_clear = self._active, self._pending, self._clearing, self._last_clear
        transitioned, last_sent = self._transitioned, self._last_sent
        out: list[Transition] = []
        for plan in self._plans:
            for_s, clear_for, cooldown, reassert = plan.durations
            slot_values = [_reduce(cols[col], red, positions) for col, red, positions in plan.values]
            for j, group in enumerate(plan.groups):
                i = plan.first + j
                vals = [per[j] for per in slot_values]
                gem = plan.gemeenten[j]
                a = plan.when(vals, gem, now)
                event = None
                if not active[i]:
                    if a is True:
                        since = pending[i]
                        if since is None:
                            since = pending[i] = now
                        cleared = last_clear[i]
                        if now - since >= for_s and (cleared is None or now - cleared >= cooldown):
                            event = Event.ACTIVATE
                    else:
                        pending[i] = None
                else:
                    c = (None if a is None else not a) if plan.clear is None else plan.clear(vals, gem, now)
                    if c is True:
                        since = clearing[i]
                        if since is None:
                            since = clearing[i] = now
                        if now - since >= clear_for:
                            event = Event.CLEAR
                            last_clear[i] = now
                    else:
                        clearing[i] = None
                if event is not None:
                    active[i] = event is Event.ACTIVATE
                    pending[i] = clearing[i] = None
                    transitioned[i] = True
                    last_sent[i] = now
                elif reassert > 0 and transitioned[i] and now - cast(float, last_sent[i]) >= reassert:
                    event = Event.REASSERT
                    last_sent[i] = now
                if event is not None:
                    values = dict(zip(plan.names, vals, strict=True))
                    out.append(Transition(plan.name, group, event, active[i], now, values))
        return out

    def snapshot(self) -> dict[str, Any]:
        """The state as plain data, in rules/reference.py's snapshot format."""
        cells = self._cells
        windows = []
        for r, (s, over) in enumerate(self._ring_keys):
            ring: list[list[float] | None] = []
            for c in range(r * B, r * B + B):
                ring.append(None if cells[0][c] == EMPTY else [cells[f][c] for f in range(9)])
            windows.append({"device": self.series_keys[s][0], "metric": self.series_keys[s][1], "over": over,
                            "cells": ring})
        series = [{"device": d, "metric": m, "t": None if self._t[s] == -INF else self._t[s],
                   "value": None if self._t[s] == -INF else self._v[s], "received": self._r[s]}
                  for s, (d, m) in enumerate(self.series_keys)]
        slots = []
        for plan in self._plans:
            for j, group in enumerate(plan.groups):
                i = plan.first + j
                slots.append({"rule": plan.name, "fingerprint": plan.fp, "group": group} | dict(zip(
                    SLOT_FIELDS, (self._active[i], self._pending[i], self._clearing[i], self._last_clear[i],
                                  self._transitioned[i], self._last_sent[i]), strict=True)))
        windows.sort(key=lambda w: (w["device"], w["metric"], w["over"]))
        return {"format": SNAPSHOT_FORMAT, "evaluated_at": self._floor, "series": series, "windows": windows,
                "slots": slots}

    def restore(self, state: dict[str, Any], now: float) -> None:
        """Take over the state of what still exists unchanged; everything else starts afresh at now."""
        if state.get("format") != SNAPSHOT_FORMAT:
            raise ValueError(f"not a reference engine snapshot: {state.get('format')!r}")
        self._floor = max(self._floor, now, float(state["evaluated_at"]))
        old = {(x["device"], x["metric"]): x for x in state["series"]}
        for s, key in enumerate(self.series_keys):
            found = old.get(key)
            has = found is not None and found["t"] is not None
            self._t[s] = float(found["t"]) if found is not None and has else -INF
            self._v[s] = float(found["value"]) if found is not None and has else NAN
            self._r[s] = float(found["received"]) if found is not None else float(now)
        windows = {(w["device"], w["metric"], float(w["over"])): w["cells"] for w in state["windows"]}
        for r, (s, over) in enumerate(self._ring_keys):
            ring = windows.get((*self.series_keys[s], over), [None] * B)
            for j, cell in enumerate(ring):
                values = [EMPTY, 0] + [0.0] * 7 if cell is None else [int(cell[0]), int(cell[1]), *cell[2:]]
                for f in range(9):
                    self._cells[f][r * B + j] = values[f] if f < 2 else float(values[f])
        self._fresh_slots(len(self._active))
        slots = {(x["rule"], x["fingerprint"], x["group"]): x for x in state["slots"]}
        for plan in self._plans:
            for j, group in enumerate(plan.groups):
                found = slots.get((plan.name, plan.fp, group))
                if found is not None:
                    i = plan.first + j
                    self._active[i], self._transitioned[i] = bool(found["active"]), bool(found["transitioned"])
                    self._pending[i], self._clearing[i] = _opt(found["pending_since"]), _opt(found["clearing_since"])
                    self._last_clear[i], self._last_sent[i] = _opt(found["last_clear"]), _opt(found["last_sent"])


def _lay_out(rule: Rule, registry: Registry) -> _Slots:
    slots: _Slots = {}
    for d in sorted(registry.devices.values(), key=lambda d: d.id):
        if any(_attr(d, k) not in allowed for k, allowed in rule.where.items()):
            continue
        metrics = KINDS[d.kind].metrics
        found = [[] if spec.kind not in (ANY, d.kind) else sorted(metrics) if spec.metric == ANY
                 else [spec.metric] if spec.metric in metrics else [] for spec in rule.values]
        if not any(found):
            continue  # a member is a device some value reads a series of (rules/reference.py, lay_out)
        _, members = slots.setdefault(_attr(d, rule.group_by), (d.gemeente, [[] for _ in rule.values]))
        for v, spec in enumerate(rule.values):
            over = float(spec.over) if spec.fn.windowed and spec.over is not None else None
            members[v].extend(((d.id, m), over) for m in found[v])
    for _, members in slots.values():
        for per in members:
            per.sort()
    return slots


def _reduce(col: list[float], reducer: Reducer, positions: list[list[int]]) -> list[float]:
    # Per slot: the members that have a value (NaN is missing), combined in member order.
    out = []
    for pos in positions:
        present = [col[p] for p in pos if col[p] == col[p]]
        if reducer is Reducer.COUNT:
            out.append(float(len(present)))
        elif not present:
            out.append(NAN)
        elif reducer is Reducer.MAX:
            out.append(max(present))
        elif reducer is Reducer.MIN:
            out.append(min(present))
        else:
            total = 0.0
            for x in present:
                total += x
            out.append(total if reducer is Reducer.SUM else total / len(present))
    return out


def _items(values: Iterable[T]) -> Iterable[T]:
    # numpy scalars compare like Python numbers but are several times slower to work with.
    tolist = getattr(values, "tolist", None)
    return cast(Iterable[T], tolist()) if callable(tolist) else values


def _opt(x: Any) -> float | None:
    return None if x is None else float(x)
