"""The vectorised kernel of presence_dimming rules: state as flat numpy arrays over (rule, zone) slots.

Verbs in the style of river: ``update_many(sensor_idx, values, ts)`` folds a batch of readings
into the state, ``evaluate(now)`` turns the state into zone changes. One ``PresenceDimmingStack``
holds any number of rules side by side, so 1,000 rules cost one scatter per batch and one pass
over all slots per evaluation rather than 1,000 of each; ``PresenceDimming`` is the stack of one.

Semantics (rules/reference.py states the same per zone in plain Python):

- a reading with value > 0 is presence at its timestamp; a zone's ``last_presence`` is the
  latest such timestamp of its sensors, so an older reading arriving late never moves it back;
- a zone is *on* while ``now - last_presence <= hold_seconds``;
- it emits a change when its desired level (on_level or off_level) differs from the level it
  last emitted, or when ``reassert_seconds`` (> 0) have passed since it last emitted;
- grace: until ``hold_seconds`` after the stack started (or after the zone appeared in a
  rebuild) a zone that is not on emits nothing, so a restart causes no burst of "off" commands
  before the sensors have had time to report; a zone that is on emits at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from core.registry import Registry
from rules.rule_file import PresenceDimmingRule
from rules.zone_topology import Target, build_topology

NO_LEVEL = -1  # last_level of a zone that has not emitted yet: differs from every real level


@dataclass(frozen=True, slots=True)
class ZoneChange:
    """A zone's desired level to send to its targets, and why (a change, or a periodic re-assertion)."""

    rule: str
    zone: str
    level: int
    present: bool
    reasserted: bool
    targets: tuple[Target, ...]


