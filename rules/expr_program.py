"""Conditions compiled into array programs, stacked over every rule of the same shape.

Rules whose ``when`` / ``clear_when`` have the same tree up to their constants and value names
(``rain > 0.5`` and ``people > 3``) share one program: their slots are laid side by side and the
constants become per-slot arrays, so 1,000 rules of a few shapes cost a few dozen numpy calls per
evaluation rather than thousands. Truth values are floats: 1 true, 0 false, NaN missing, so the
three-valued logic of rules/README.md ("Expressions: three-valued") is plain arithmetic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Union

import numpy as np
import numpy.typing as npt

from rules.rule_model import Binary, Call, Const, Expr, Name, Rule, Unary

F64 = npt.NDArray[np.float64]
Operand = Union[F64, float]  # noqa: UP007

# A shape node: ("c", const position) | ("v", variable position) | (op, child, ...)
Shape = tuple[object, ...]


@dataclass(frozen=True, slots=True)
class RuleShape:
    """A rule's conditions with constants and names taken out: the key rules are stacked by."""

    when: Shape
    clear: Shape | None
    n_values: int
    schedules: tuple[str, ...]  # schedule names, variable positions n_values.. in this order
    consts: tuple[float, ...]  # in the order of the ("c", i) positions

    @property
    def key(self) -> tuple[object, ...]:
        """Rules with equal keys share a program."""
        return (self.when, self.clear, self.n_values, len(self.schedules))


def shape_of(rule: Rule) -> RuleShape:
    """Take a rule's conditions apart into shape, schedule names and constants."""
    positions = {spec.name: i for i, spec in enumerate(rule.values)}
    schedules: list[str] = []
    consts: list[float] = []

    def walk(e: Expr) -> Shape:
        if isinstance(e, Const):
            consts.append(float(e.value))
            return ("c", len(consts) - 1)
        if isinstance(e, Name):
            if e.name in positions:
                return ("v", positions[e.name])
            if e.name not in schedules:
                schedules.append(e.name)
            return ("v", len(positions) + schedules.index(e.name))
        if isinstance(e, Unary):
            return (e.op, walk(e.operand))
        if isinstance(e, Binary):
            return (e.op, walk(e.left), walk(e.right))
        if isinstance(e, Call):
            return ("call:" + e.fn, *(walk(a) for a in e.args))
        raise TypeError(f"not an expression node: {e!r}")

    when = walk(rule.when.tree)
    clear = walk(rule.clear_when.tree) if rule.clear_when is not None else None
    return RuleShape(when, clear, len(rule.values), tuple(schedules), tuple(consts))


def _compare(op: str, a: Operand, b: Operand) -> F64:
    with np.errstate(invalid="ignore"):
        if op == "<":
            r = np.less(a, b)
        elif op == "<=":
            r = np.less_equal(a, b)
        elif op == ">":
            r = np.greater(a, b)
        elif op == ">=":
            r = np.greater_equal(a, b)
        elif op == "==":
            r = np.equal(a, b)
        else:
            r = np.not_equal(a, b)
    out = r.astype(np.float64)
    missing = np.isnan(a) | np.isnan(b)
    return np.where(missing, np.nan, out) if np.any(missing) else out


def _binary(op: str, a: Operand, b: Operand) -> Operand:
    if op in ("<", "<=", ">", ">=", "==", "!="):
        return _compare(op, a, b)
    if op == "and":
        # false wins over missing; missing over true: a * b is 1, 0 or NaN, then zeros force 0.
        return np.where((np.equal(a, 0.0)) | (np.equal(b, 0.0)), 0.0, np.multiply(a, b))
    if op == "or":
        return np.where((np.equal(a, 1.0)) | (np.equal(b, 1.0)), 1.0, np.maximum(a, b))
    if op == "+":
        return np.add(a, b)
    if op == "-":
        return np.subtract(a, b)
    if op == "*":
        return np.multiply(a, b)
    if op == "/":
        with np.errstate(invalid="ignore", divide="ignore"):
            q = np.divide(a, b)
        return np.where(np.equal(b, 0.0), np.nan, q)
    raise ValueError(f"unknown operator {op!r}")


class Program:
    """One shape's conditions over the slots of all rules of that shape."""

    def __init__(self, shapes: Sequence[RuleShape], slot_counts: Sequence[int]) -> None:
        first = shapes[0]
        self.when = first.when
        self.clear = first.clear
        self.n_slots = int(sum(slot_counts))
        self.n_vars = first.n_values + len(first.schedules)
        # Constants: a scalar when every rule agrees (the common case), else one value per slot.
        self.consts: list[Operand] = []
        for i in range(len(first.consts)):
            values = [s.consts[i] for s in shapes]
            if all(v == values[0] for v in values):
                self.consts.append(values[0])
            else:
                self.consts.append(np.repeat(np.array(values), np.array(slot_counts, dtype=np.intp)))
        # Filled by the engine before run(): variable p of slot j is vars[p, j].
        self.vars: F64 = np.full((self.n_vars, self.n_slots), np.nan)

    def _eval(self, node: Shape) -> Operand:
        head = node[0]
        if head == "c":
            return self.consts[int(node[1])]  # type: ignore[call-overload]
        if head == "v":
            return self.vars[int(node[1])]  # type: ignore[call-overload]
        if head == "neg":
            return np.negative(self._eval(node[1]))  # type: ignore[arg-type]
        if head == "not":
            return np.subtract(1.0, self._eval(node[1]))  # type: ignore[arg-type]
        if head == "call:abs":
            return np.abs(self._eval(node[1]))  # type: ignore[arg-type]
        if head == "call:min":
            return np.minimum(self._eval(node[1]), self._eval(node[2]))  # type: ignore[arg-type]
        if head == "call:max":
            return np.maximum(self._eval(node[1]), self._eval(node[2]))  # type: ignore[arg-type]
        return _binary(str(head), self._eval(node[1]), self._eval(node[2]))  # type: ignore[arg-type]

    def run(self) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
        """(activate condition, clear condition) per slot: true, not missing."""
        when = np.broadcast_to(np.asarray(self._eval(self.when), dtype=np.float64), (self.n_slots,))
        activate = when == 1.0
        if self.clear is None:
            return activate, when == 0.0
        clear = np.broadcast_to(np.asarray(self._eval(self.clear), dtype=np.float64), (self.n_slots,))
        return activate, clear == 1.0
