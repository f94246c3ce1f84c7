"""The one rule for a number that arrived as JSON: a finite float, from a float or an int, never a bool."""

from __future__ import annotations

_INF = float("inf")


def finite_float(value: object) -> float | None:
    """value as a finite float, or None if it is not one.

    bool is refused although it is an int subclass ({"v": true} is not the number 1), and an integer
    beyond float range is refused: the standard library's JSON parses integers of any size, and
    float() of one raises OverflowError.
    """
    if type(value) is float:
        return value if -_INF < value < _INF else None
    if type(value) is int:
        try:
            return float(value)
        except OverflowError:
            return None
    return None