class PresenceDimmingStack:
    """The state and kernel of many presence_dimming rules over one registry, stacked by (rule, zone)."""

    def __init__(self, rules: Sequence[PresenceDimmingRule], registry: Registry, start_time: float) -> None:
        self.rules = tuple(rules)
        topo = build_topology(self.rules, registry)
        self.inputs = topo.inputs
        self.slot_keys = topo.slot_keys
        self.slot_targets = topo.slot_targets
        self.start_time = float(start_time)
        # When every input feeds one slot (the usual case) a gather maps readings to slots;
        # otherwise readings are repeated over their slots through the CSR arrays.
        self._slot_of_input = topo.input_slots if topo.one_slot_per_input else None
        self._indptr = topo.input_indptr
        self._flat_slots = topo.input_slots
        n = len(self.slot_keys)
        # Rule parameters spread over slots, so one pass over all slots evaluates every rule.
        rule_of = topo.slot_rule
        self._hold = np.array([r.hold_seconds for r in self.rules], dtype=np.float64)[rule_of]
        self._on_level = np.array([r.on_level for r in self.rules], dtype=np.int16)[rule_of]
        self._off_level = np.array([r.off_level for r in self.rules], dtype=np.int16)[rule_of]
        self._reassert = np.array([r.reassert_seconds for r in self.rules], dtype=np.float64)[rule_of]
        self._reasserts = self._reassert > 0
        # State: everything evaluate() depends on. -inf means "never".
        self.last_presence = np.full(n, -np.inf)
        self.grace_start = np.full(n, self.start_time)
        self.last_level = np.full(n, NO_LEVEL, dtype=np.int16)
        self.last_emit = np.full(n, -np.inf)
        # Scratch buffers, allocated once: fresh allocations are slow on the target VMs (performance.md).
        self._age = np.empty(n)
        self._on = np.empty(n, dtype=bool)
        self._act = np.empty(n, dtype=bool)
        self._changed = np.empty(n, dtype=bool)
        self._emit = np.empty(n, dtype=bool)
        self._desired = np.empty(n, dtype=np.int16)
        # Every change a slot can emit, built once: (present, reasserted) decide the rest, and
        # the changes are immutable, so evaluate() hands out shared instances. Building a frozen
        # dataclass per emitted zone cost ~2 us, most of evaluate()'s time in the benchmark.
        self._changes = [
            ZoneChange(rule_name, zone, int(on_lvl if present else off_lvl), present, reasserted, targets)
            for (rule_name, zone), targets, on_lvl, off_lvl in zip(
                self.slot_keys, self.slot_targets, self._on_level.tolist(), self._off_level.tolist(),
                strict=True)
            for present in (False, True) for reasserted in (False, True)
        ]

    @property
    def n_slots(self) -> int:
        """Number of (rule, zone) slots."""
        return len(self.slot_keys)

    def update_many(self, sensor_idx: npt.ArrayLike, values: npt.ArrayLike, ts: npt.ArrayLike) -> None:
        """Fold a batch of readings (input index, value, unix time) into the zones' last presence."""
        idx = np.asarray(sensor_idx, dtype=np.intp)
        vals = np.asarray(values)
        times = np.asarray(ts, dtype=np.float64)
        if not idx.shape == vals.shape == times.shape or idx.ndim != 1:
            raise ValueError(f"sensor_idx, values and ts must be 1-d and of one length: "
                             f"{idx.shape}, {vals.shape}, {times.shape}")
        if idx.size == 0:
            return
        # Negative indices would silently wrap around to other sensors.
        if idx.min() < 0 or idx.max() >= len(self.inputs):
            raise IndexError(f"sensor index out of range 0..{len(self.inputs) - 1}")
        # Only presence moves state, so compress to it first: presence is usually a minority of
        # readings, and the gather and scatter below then touch only those. This measured about
        # twice as fast as keeping every reading with -inf for "no presence" at 20 % presence.
        # NaN > 0 is False, so NaN counts as no presence.
        present = np.flatnonzero(vals > 0)
        if present.size == 0:
            return
        presence_ts = times.take(present)
        idx = idx.take(present)
        if self._slot_of_input is not None:
            slots = self._slot_of_input.take(idx)
        else:
            starts = self._indptr.take(idx)
            counts = self._indptr.take(idx + 1) - starts
            offsets = np.arange(int(counts.sum()), dtype=np.intp)
            offsets -= np.repeat(np.cumsum(counts) - counts, counts)
            slots = self._flat_slots.take(np.repeat(starts, counts) + offsets)
            presence_ts = np.repeat(presence_ts, counts)
        # Unbuffered max handles a slot repeated in one batch correctly, whatever the order.
        np.maximum.at(self.last_presence, slots, presence_ts)

    def evaluate(self, now: float) -> list[ZoneChange]:
        """The zones whose level must be (re)sent at time now; marks them as emitted."""
        now = float(now)
        on, act, changed, emit = self._on, self._act, self._changed, self._emit
        np.subtract(now, self.last_presence, out=self._age)
        np.less_equal(self._age, self._hold, out=on)
        np.subtract(now, self.grace_start, out=self._age)
        np.greater(self._age, self._hold, out=act)  # grace is over
        act |= on
        np.copyto(self._desired, self._off_level)
        np.copyto(self._desired, self._on_level, where=on)
        np.not_equal(self._desired, self.last_level, out=changed)
        np.subtract(now, self.last_emit, out=self._age)
        np.greater_equal(self._age, self._reassert, out=emit)
        emit &= self._reasserts
        emit |= changed
        emit &= act
        idx = np.flatnonzero(emit)
        if idx.size == 0:
            return []
        self.last_level[idx] = self._desired[idx]
        self.last_emit[idx] = now
        # Position of (slot, present, reasserted) in self._changes.
        codes = idx * 4
        codes += on[idx] * 2
        codes += ~changed[idx]
        table = self._changes
        return [table[code] for code in codes.tolist()]

    def carry_over(self, previous: PresenceDimmingStack, now: float) -> None:
        """Take the state of zones that still exist from the stack this one replaces (registry reload).

        Presence and grace carry over for every (rule, zone) found in both. The emitted level
        carries over only if the zone's targets are unchanged, so that a zone that gained a
        device sends its level again at the next evaluation. New zones get a grace period from now.
        """
        old = {key: i for i, key in enumerate(previous.slot_keys)}
        self.grace_start.fill(float(now))
        for j, key in enumerate(self.slot_keys):
            i = old.get(key)
            if i is None:
                continue
            self.last_presence[j] = previous.last_presence[i]
            self.grace_start[j] = previous.grace_start[i]
            if previous.slot_targets[i] == self.slot_targets[j]:
                self.last_level[j] = previous.last_level[i]
                self.last_emit[j] = previous.last_emit[i]


class PresenceDimming(PresenceDimmingStack):
    """The kernel of one presence_dimming rule: sensor indices are the rule's own inputs."""

    def __init__(self, rule: PresenceDimmingRule, registry: Registry, start_time: float) -> None:
        super().__init__([rule], registry, start_time)
        self.rule = rule
