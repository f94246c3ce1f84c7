"""Three-valued evaluation of rule expression trees for the reference engine (rules/README.md, "Expressions").

Numbers are float or None (missing); truth values are True, False or None (missing). The trees
were type-checked at load, so a number where a truth value belongs (or the reverse) is a bug here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from rules.rule_model import Binary, Call, Const, Expr, Name, Unary

ARITHMETIC = ("+", "-", "*", "/")
COMPARISONS = ("<", "<=", ">", ">=", "==", "!=")
LOGIC = ("and", "or")


class ScheduleState(Protocol):
    """What the engines need of rules/schedules.py: whether a schedule is active for a gemeente at now."""

    def state(self, name: str, gemeente: str, now: float) -> bool:
        """True while the named schedule (or the builtin night / day) is active."""
        ...


class Scope:
    """What names mean in one slot at one evaluation: its values, else schedules for its gemeente."""

    def __init__(self, values: Mapping[str, float | None], schedule: Callable[[str], bool]) -> None:
        self.values = values
        self.schedule = schedule


def number(expr: Expr, scope: Scope) -> float | None:
    """The value of a numeric expression, or None if missing (missing inputs, division by zero)."""
    if isinstance(expr, Const) and not expr.boolean:
        return expr.value
    if isinstance(expr, Name) and expr.name in scope.values:
        return scope.values[expr.name]
    if isinstance(expr, Unary) and expr.op == "neg":
        x = number(expr.operand, scope)
        return None if x is None else -x
    if isinstance(expr, Binary) and expr.op in ARITHMETIC:
        a, b = number(expr.left, scope), number(expr.right, scope)
        if a is None or b is None:
            return None
        if expr.op == "+":
            return a + b
        if expr.op == "-":
            return a - b
        if expr.op == "*":
            return a * b
        return None if b == 0 else a / b
    if isinstance(expr, Call):
        args = [number(arg, scope) for arg in expr.args]
        if any(x is None for x in args):
            return None
        present = [x for x in args if x is not None]
        if expr.fn == "abs":
            return abs(present[0])
        if expr.fn == "min":
            return min(present[0], present[1])
        if expr.fn == "max":
            return max(present[0], present[1])
    raise TypeError(f"not a numeric expression: {expr!r}")


def truth(expr: Expr, scope: Scope) -> bool | None:
    """The value of a boolean expression: True, False, or None if missing."""
    if isinstance(expr, Const) and expr.boolean:
        return expr.value != 0
    if isinstance(expr, Name) and expr.name not in scope.values:
        return scope.schedule(expr.name)  # a named schedule or the builtin night / day: never missing
    if isinstance(expr, Unary) and expr.op == "not":
        x = truth(expr.operand, scope)
        return None if x is None else not x
    if isinstance(expr, Binary) and expr.op in COMPARISONS:
        return compare(expr.op, number(expr.left, scope), number(expr.right, scope))
    if isinstance(expr, Binary) and expr.op in LOGIC:
        a, b = truth(expr.left, scope), truth(expr.right, scope)
        if expr.op == "and":
            if a is False or b is False:
                return False
            return None if a is None or b is None else True
        if a is True or b is True:
            return True
        return None if a is None or b is None else False
    raise TypeError(f"not a boolean expression: {expr!r}")


def compare(op: str, a: float | None, b: float | None) -> bool | None:
    """A comparison; None if either side is missing."""
    if a is None or b is None:
        return None
    if op == "<":
        return a < b
    if op == "<=":
        return a <= b
    if op == ">":
        return a > b
    if op == ">=":
        return a >= b
    if op == "==":
        return a == b
    return a != b
