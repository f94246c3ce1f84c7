"""Evaluation of a parsed ``$filter`` against one entity, with OData semantics.

The engine supplies a ``Resolver``: it gives the value of a property path on the entity at hand
(JSON values as entities hold them; times may be ISO 8601 strings, geometries GeoJSON dicts).

Semantics (OData 4.0 Part 2, 5.1.1): null propagates through arithmetic and functions; ``eq``/``ne``
treat null as a value (``null eq null`` is true), ``gt ge lt le`` with a null side are false; ``and``
and ``or`` are three-valued (``false and null`` is false, ``true or null`` is true). Values of different
types are never equal; ordering them is a QueryError, as is arithmetic on the wrong types. ISO strings
compare as datetimes against datetimes; an interval string ``"start/end"`` (STA phenomenonTime) is
after a time when it starts after it and before a time when it ends before it. Division or modulo by
zero is null (the data's zero should not turn a whole request into an error).
"""

from __future__ import annotations

import datetime as dt
import math
import operator
from collections.abc import Callable
from typing import Any

from api.sta.query.ast import ARITHMETIC, COMPARISONS, Binary, Call, Literal, Node, Property, QueryError, Unary
from api.sta.query.functions import call, parse_datetime, type_name
from api.sta.query.geo import Geometry, to_geometry

Resolver = Callable[[tuple[str, ...]], Any]

_ORDER: dict[str, Callable[[Any, Any], bool]] = {"gt": operator.gt, "ge": operator.ge, "lt": operator.lt,
                                                 "le": operator.le}


def matches(node: Node, resolve: Resolver) -> bool:
    """Whether the filter is true for the entity (null and false both exclude it)."""
    return evaluate(node, resolve) is True


def evaluate(node: Node, resolve: Resolver) -> Any:
    """The value of the expression for the entity that ``resolve`` reads."""
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, Property):
        return resolve(node.path)
    if isinstance(node, Call):
        args = [evaluate(a, resolve) for a in node.args]
        try:
            return call(node.name, args)
        except QueryError:
            raise
        except (TypeError, ValueError, ArithmeticError) as e:  # e.g. a date past year 9999
            raise QueryError(f"{node.name}(): {str(e)[:80]}") from None
    if isinstance(node, Unary):
        return _unary(node.op, evaluate(node.operand, resolve))
    if node.op in {"and", "or"}:
        return _logic(node, resolve)
    left, right = evaluate(node.left, resolve), evaluate(node.right, resolve)
    if node.op in COMPARISONS:
        return compare(node.op, left, right)
    assert node.op in ARITHMETIC
    return arithmetic(node.op, left, right)


def _boolean(value: Any, op: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise QueryError(f"'{op}' needs boolean operands, got {type_name(value)}")


def _unary(op: str, value: Any) -> Any:
    if value is None:
        return None
    if op == "not":
        return not _boolean(value, "not")
    if isinstance(value, int | float | dt.timedelta) and not isinstance(value, bool):
        return -value
    raise QueryError(f"'-' needs a number or duration, got {type_name(value)}")


def _logic(node: Binary, resolve: Resolver) -> bool | None:
    left = _boolean(evaluate(node.left, resolve), node.op)
    decisive = node.op == "or"  # true decides 'or', false decides 'and'
    if left is decisive:
        return decisive
    right = _boolean(evaluate(node.right, resolve), node.op)
    if right is decisive:
        return decisive
    if left is None or right is None:
        return None
    return not decisive


def _coerce(left: Any, right: Any) -> tuple[Any, Any]:
    """Bring two values to one comparable type where OData would: ISO strings to datetimes (or dates), a
    date against a datetime to its midnight UTC, GeoJSON against a geometry to a geometry."""
    if isinstance(left, dt.date | dt.datetime) and isinstance(right, str):
        right = _time_or_interval(right) if isinstance(left, dt.datetime) else _date_of(right)
    elif isinstance(right, dt.date | dt.datetime) and isinstance(left, str):
        left = _time_or_interval(left) if isinstance(right, dt.datetime) else _date_of(left)
    if (isinstance(left, dt.datetime) != isinstance(right, dt.datetime)
            and isinstance(left, dt.date) and isinstance(right, dt.date)):
        return _midnight(left), _midnight(right)
    if isinstance(left, Geometry) and isinstance(right, dict):
        return left, to_geometry(right)
    if isinstance(right, Geometry) and isinstance(left, dict):
        return to_geometry(left), right
    return left, right


def _midnight(value: dt.date) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)


def _date_of(text: str) -> object:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return parse_datetime(text) or text


