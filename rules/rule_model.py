"""The validated form of a rule file (version 2): what the parser produces and every engine reads.

rules/README.md is the specification of what these mean; rules/rule_file.py builds them from
TOML and checks everything, so the engines can trust them. All durations are float seconds.
Expressions are kept as parsed trees (rules/expressions.py), never as text to evaluate.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Union

FILE_VERSION = 2
ANY = "*"  # kind = "*": every kind; metric = "*": every metric of the kind (silence only)
DEFAULT_STALE_AFTER = 900.0
DEFAULT_TIMEZONE = "Europe/Amsterdam"
WINDOW_BUCKETS = 12  # a trailing window is kept as this many buckets of over/12 seconds each

# Registry attributes a rule can select on, group by, or relate targets by (core.registry.Device).
ATTRIBUTES = ("device", "kind", "gateway", "gemeente", "wijk", "link", "classification")


class SeriesFn(StrEnum):
    """What one series contributes to a value: its latest reading, a trailing window, or its silence."""

    LAST = "last"
    MEAN = "mean"
    MIN = "min"
    MAX = "max"
    SUM = "sum"
    COUNT = "count"
    RATE = "rate"  # (last - first) / (t_last - t_first) over the window, per second
    DELTA = "delta"  # last - first over the window (e.g. kWh used from a cumulative meter)
    SILENCE = "silence"  # wall seconds since a reading of the series was last received

    @property
    def windowed(self) -> bool:
        """True for the functions that need a trailing window (``over``)."""
        return self not in (SeriesFn.LAST, SeriesFn.SILENCE)


class Reducer(StrEnum):
    """How the member series of a group combine into the group's value."""

    MAX = "max"
    MIN = "min"
    MEAN = "mean"
    SUM = "sum"
    COUNT = "count"


class Severity(StrEnum):
    """Alarm severities (ITU X.733 / TMF names, as ThingsBoard and most NMS tools use)."""

    CRITICAL = "critical"
    MAJOR = "major"
    MINOR = "minor"
    WARNING = "warning"
    INDETERMINATE = "indeterminate"


# ---- expressions (rules/expressions.py parses text into these) ----

@dataclass(frozen=True, slots=True)
class Const:
    """A number or boolean literal (booleans are 1.0 / 0.0)."""

    value: float
    boolean: bool = False


@dataclass(frozen=True, slots=True)
class Name:
    """A rule value, a schedule name, or a builtin (night, day)."""

    name: str


@dataclass(frozen=True, slots=True)
class Unary:
    """``-x`` or ``not x``."""

    op: str  # "neg" | "not"
    operand: Expr


@dataclass(frozen=True, slots=True)
class Binary:
    """Arithmetic (+ - * /), comparison (< <= > >= == !=) or logic (and, or)."""

    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class Call:
    """``abs(x)``, ``min(a, b)``, ``max(a, b)``."""

    fn: str
    args: tuple[Expr, ...]


Expr = Union[Const, Name, Unary, Binary, Call]  # noqa: UP007 - dataclass fields above refer to it


@dataclass(frozen=True, slots=True)
class Expression:
    """A parsed expression with its source text (for messages) and whether it is boolean."""

    text: str
    tree: Expr


# ---- the rule file ----

@dataclass(frozen=True, slots=True)
class ValueSpec:
    """A named value of a rule: a series function per member series, reduced over the group."""

    name: str
    kind: str  # a kind name or ANY
    metric: str  # a metric name or ANY (only with fn = silence)
    fn: SeriesFn = SeriesFn.LAST
    over: float | None = None  # window seconds, for windowed functions only
    reduce: Reducer = Reducer.MAX


@dataclass(frozen=True, slots=True)
class TimeOfDay:
    """A schedule boundary: a wall-clock time, or sunrise / sunset shifted by an offset."""

    anchor: str  # "clock" | "sunrise" | "sunset"
    seconds: float  # seconds after midnight for clock; the offset (may be negative) for sun anchors


@dataclass(frozen=True, slots=True)
class Schedule:
    """A named daily period in the rule file's timezone; from > to wraps past midnight."""

    name: str
    start: TimeOfDay
    end: TimeOfDay
    days: frozenset[int] = frozenset(range(7))  # 0 = Monday, the day the period starts on


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """Which devices a command goes to, relative to the slot: kind, and the attribute they share with it."""

    kind: str
    same: str = "group"  # "group" (same group as the slot), or an attribute in ATTRIBUTES


@dataclass(frozen=True, slots=True)
class CommandAction:
    """Send a command (core.commands.Action value) with fixed params to the targets."""

    action: str
    params: dict[str, object]
    targets: TargetSpec


@dataclass(frozen=True, slots=True)
class AlarmAction:
    """Raise an alarm on activation; the rule's clear clears it (lifecycle: raised, acknowledged, cleared)."""

    text: str
    severity: Severity


@dataclass(frozen=True, slots=True)
class WebhookAction:
    """POST the transition as JSON to url (http or https)."""

    url: str


Action = Union[CommandAction, AlarmAction, WebhookAction]  # noqa: UP007


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule: a condition per slot (device or group) with durations, and actions on its transitions."""

    name: str
    kind: str  # the default kind of its values (or ANY)
    group_by: str  # "device" or another attribute in ATTRIBUTES
    values: tuple[ValueSpec, ...]
    when: Expression
    clear_when: Expression | None = None  # None: clears when `when` is known to be false
    for_seconds: float = 0.0
    clear_for_seconds: float = 0.0
    cooldown_seconds: float = 0.0
    reassert_seconds: float = 0.0  # 0: never re-send the commands of the current state
    stale_after: float = DEFAULT_STALE_AFTER
    urgent: bool = False
    where: dict[str, frozenset[str]] = field(default_factory=dict)  # attribute -> allowed values
    on_activate: tuple[Action, ...] = ()
    on_clear: tuple[Action, ...] = ()
    description: str = ""


@dataclass(frozen=True, slots=True)
class RuleSet:
    """The validated rules of one file, in file order, with its schedules."""

    version: int
    rules: tuple[Rule, ...]
    schedules: dict[str, Schedule]
    timezone: str
    source: str
    migrated_from: int | None = None  # set when an older file version was migrated on load


def fingerprint(rule: Rule) -> str:
    """A stable digest of everything that defines a rule's state (not its description or actions).

    State carries over a restart or reload only to a rule with the same fingerprint: a changed
    condition, value or duration starts the rule afresh, while new actions keep its state.
    """
    parts = [
        rule.kind, rule.group_by, repr(rule.values), rule.when.text,
        rule.clear_when.text if rule.clear_when else "", repr(rule.for_seconds),
        repr(rule.clear_for_seconds), repr(rule.cooldown_seconds), repr(rule.stale_after),
        repr(sorted((k, sorted(v)) for k, v in rule.where.items())),
    ]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]
