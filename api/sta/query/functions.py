"""The built-in functions of ``$filter`` (OGC 18-088 Table 25 / OData 4.0 canonical functions): their
arities (checked by the parser) and their implementations (used by the evaluator).

Null propagates: a function with a null argument is null (the evaluator does this before calling
here). Wrong argument types are QueryErrors naming the function, never TypeErrors.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from typing import Any

from api.sta.query.ast import QueryError
from api.sta.query.geo import GEO_FUNCTIONS, Geometry, to_geometry

MIN_DATETIME = dt.datetime(1, 1, 1, tzinfo=dt.UTC)
MAX_DATETIME = dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC)


def type_name(value: object) -> str:
    """The OData-ish name of a value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, dt.datetime):
        return "datetime"
    if isinstance(value, dt.date):
        return "date"
    if isinstance(value, dt.time):
        return "time of day"
    if isinstance(value, dt.timedelta):
        return "duration"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return "geometry" if isinstance(value, Geometry) else type(value).__name__


def parse_datetime(text: str) -> dt.datetime | None:
    """A datetime from an ISO 8601 string as entities hold them (naive means UTC); None if it is not one."""
    if "/" in text or len(text) < 10 or not text[:4].isdigit():
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def as_datetime(value: object, where: str) -> dt.datetime:
    """A datetime from a datetime value or an ISO string (entities hold times as strings)."""
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, str) and (parsed := parse_datetime(value)) is not None:
        return parsed
    raise QueryError(f"{where}: expected a datetime, got {type_name(value)}")


def _text(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise QueryError(f"{where}: expected text, got {type_name(value)}")
    return value


def _integer(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise QueryError(f"{where}: expected an integer, got {type_name(value)}")
    return value


def _number(value: object, where: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise QueryError(f"{where}: expected a number, got {type_name(value)}")
    return value


def _date_part(value: object, where: str) -> dt.date:
    if isinstance(value, dt.date):  # datetimes are dates too
        return value
    return as_datetime(value, where)


def _time_part(value: object, where: str) -> dt.time | dt.datetime:
    if isinstance(value, dt.time):
        return value
    return as_datetime(value, where)


def _substring(args: list[Any]) -> str:
    text = _text(args[0], "substring")
    start = max(0, _integer(args[1], "substring"))
    if len(args) == 2:
        return text[start:]
    return text[start:start + max(0, _integer(args[2], "substring"))]


def _round(value: object) -> int | float:
    """OData round: halves away from zero (Python's round() rounds halves to even)."""
    x = _number(value, "round")
    if isinstance(x, int):
        return x
    return float(math.copysign(math.floor(abs(x) + 0.5), x))


def _floor_ceiling(fn: Callable[[float], int], name: str) -> Callable[[list[Any]], int | float]:
    def apply(args: list[Any]) -> int | float:
        x = _number(args[0], name)
        return x if isinstance(x, int) else float(fn(x))
    return apply


def _geo(name: str) -> Callable[[list[Any]], Any]:
    count, fn = GEO_FUNCTIONS[name]

    def apply(args: list[Any]) -> Any:
        geometries = []
        for a in args[:count]:
            try:
                g = to_geometry(a)
            except (TypeError, ValueError) as e:
                raise QueryError(f"{name}: {e}") from None
            if g is None:  # GeoJSON the data holds but shapely cannot read: no geometry
                return None
            geometries.append(g)
        try:
            return fn(*geometries, *args[count:])
        except ValueError as e:
            raise QueryError(f"{name}: {e}") from None
    return apply


# name -> (min args, max args, result type or None when it depends on the arguments, implementation).
FUNCTIONS: dict[str, tuple[int, int, str | None, Callable[[list[Any]], Any]]] = {
    "substringof": (2, 2, "boolean", lambda a: _text(a[0], "substringof") in _text(a[1], "substringof")),
    "contains": (2, 2, "boolean", lambda a: _text(a[1], "contains") in _text(a[0], "contains")),
    "endswith": (2, 2, "boolean", lambda a: _text(a[0], "endswith").endswith(_text(a[1], "endswith"))),
    "startswith": (2, 2, "boolean", lambda a: _text(a[0], "startswith").startswith(_text(a[1], "startswith"))),
    "length": (1, 1, "number", lambda a: len(_text(a[0], "length"))),
    "indexof": (2, 2, "number", lambda a: _text(a[0], "indexof").find(_text(a[1], "indexof"))),
    "substring": (2, 3, "text", _substring),
    "tolower": (1, 1, "text", lambda a: _text(a[0], "tolower").lower()),
    "toupper": (1, 1, "text", lambda a: _text(a[0], "toupper").upper()),
    "trim": (1, 1, "text", lambda a: _text(a[0], "trim").strip()),
    "concat": (2, 2, "text", lambda a: _text(a[0], "concat") + _text(a[1], "concat")),
    "year": (1, 1, "number", lambda a: _date_part(a[0], "year").year),
    "month": (1, 1, "number", lambda a: _date_part(a[0], "month").month),
    "day": (1, 1, "number", lambda a: _date_part(a[0], "day").day),
    "hour": (1, 1, "number", lambda a: _time_part(a[0], "hour").hour),
    "minute": (1, 1, "number", lambda a: _time_part(a[0], "minute").minute),
    "second": (1, 1, "number", lambda a: _time_part(a[0], "second").second),
    "fractionalseconds": (1, 1, "number", lambda a: _time_part(a[0], "fractionalseconds").microsecond / 1e6),
    "date": (1, 1, "date", lambda a: as_datetime(a[0], "date").date()),
    "time": (1, 1, "time", lambda a: as_datetime(a[0], "time").timetz().replace(tzinfo=None)),
    "totaloffsetminutes": (1, 1, "number", lambda a: int(
        (as_datetime(a[0], "totaloffsetminutes").utcoffset() or dt.timedelta()).total_seconds() // 60)),
    "now": (0, 0, "datetime", lambda a: dt.datetime.now(dt.UTC)),
    "mindatetime": (0, 0, "datetime", lambda a: MIN_DATETIME),
    "maxdatetime": (0, 0, "datetime", lambda a: MAX_DATETIME),
    "round": (1, 1, "number", lambda a: _round(a[0])),
    "floor": (1, 1, "number", _floor_ceiling(math.floor, "floor")),
    "ceiling": (1, 1, "number", _floor_ceiling(math.ceil, "ceiling")),
    **{name: (count + (1 if name == "st_relate" else 0), count + (1 if name == "st_relate" else 0),
              "number" if name in ("geo.distance", "geo.length") else "boolean", _geo(name))
       for name, (count, _) in GEO_FUNCTIONS.items()},
}

# Lambda operators and the like: valid OData, not implemented here (HTTP 501, not 400).
UNSUPPORTED_FUNCTIONS = frozenset({"any", "all", "cast", "isof", "geo.nearest"})


def call(name: str, args: list[Any]) -> Any:
    """Apply a built-in function to evaluated arguments (null in, null out)."""
    if any(a is None for a in args):
        return None
    return FUNCTIONS[name][3](args)
