"""The vectorised rules engine: a rule set compiled over a registry into array operators.

Compiling (once per load or reload) lays the rules over the registry (rules/membership.py) and
builds four kinds of operator, each small and vectorised over all rules at once:

- ``SeriesState`` and one ``WindowRing`` per window length: what folding readings updates;
- ``ValueOperator`` per (series function, window, reducer): gather + group reduce into the
  variables of the condition programs;
- ``Program`` per condition shape (rules/expr_program.py): the three-valued conditions;
- one ``SlotMachine`` over every slot: ``for``, clear, cooldown and reassert.

A new rule kind is a new operator or a new shape, never a new engine class. No Python object is
built per reading: ``fold`` takes numpy columns, and objects appear only for transitions.
rules/README.md is the specification; rules/reference.py implements it plainly for the tests.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from core.registry import Registry
from rules.expr_program import Program, RuleShape, shape_of
from rules.membership import RuleSlots, lay_out
from rules.rule_model import RuleSet, SeriesFn, fingerprint
from rules.schedules import ScheduleClock
from rules.series_state import SeriesState
from rules.slot_machine import STATE_ARRAYS, SlotMachine
from rules.transitions import Event, Transition
from rules.value_terms import OperatorBuilder, ValueOperator
from rules.window_ring import WindowRing

F64 = npt.NDArray[np.float64]
IntP = npt.NDArray[np.intp]
SNAPSHOT_FORMAT = 1


class Engine:
    """Every rule of a rule set over one registry, as preallocated arrays."""

    def __init__(self, ruleset: RuleSet, registry: Registry, now: float) -> None:
        self.ruleset = ruleset
        self.registry = registry
        self.slots: tuple[RuleSlots, ...] = lay_out(ruleset, registry)
        self._rule_order = {rs.rule.name: r for r, rs in enumerate(self.slots)}  # transitions sort by it
        self.counters: dict[str, int] = {"late_for_window": 0}
        self.last_now = float(now)
        self._index_series(float(now))
        self._build_rings()
        self._build_programs()
        self._build_operators()
        self._build_schedules()
        self._build_machine()

    # ---- compiling ----

    def _index_series(self, now: float) -> None:
        keys = sorted({k for rs in self.slots for per_value in rs.members for slot in per_value for k in slot})
        self.series_keys: tuple[tuple[str, str], ...] = tuple(keys)
        self.series_index: dict[tuple[str, str], int] = {k: i for i, k in enumerate(keys)}
        self.series_names: dict[str, int] = {f"{d}/{m}": i for i, (d, m) in enumerate(keys)}
        devices = self.registry.devices
        self.gateways: tuple[str, ...] = tuple(sorted({devices[d].gateway for d, _ in keys}))
        gateway_index = {g: i for i, g in enumerate(self.gateways)}
        self.series_gateway = np.fromiter((gateway_index[devices[d].gateway] for d, _ in keys),
                                          dtype=np.int32, count=len(keys))
        self.urgent_series = np.zeros(len(keys), dtype=bool)
        for rs in self.slots:
            if rs.rule.urgent:
                for per_value in rs.members:
                    for slot in per_value:
                        self.urgent_series[[self.series_index[k] for k in slot]] = True
        self.series = SeriesState(len(keys), now)

    def _build_rings(self) -> None:
        wanted: dict[float, tuple[set[int], set[SeriesFn]]] = {}
        for rs in self.slots:
            for spec, per_value in zip(rs.rule.values, rs.members, strict=True):
                if spec.fn.windowed:
                    assert spec.over is not None
                    series, fns = wanted.setdefault(spec.over, (set(), set()))
                    fns.add(spec.fn)
                    series.update(self.series_index[k] for slot in per_value for k in slot)
        self.rings: dict[float, WindowRing] = {
            over: WindowRing(over, np.array(sorted(series), dtype=np.intp), len(self.series_keys), fns)
            for over, (series, fns) in sorted(wanted.items())
        }

    def _build_programs(self) -> None:
        shapes = [shape_of(rs.rule) for rs in self.slots]
        by_key: dict[tuple[object, ...], list[int]] = {}
        for r, shape in enumerate(shapes):
            by_key.setdefault(shape.key, []).append(r)
        self.programs: list[Program] = []
        self.program_rules: list[list[int]] = list(by_key.values())
        self.shapes: list[RuleShape] = shapes
        n_rules = len(self.slots)
        self.rule_program = np.zeros(n_rules, dtype=np.intp)
        self.rule_start = np.zeros(n_rules, dtype=np.intp)  # first global slot of each rule
        self.rule_local = np.zeros(n_rules, dtype=np.intp)  # first slot of the rule within its program
        self.program_start: list[int] = []
        slot_rule: list[IntP] = []
        offset = 0
        for g, rules in enumerate(self.program_rules):
            counts = [len(self.slots[r].groups) for r in rules]
            self.programs.append(Program([shapes[r] for r in rules], counts))
            self.program_start.append(offset)
            local = 0
            for r, count in zip(rules, counts, strict=True):
                self.rule_program[r] = g
                self.rule_start[r] = offset + local
                self.rule_local[r] = local
                slot_rule.append(np.full(count, r, dtype=np.intp))
                local += count
            offset += local
        self.n_slots = offset
        self.slot_rule: IntP = np.concatenate(slot_rule) if slot_rule else np.zeros(0, dtype=np.intp)
        self.slot_index: IntP = np.arange(self.n_slots, dtype=np.intp) - self.rule_start.take(self.slot_rule)
        # One flat buffer holds every program's variables, so operators scatter into it directly.
        sizes = [p.n_vars * p.n_slots for p in self.programs]
        self._buffer: F64 = np.full(int(sum(sizes)), np.nan)
        self._buffer_offset: list[int] = []
        start = 0
        for p, size in zip(self.programs, sizes, strict=True):
            p.vars = self._buffer[start:start + size].reshape(p.n_vars, p.n_slots)
            self._buffer_offset.append(start)
            start += size

    def _dest(self, r: int, v: int, s: int) -> int:
        g = int(self.rule_program[r])
        return self._buffer_offset[g] + v * self.programs[g].n_slots + int(self.rule_local[r]) + s

    def _build_operators(self) -> None:
        builders: dict[tuple[SeriesFn, float | None, str], OperatorBuilder] = {}
        index = self.series_index
        for r, rs in enumerate(self.slots):
            rule = rs.rule
            for v, (spec, per_value) in enumerate(zip(rule.values, rs.members, strict=True)):
                b = builders.setdefault((spec.fn, spec.over, spec.reduce.value),
                                        OperatorBuilder(spec.fn, spec.over, spec.reduce))
                for s, members in enumerate(per_value):
                    b.add([index[k] for k in members], rule.stale_after, self._dest(r, v, s))
        self.operators = [ValueOperator(b, self.rings.get(b.over) if b.over is not None else None)
                          for b in builders.values()]

    def _build_schedules(self) -> None:
        names = sorted({n for shape in self.shapes for n in shape.schedules})
        self.schedule_names: tuple[str, ...] = tuple(names)
        self.clock: ScheduleClock | None = ScheduleClock(self.ruleset, self.registry) if names else None
        # (program, variable position, flat index into the (schedule, gemeente) state matrix per slot)
        self._schedule_fills: list[tuple[int, int, IntP]] = []
        if self.clock is None:
            return
        gemeente_index = {g: i for i, g in enumerate(self.clock.gemeenten)}
        n_gem = len(self.clock.gemeenten)
        name_index = {n: i for i, n in enumerate(names)}
        for g, rules in enumerate(self.program_rules):
            first = self.shapes[rules[0]]
            for j in range(len(first.schedules)):
                flat = [name_index[self.shapes[r].schedules[j]] * n_gem + gemeente_index[leader.gemeente]
                        for r in rules for leader in self.slots[r].leaders]
                self._schedule_fills.append((g, first.n_values + j, np.array(flat, dtype=np.intp)))

    def _build_machine(self) -> None:
        rules = [rs.rule for rs in self.slots]

        def per_slot(values: list[float]) -> F64:
            return np.array(values, dtype=np.float64).take(self.slot_rule) if rules else np.zeros(0)

        self.machine = SlotMachine(
            per_slot([r.for_seconds for r in rules]), per_slot([r.clear_for_seconds for r in rules]),
            per_slot([r.cooldown_seconds for r in rules]), per_slot([r.reassert_seconds for r in rules]))

    # ---- running ----

    def fold(self, series: npt.ArrayLike, values: npt.ArrayLike, times: npt.ArrayLike, received: float) -> None:
        """Fold a batch of readings (series numbers, float values, event times; arrival order)."""
        s = np.asarray(series, dtype=np.intp)
        v = np.asarray(values, dtype=np.float64)
        t = np.asarray(times, dtype=np.float64)
        if not s.shape == v.shape == t.shape or s.ndim != 1:
            raise ValueError(f"series, values and times must be 1-d and of one length: {s.shape}, {v.shape}, {t.shape}")
        if s.size == 0:
            return
        if s.min() < 0 or s.max() >= len(self.series_keys):
            raise IndexError(f"series number out of range 0..{len(self.series_keys) - 1}")
        self.series.fold(s, v, t, received)
        for ring in self.rings.values():
            ring.fold(s, v, t)

    def evaluate(self, now: float) -> list[Transition]:
        """Advance every rule to wall time now; the transitions, by rule then slot."""
        now = max(float(now), self.last_now)
        self.last_now = now
        for ring in self.rings.values():
            ring.compute(now)
        self.counters["late_for_window"] = sum(ring.late for ring in self.rings.values())
        buffer = self._buffer
        for op in self.operators:
            buffer[op.dest] = op.compute(self.series, now)
        if self.clock is not None:
            states = np.array([self.clock.states(n, now) for n in self.schedule_names], dtype=np.float64).ravel()
            for g, position, flat in self._schedule_fills:
                self.programs[g].vars[position] = states.take(flat)
        activate = np.empty(self.n_slots, dtype=bool)
        clear = np.empty(self.n_slots, dtype=bool)
        for start, program in zip(self.program_start, self.programs, strict=True):
            a, c = program.run()
            activate[start:start + program.n_slots] = a
            clear[start:start + program.n_slots] = c
        fired, dropped, again = self.machine.step(activate, clear, now)
        if not (fired.size or dropped.size or again.size):
            return []
        out = [self._transition(j, Event.ACTIVATE, now) for j in fired.tolist()]
        out += [self._transition(j, Event.CLEAR, now) for j in dropped.tolist()]
        out += [self._transition(j, Event.REASSERT, now) for j in again.tolist()]
        order = self._rule_order
        out.sort(key=lambda t: (order[t.rule], t.group))
        return out

    def _transition(self, j: int, event: Event, now: float) -> Transition:
        r = int(self.slot_rule[j])
        s = int(self.slot_index[j])
        rs = self.slots[r]
        program = self.programs[int(self.rule_program[r])]
        local = int(self.rule_local[r]) + s
        values = {spec.name: float(program.vars[v, local]) for v, spec in enumerate(rs.rule.values)}
        active = bool(self.machine.active[j])
        return Transition(rs.rule.name, rs.groups[s], event, active, now, values)

    def slot_states(self) -> dict[tuple[str, str], bool]:
        """(rule, group) -> whether that slot is active, for every slot (alarm reconciliation)."""
        active = self.machine.active
        return {(rs.rule.name, g): bool(active[int(self.rule_start[r]) + s])
                for r, rs in enumerate(self.slots) for s, g in enumerate(rs.groups)}

    # ---- state across restarts and reloads ----

    def snapshot(self) -> dict[str, Any]:
        """All state as JSON-able values and numpy arrays, keyed so that another build can restore it."""
        st = self.series
        state: dict[str, Any] = {
            "format": SNAPSHOT_FORMAT, "last_now": self.last_now,
            "series_keys": [f"{d}/{m}" for d, m in self.series_keys],
            "series_value": st.value.copy(), "series_time": st.time.copy(), "series_received": st.received.copy(),
            "slot_keys": [[rs.rule.name, fingerprint(rs.rule), g] for rs in self.slots for g in rs.groups],
            "windows": {},
        }
        # Slots are stored in rule order (the order of slot_keys), not the programs' order.
        order = np.concatenate([self.rule_start[r] + np.arange(len(rs.groups), dtype=np.intp)
                                for r, rs in enumerate(self.slots)]) if self.slots else np.zeros(0, np.intp)
        for name in STATE_ARRAYS:
            state[f"slot_{name}"] = getattr(self.machine, name).take(order)
        for over, ring in self.rings.items():
            arrays = {name: getattr(ring, name).copy() for name in _RING_ARRAYS if getattr(ring, name) is not None}
            state["windows"][repr(over)] = {
                "keys": [f"{self.series_keys[s][0]}/{self.series_keys[s][1]}" for s in ring.series.tolist()],
                **arrays,
            }
        return state

    def restore(self, state: dict[str, Any], now: float) -> None:
        """Take over the state of series, windows and unchanged slots from a snapshot (README)."""
        if state.get("format") != SNAPSHOT_FORMAT:
            raise ValueError(f"unknown snapshot format {state.get('format')!r}")
        self.last_now = max(self.last_now, float(state["last_now"]))
        old = {name: i for i, name in enumerate(state["series_keys"])}
        pairs = [(i, old[f"{d}/{m}"]) for i, (d, m) in enumerate(self.series_keys) if f"{d}/{m}" in old]
        if pairs:
            new_i, old_i = (np.array(x, dtype=np.intp) for x in zip(*pairs, strict=True))
            self.series.value[new_i] = np.asarray(state["series_value"]).take(old_i)
            self.series.time[new_i] = np.asarray(state["series_time"]).take(old_i)
            self.series.received[new_i] = np.asarray(state["series_received"]).take(old_i)
        self._restore_slots(state)
        for over, ring in self.rings.items():
            saved = state["windows"].get(repr(over))
            if saved is not None:
                _restore_ring(ring, saved, self.series_keys)

    def _restore_slots(self, state: dict[str, Any]) -> None:
        old = {tuple(k): i for i, k in enumerate(state["slot_keys"])}
        new_j: list[int] = []
        old_j: list[int] = []
        for r, rs in enumerate(self.slots):
            fp = fingerprint(rs.rule)
            for s, g in enumerate(rs.groups):
                i = old.get((rs.rule.name, fp, g))
                if i is not None:
                    new_j.append(int(self.rule_start[r]) + s)
                    old_j.append(i)
        if not new_j:
            return
        nj, oj = np.array(new_j, dtype=np.intp), np.array(old_j, dtype=np.intp)
        for name in STATE_ARRAYS:
            getattr(self.machine, name)[nj] = np.asarray(state[f"slot_{name}"]).take(oj)


_RING_ARRAYS = ("stamp", "sum", "count", "min", "max", "first_t", "first_v", "last_t", "last_v")


def _restore_ring(ring: WindowRing, saved: dict[str, Any], series_keys: tuple[tuple[str, str], ...]) -> None:
    # A row is restored only if the snapshot kept every aggregate this ring needs.
    needed = [name for name in _RING_ARRAYS if getattr(ring, name) is not None]
    if any(name not in saved for name in needed):
        return
    old = {name: i for i, name in enumerate(saved["keys"])}
    pairs = [(row, old[key]) for row, s in enumerate(ring.series.tolist())
             if (key := f"{series_keys[s][0]}/{series_keys[s][1]}") in old]
    if not pairs:
        return
    new_r, old_r = (np.array(x, dtype=np.intp) for x in zip(*pairs, strict=True))
    b = ring.stamp.size // max(len(ring.series), 1)
    new_cells = (new_r * b)[:, None] + np.arange(b)
    old_cells = (old_r * b)[:, None] + np.arange(b)
    for name in needed:
        getattr(ring, name)[new_cells.ravel()] = np.asarray(saved[name]).take(old_cells.ravel())
    ring.invalidate()
