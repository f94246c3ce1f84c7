"""The plain-Python reference engine: rules/README.md ("Semantics", "Restart and reload") read literally.

Written to be obviously right rather than fast: one object per series, window and slot, one
reading at a time, missing as None. It works out membership from the README itself and shares no
code with rules/membership.py or rules/engine.py, so that the property tests comparing the engines
(tests/rules/test_engine_equivalence.py) catch a mistake in either.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

from core.kinds import KINDS
from core.registry import Device, Registry
from rules.reference_expr import ScheduleState, Scope, truth
from rules.reference_series import Ring, Series
from rules.rule_model import ANY, Reducer, Rule, RuleSet, SeriesFn, ValueSpec, fingerprint
from rules.schedules import ScheduleClock
from rules.transitions import Event, Transition

SNAPSHOT_FORMAT = "smartcity-rules-reference/1"
SeriesKey = tuple[str, str]  # (device, metric)


@dataclass(slots=True)
class SlotState:
    """The state machine of one slot (README "The state machine"); None is "not set" / "never"."""

    active: bool = False
    pending_since: float | None = None
    clearing_since: float | None = None
    last_clear: float | None = None
    transitioned: bool = False  # has made a transition (only then does it reassert)
    last_sent: float | None = None  # when it last sent its commands: a transition or a reassert

    def step(self, rule: Rule, a: bool | None, c: bool | None, now: float) -> Event | None:
        """One evaluation: the transition the slot makes at now, if any."""
        if not self.active:
            if a is True:
                if self.pending_since is None:
                    self.pending_since = now
                cooled = self.last_clear is None or now - self.last_clear >= rule.cooldown_seconds
                if now - self.pending_since >= rule.for_seconds and cooled:
                    return self._transition(Event.ACTIVATE, now)
            else:
                self.pending_since = None
        elif c is True:
            if self.clearing_since is None:
                self.clearing_since = now
            if now - self.clearing_since >= rule.clear_for_seconds:
                return self._transition(Event.CLEAR, now)
        else:
            self.clearing_since = None
        if rule.reassert_seconds > 0 and self.transitioned and self.last_sent is not None \
                and now - self.last_sent >= rule.reassert_seconds:
            self.last_sent = now
            return Event.REASSERT
        return None

    def _transition(self, event: Event, now: float) -> Event:
        self.active = event is Event.ACTIVATE
        self.pending_since = self.clearing_since = None
        if event is Event.CLEAR:
            self.last_clear = now
        self.transitioned = True
        self.last_sent = now
        return event


@dataclass(slots=True)
class Slot:
    """One group of one rule: its key, its leader (smallest device id), member series per value, state."""

    group: str
    leader: Device
    members: dict[str, list[SeriesKey]]  # value name -> sorted (device, metric) series
    state: SlotState = field(default_factory=SlotState)


@dataclass(slots=True)
class RuleSlots:
    """A rule laid over the registry: its fingerprint and its slots in sorted group-key order."""

    rule: Rule
    fingerprint: str
    slots: list[Slot]


def attribute(device: Device, name: str) -> str:
    """A registry attribute by its rule-language name; ``device`` is the device id."""
    return device.id if name == "device" else str(getattr(device, name))


def selects(spec: ValueSpec, device: Device) -> bool:
    """True if the value selects the device's kind."""
    return spec.kind in (ANY, device.kind)


def series_of(spec: ValueSpec, device: Device) -> list[SeriesKey]:
    """The (device, metric) series of the device that the value reads."""
    if not selects(spec, device):
        return []
    metrics = KINDS[device.kind].metrics
    if spec.metric == ANY:
        return [(device.id, m) for m in sorted(metrics)]
    return [(device.id, spec.metric)] if spec.metric in metrics else []


def lay_out(rule: Rule, registry: Registry) -> list[Slot]:
    """The slots of a rule: its members are the devices matching `where` that some value reads a series of.

    That is README's "a kind one of its values selects", read as selecting series: a value of
    kind "*" and one metric makes members of the kinds that have the metric, not of every kind.
    """
    members = sorted(
        (d for d in registry.devices.values()
         if all(attribute(d, key) in allowed for key, allowed in rule.where.items())
         and any(series_of(spec, d) for spec in rule.values)),
        key=lambda d: d.id,
    )
    slots: dict[str, Slot] = {}
    for d in members:  # in device-id order, so the first member of a group is its leader
        key = attribute(d, rule.group_by)
        slot = slots.setdefault(key, Slot(key, d, {spec.name: [] for spec in rule.values}))
        for spec in rule.values:
            slot.members[spec.name].extend(series_of(spec, d))
    for slot in slots.values():
        for found in slot.members.values():
            found.sort()
    return [slots[key] for key in sorted(slots)]