def _time_or_interval(text: str) -> object:
    """A datetime, a (start, end) interval of two datetimes, or the text itself when it is neither."""
    if "/" in text:
        start, _, end = text.partition("/")
        a, b = parse_datetime(start), parse_datetime(end)
        return (a, b) if a is not None and b is not None else text
    return parse_datetime(text) or text


def _same_type(left: Any, right: Any) -> bool:
    number = (int, float)
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool)
    if isinstance(left, number) and isinstance(right, number):
        return True
    for kind in (str, dt.datetime, dt.date, dt.time, dt.timedelta, Geometry, dict, list, tuple):
        if isinstance(left, kind) or isinstance(right, kind):
            return isinstance(left, kind) and isinstance(right, kind)
    return False


def compare(op: str, left: Any, right: Any) -> bool:
    """``left <op> right`` for the six comparison operators."""
    if left is None or right is None:
        if op in ("eq", "ne"):
            return (left is None and right is None) == (op == "eq")
        return False
    left, right = _coerce(left, right)
    if isinstance(left, tuple) or isinstance(right, tuple):
        return _compare_interval(op, left, right)
    if op in ("eq", "ne"):
        if isinstance(left, Geometry) and isinstance(right, Geometry):
            equal = bool(left.equals(right))
        else:
            equal = _same_type(left, right) and left == right
        return equal == (op == "eq")
    if not _same_type(left, right) or isinstance(left, Geometry | dict | list | tuple):
        raise QueryError(f"cannot order {type_name(left)} against {type_name(right)} with '{op}'")
    try:
        return _ORDER[op](left, right)
    except TypeError:  # aware against naive times of day and the like
        raise QueryError(f"cannot order {type_name(left)} against {type_name(right)} with '{op}'") from None


def _compare_interval(op: str, left: Any, right: Any) -> bool:
    """An interval (start, end) against a datetime or another interval."""
    if isinstance(right, tuple) and not isinstance(left, tuple):
        flipped = {"gt": "lt", "ge": "le", "lt": "gt", "le": "ge", "eq": "eq", "ne": "ne"}[op]
        return _compare_interval(flipped, right, left)
    start, end = left
    if isinstance(right, tuple):
        other_start, other_end = right
    elif isinstance(right, dt.datetime):
        other_start = other_end = right
    else:
        if op in ("eq", "ne"):
            return op == "ne"
        raise QueryError(f"cannot order a time interval against {type_name(right)} with '{op}'")
    results = {"eq": start == other_start and end == other_end, "gt": start > other_end,
               "ge": start >= other_end, "lt": end < other_start, "le": end <= other_start}
    results["ne"] = not results["eq"]
    return bool(results[op])


def arithmetic(op: str, left: Any, right: Any) -> Any:
    """``add sub mul div mod`` on numbers, and add/sub on datetimes and durations."""
    if left is None or right is None:
        return None
    numbers = (int, float)
    if isinstance(left, str) and isinstance(right, dt.datetime | dt.timedelta):
        left = parse_datetime(left) or left
    if isinstance(right, str) and isinstance(left, dt.datetime):
        right = parse_datetime(right) or right
    try:
        if isinstance(left, numbers) and isinstance(right, numbers) \
                and not isinstance(left, bool) and not isinstance(right, bool):
            return _numeric(op, left, right)
        if op in ("add", "sub"):
            result = _temporal(op, left, right)
            if result is not None:
                return result
    except (OverflowError, ValueError):
        raise QueryError(f"'{op}': result out of range") from None
    raise QueryError(f"cannot {op} {type_name(left)} and {type_name(right)}")


def _numeric(op: str, left: float, right: float) -> float | None:
    if op == "add":
        result = left + right
    elif op == "sub":
        result = left - right
    elif op == "mul":
        result = left * right
    elif right == 0:
        return None
    elif op == "div":
        result = left / right
    elif isinstance(left, int) and isinstance(right, int):  # OData mod: the sign of the dividend
        result = abs(left) % abs(right) * (1 if left >= 0 else -1)
    else:
        result = math.fmod(left, right)
    if isinstance(result, float) and not math.isfinite(result):
        raise OverflowError
    return result


def _temporal(op: str, left: Any, right: Any) -> Any:
    if isinstance(right, dt.timedelta) and isinstance(left, dt.datetime | dt.timedelta):
        return left + right if op == "add" else left - right
    if op == "add" and isinstance(left, dt.timedelta) and isinstance(right, dt.datetime):
        return right + left
    if op == "sub" and isinstance(left, dt.datetime) and isinstance(right, dt.datetime):
        return left - right
    return None
