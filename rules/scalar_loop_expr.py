"""Rule expression trees compiled into nested closures for the scalar loop (rules/scalar_loop.py).

A numeric closure returns a float, NaN for missing (so arithmetic propagates it for free); a
boolean closure returns True, False or None (missing), as rules/README.md "Expressions" says.
Closures take (slot values by value index, the slot's gemeente, now).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable

from rules.rule_model import Binary, Call, Const, Expr, Name, Unary

NAN = math.nan
Number = Callable[[list[float], str, float], float]
Truth = Callable[[list[float], str, float], bool | None]
Schedule = Callable[[str, str, float], bool]  # (schedule name, gemeente, now) -> active

_ARITHMETIC: dict[str, Callable[[float, float], float]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul}
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq, "!=": operator.ne}


def compile_number(expr: Expr, index: dict[str, int]) -> Number:
    """A closure computing a numeric expression; index maps value names to positions."""
    if isinstance(expr, Const) and not expr.boolean:
        value = expr.value
        return lambda vals, gem, now: value
    if isinstance(expr, Name) and expr.name in index:
        i = index[expr.name]
        return lambda vals, gem, now: vals[i]
    if isinstance(expr, Unary) and expr.op == "neg":
        x = compile_number(expr.operand, index)
        return lambda vals, gem, now: -x(vals, gem, now)
    if isinstance(expr, Binary) and expr.op in _ARITHMETIC:
        fn, a, b = _ARITHMETIC[expr.op], compile_number(expr.left, index), compile_number(expr.right, index)
        return lambda vals, gem, now: fn(a(vals, gem, now), b(vals, gem, now))
    if isinstance(expr, Binary) and expr.op == "/":
        return _divide(compile_number(expr.left, index), compile_number(expr.right, index))
    if isinstance(expr, Call) and expr.fn == "abs":
        x = compile_number(expr.args[0], index)
        return lambda vals, gem, now: abs(x(vals, gem, now))
    if isinstance(expr, Call) and expr.fn in ("min", "max"):
        return _extreme(min if expr.fn == "min" else max,
                        compile_number(expr.args[0], index), compile_number(expr.args[1], index))
    raise TypeError(f"not a numeric expression: {expr!r}")


def _divide(a: Number, b: Number) -> Number:
    def divide(vals: list[float], gem: str, now: float) -> float:
        x, y = a(vals, gem, now), b(vals, gem, now)
        return NAN if y == 0 else x / y  # division by zero is missing

    return divide


def _extreme(fn: Callable[[float, float], float], a: Number, b: Number) -> Number:
    def extreme(vals: list[float], gem: str, now: float) -> float:
        x, y = a(vals, gem, now), b(vals, gem, now)
        return NAN if x != x or y != y else fn(x, y)  # noqa: PLR0124 - NaN test; builtin min/max drop NaN

    return extreme


def compile_truth(expr: Expr, index: dict[str, int], schedule: Schedule) -> Truth:
    """A closure computing a boolean expression; names that are not values are schedules."""
    if isinstance(expr, Const) and expr.boolean:
        value = expr.value != 0
        return lambda vals, gem, now: value
    if isinstance(expr, Name) and expr.name not in index:
        name = expr.name
        return lambda vals, gem, now: schedule(name, gem, now)
    if isinstance(expr, Unary) and expr.op == "not":
        return _negate(compile_truth(expr.operand, index, schedule))
    if isinstance(expr, Binary) and expr.op in _COMPARE:
        return _compare(_COMPARE[expr.op], compile_number(expr.left, index), compile_number(expr.right, index))
    if isinstance(expr, Binary) and expr.op == "and":
        return _and(compile_truth(expr.left, index, schedule), compile_truth(expr.right, index, schedule))
    if isinstance(expr, Binary) and expr.op == "or":
        return _or(compile_truth(expr.left, index, schedule), compile_truth(expr.right, index, schedule))
    raise TypeError(f"not a boolean expression: {expr!r}")


def _negate(a: Truth) -> Truth:
    def negate(vals: list[float], gem: str, now: float) -> bool | None:
        x = a(vals, gem, now)
        return None if x is None else not x

    return negate


def _compare(fn: Callable[[float, float], bool], a: Number, b: Number) -> Truth:
    def compare(vals: list[float], gem: str, now: float) -> bool | None:
        x, y = a(vals, gem, now), b(vals, gem, now)
        return None if x != x or y != y else fn(x, y)  # noqa: PLR0124 - the NaN test without a call

    return compare


def _and(a: Truth, b: Truth) -> Truth:
    def both(vals: list[float], gem: str, now: float) -> bool | None:
        x, y = a(vals, gem, now), b(vals, gem, now)
        if x is False or y is False:
            return False
        return None if x is None or y is None else True

    return both


def _or(a: Truth, b: Truth) -> Truth:
    def either(vals: list[float], gem: str, now: float) -> bool | None:
        x, y = a(vals, gem, now), b(vals, gem, now)
        if x is True or y is True:
            return True
        return None if x is None or y is None else False

    return either