class ReferenceEngine:
    """Every rule of a rule set over a registry, evaluated slot by slot and folded reading by reading."""

    def __init__(self, ruleset: RuleSet, registry: Registry, now: float,
                 *, schedules: ScheduleState | None = None) -> None:
        self.ruleset = ruleset
        self.registry = registry
        self.late_for_window = 0  # readings dropped for an older bucket than their cell holds
        self._schedules = schedules  # rules/schedules.py's ScheduleClock, made when first needed
        self._floor = now  # evaluation times never go back before the previous one (or the start)
        self.rules = [RuleSlots(rule, fingerprint(rule), lay_out(rule, registry)) for rule in ruleset.rules]
        self.series: dict[SeriesKey, Series] = {}
        self.rings: dict[tuple[str, str, float], Ring] = {}
        for rs in self.rules:
            for slot in rs.slots:
                for spec in rs.rule.values:
                    for key in slot.members[spec.name]:
                        self.series.setdefault(key, Series(now))
                        if spec.fn.windowed:
                            over = _over(spec)
                            self.rings.setdefault((*key, over), Ring(over))
        self._rings_of: dict[SeriesKey, list[Ring]] = {key: [] for key in self.series}
        for (device, metric, _), ring in sorted(self.rings.items()):
            self._rings_of[device, metric].append(ring)

    def fold_readings(self, readings: Iterable[tuple[str, str, float, float]], received: float) -> None:
        """Fold (device, metric, value, event time) readings received at wall time `received`, in order."""
        for device, metric, value, t in readings:
            series = self.series.get((device, metric))
            if series is None:
                continue  # no rule reads this series (the service counts it as not_used)
            series.add(value, t, received)
            for ring in self._rings_of[device, metric]:
                if not ring.add(value, t):
                    self.late_for_window += 1

    def evaluate(self, now: float) -> list[Transition]:
        """Evaluate every slot at wall time now: its transitions by rule (file order), then group key."""
        now = max(now, self._floor)
        self._floor = now
        out: list[Transition] = []
        for rs in self.rules:
            rule = rs.rule
            for slot in rs.slots:
                values = {spec.name: self.slot_value(rule, spec, slot, now) for spec in rule.values}
                scope = Scope(values, partial(self._schedule, gemeente=slot.leader.gemeente, now=now))
                a, c = conditions(rule, scope)
                event = slot.state.step(rule, a, c, now)
                if event is not None:
                    out.append(Transition(rule.name, slot.group, event, slot.state.active, now,
                                          {k: math.nan if v is None else v for k, v in values.items()}))
        return out

    def slot_value(self, rule: Rule, spec: ValueSpec, slot: Slot, now: float) -> float | None:
        """The value `spec` of a slot at now: its function per member series, reduced over the group."""
        found = [self.series_value(rule, spec, key, now) for key in slot.members[spec.name]]
        present = [x for x in found if x is not None]
        if spec.reduce is Reducer.COUNT:
            return float(len(present))
        if not present:
            return None
        if spec.reduce is Reducer.MAX:
            return max(present)
        if spec.reduce is Reducer.MIN:
            return min(present)
        total = 0.0
        for x in present:  # in member (device, metric) order
            total += x
        return total if spec.reduce is Reducer.SUM else total / len(present)

    def series_value(self, rule: Rule, spec: ValueSpec, key: SeriesKey, now: float) -> float | None:
        """The function of one member series at now."""
        series = self.series[key]
        if spec.fn is SeriesFn.LAST:
            return series.last(now, rule.stale_after)
        if spec.fn is SeriesFn.SILENCE:
            return series.silence(now)
        return self.rings[(*key, _over(spec))].value(spec.fn, now)

    def _schedule(self, name: str, gemeente: str, now: float) -> bool:
        if self._schedules is None:
            # Made when first needed: most rule sets name no schedule.
            self._schedules = ScheduleClock(self.ruleset, self.registry)
        return self._schedules.state(name, gemeente, now)

    def snapshot(self) -> dict[str, Any]:
        """The engine's state as plain (JSON-able) data, keyed as README "Restart and reload" says."""
        return {
            "format": SNAPSHOT_FORMAT,
            "evaluated_at": self._floor,  # so that evaluation times do not go back across a restart either
            "series": [{"device": d, "metric": m, **s.to_data()} for (d, m), s in sorted(self.series.items())],
            "windows": [{"device": d, "metric": m, "over": over, "cells": ring.to_data()}
                        for (d, m, over), ring in sorted(self.rings.items())],
            "slots": [{"rule": rs.rule.name, "fingerprint": rs.fingerprint, "group": slot.group,
                       **asdict(slot.state)} for rs in self.rules for slot in rs.slots],
        }

    def restore(self, state: dict[str, Any], now: float) -> None:
        """Take over the state of what still exists unchanged; everything else starts afresh at now."""
        if state.get("format") != SNAPSHOT_FORMAT:
            raise ValueError(f"not a reference engine snapshot: {state.get('format')!r}")
        self._floor = max(self._floor, now, float(state["evaluated_at"]))
        old_series = {(s["device"], s["metric"]): s for s in state["series"]}
        for key in self.series:
            found = old_series.get(key)
            self.series[key] = Series.from_data(found) if found is not None else Series(now)
        old_windows = {(w["device"], w["metric"], float(w["over"])): w["cells"] for w in state["windows"]}
        for ring_key, ring in self.rings.items():
            ring.load(old_windows.get(ring_key, [None] * len(ring.cells)))
        old_slots = {(s["rule"], s["fingerprint"], s["group"]): s for s in state["slots"]}
        for rs in self.rules:
            for slot in rs.slots:
                found = old_slots.get((rs.rule.name, rs.fingerprint, slot.group))
                slot.state = SlotState() if found is None else SlotState(
                    bool(found["active"]), _opt(found["pending_since"]), _opt(found["clearing_since"]),
                    _opt(found["last_clear"]), bool(found["transitioned"]), _opt(found["last_sent"]))


def conditions(rule: Rule, scope: Scope) -> tuple[bool | None, bool | None]:
    """`A` (when is true) and `C` (clear_when is true, or without it: when is known to be false)."""
    a = truth(rule.when.tree, scope)
    if rule.clear_when is not None:
        return a, truth(rule.clear_when.tree, scope)
    return a, None if a is None else not a


def _over(spec: ValueSpec) -> float:
    if spec.over is None:
        raise ValueError(f"value {spec.name!r}: {spec.fn} needs `over`")
    return float(spec.over)


def _opt(x: Any) -> float | None:
    return None if x is None else float(x)
