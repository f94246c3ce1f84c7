"""Rule sets built straight from rules.rule_model dataclasses, and a schedule clock fixed by the test."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from core.registry import Registry
from rules.expressions import parse
from rules.reference import ReferenceEngine
from rules.rule_model import (
    DEFAULT_TIMEZONE,
    Expression,
    Reducer,
    Rule,
    RuleSet,
    Schedule,
    SeriesFn,
    TimeOfDay,
    ValueSpec,
)
from rules.scalar_loop import ScalarLoop
from rules.transitions import Transition
from tests.rules.city import make_registry, rain_gauge

# A multiple of 120 s, so the buckets of the windows used in tests start on round offsets from it.
T0 = 1_700_000_040.0

EngineType = type[ReferenceEngine] | type[ScalarLoop]
ENGINES: tuple[EngineType, ...] = (ReferenceEngine, ScalarLoop)


def value(name: str, kind: str, metric: str, fn: str = "last", *, over: float | None = None,
          reduce: str = "max") -> ValueSpec:
    """A rule value."""
    return ValueSpec(name, kind, metric, SeriesFn(fn), over, Reducer(reduce))


def cond(text: str) -> Expression:
    """A condition parsed by the rule language's own parser."""
    return Expression(text, parse(text))


def rule(name: str, values: Sequence[ValueSpec], when: str, *, clear_when: str | None = None,
         group_by: str = "wijk", **fields: Any) -> Rule:
    """A rule; fields are Rule's (for_seconds, cooldown_seconds, where, ...)."""
    kind = values[0].kind if values else "*"
    return Rule(name, kind, group_by, tuple(values), cond(when),
                None if clear_when is None else cond(clear_when), **fields)


def probe(name: str, values: Sequence[ValueSpec], **fields: Any) -> Rule:
    """A rule that activates and clears on alternate evaluations, so every evaluation shows its values."""
    return rule(name, values, "true", clear_when="true", **fields)


def ruleset(*rules: Rule, schedules: Sequence[str] = ()) -> RuleSet:
    """A rule set; named schedules get a placeholder definition (tests give the engines a FixedClock)."""
    period = Schedule("", TimeOfDay("clock", 0.0), TimeOfDay("clock", 3600.0))
    return RuleSet(2, tuple(rules), {n: Schedule(n, period.start, period.end) for n in schedules},
                   DEFAULT_TIMEZONE, "test")


def city() -> Registry:
    """tests.rules.city.SMALL with a rain gauge in every wijk."""
    return make_registry(extra=[rain_gauge("GM0001", "WK000101"), rain_gauge("GM0001", "WK000102"),
                                rain_gauge("GM0002", "WK000201")])


class FixedClock:
    """Schedule states from a function of (name, gemeente, now); records what it was asked."""

    def __init__(self, fn: Callable[[str, str, float], bool]) -> None:
        self.fn = fn
        self.asked: set[tuple[str, str]] = set()

    def state(self, name: str, gemeente: str, now: float) -> bool:
        """The state the test defined."""
        self.asked.add((name, gemeente))
        return self.fn(name, gemeente, now)


def same_values(a: dict[str, float], b: dict[str, float]) -> bool:
    """Equal value dicts: same names in the same order, exact floats, NaN equal to NaN."""
    return list(a) == list(b) and all(
        (math.isnan(x) and math.isnan(y)) or x == y for x, y in zip(a.values(), b.values(), strict=True))


def rows(transitions: Sequence[Transition]) -> list[tuple[Any, ...]]:
    """Transitions as comparable tuples: (rule, group, event, active, time, values with NaN as None)."""
    return [(t.rule, t.group, t.event.value, t.active, t.time,
             tuple((k, None if math.isnan(v) else v) for k, v in t.values.items())) for t in transitions]
