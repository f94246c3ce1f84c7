"""Observation filters in InfluxDB: the split of an Observations ``$filter`` into the part on the
Observation's own properties and the part on its navigation paths, and the translation of the own
part into an InfluxQL WHERE clause over one series' field.

Nothing of the user's text is concatenated into InfluxQL: every literal is first a Python value
(the parser made it), then rendered from that value, strings with InfluxQL's escapes.

InfluxQL (1.x) limits what can be expressed, and some of its limits fail silently (a time condition
inside OR matches nothing; we checked on influxd 1.6): conditions on time are allowed only as
top-level conjuncts, ``ne`` on time has no InfluxQL form; functions and arithmetic on ``result`` or
the times are not translated. All of those raise NotImplementedFeature (HTTP 501) rather than answer
wrongly. ``result`` is never null in storage (a point without the field is not a row), which makes
``not`` safe to push down to the comparisons (InfluxQL has no NOT). Ordering text results is refused
too (InfluxQL answers it with no rows). The stored field's type is not known here: comparing ``result``
with a literal of another type (a number against a boolean field) selects nothing, which agrees with
OData for ``eq`` and the orderings and differs for ``ne`` (OData: all rows).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from api.sta.model import split_observation_id
from api.sta.query.ast import (
    COMPARISONS,
    Binary,
    Call,
    Literal,
    Node,
    NotImplementedFeature,
    Property,
    QueryError,
    Unary,
    properties,
    quote,
)
from api.sta.query.evaluate import evaluate
from api.sta.query.functions import parse_datetime, type_name

OBSERVATION_PROPERTIES = {"phenomenonTime", "resultTime", "result", "@iot.id", "id"}
NAVIGATION_ROOTS = ("Datastream", "FeatureOfInterest")
# Properties of an Observation (OGC 18-088 Table 11) that this service does not store.
UNSTORED_PROPERTIES = frozenset({"resultQuality", "validTime", "parameters"})
TIMES = frozenset({"phenomenonTime", "resultTime"})  # one InfluxDB time holds both
MIN_TIME_NS, MAX_TIME_NS = -9223372036854775806, 9223372036854775806  # InfluxDB's time range
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_NEGATED = {"eq": "ne", "ne": "eq", "gt": "le", "le": "gt", "ge": "lt", "lt": "ge"}
_FLIPPED = {"eq": "eq", "ne": "ne", "gt": "lt", "lt": "gt", "ge": "le", "le": "ge"}
_SYMBOL = {"eq": "=", "ne": "!=", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def _escaped(text: str, quote_char: str) -> str:
    """InfluxQL's escapes inside a quoted token: backslash, the quote, newline (``\\n``).

    InfluxQL has no escape for carriage return or NUL, and refuses them raw (checked on influxd 1.6),
    so text holding them cannot be written as a literal: QueryError (a ValueError), never a broken query.
    """
    if "\r" in text or "\x00" in text:
        raise QueryError("text with a carriage return or NUL character cannot be searched in InfluxDB")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: the HTTP client could not send them
        raise QueryError("text that is not valid Unicode cannot be searched in InfluxDB") from None
    return text.replace("\\", "\\\\").replace(quote_char, "\\" + quote_char).replace("\n", "\\n")


def influx_ident(name: str) -> str:
    """A double-quoted InfluxQL identifier."""
    return '"' + _escaped(name, '"') + '"'


def influx_string(value: str) -> str:
    """A single-quoted InfluxQL string literal."""
    return "'" + _escaped(value, "'") + "'"


# --- the split ---------------------------------------------------------------------------------------

def split_observation_filter(node: Node) -> tuple[Node | None, Node | None]:
    """(conjuncts on the Observation's own properties, conjuncts on Datastream/ and FeatureOfInterest/ paths).

    Conjuncts without any property (constants) go to the second part, which the engine evaluates in
    Python per Datastream. A conjunct that reads both sides cannot be split: NotImplementedFeature.
    """
    own: list[Node] = []
    navigation: list[Node] = []
    for conjunct in _conjuncts(node):
        sides = {_side(path) for path in properties(conjunct)}
        if sides == {"own"}:
            own.append(conjunct)
        elif len(sides) > 1:
            raise NotImplementedFeature(
                "$filter: a condition that combines the Observation's own properties with Datastream/ or "
                "FeatureOfInterest/ paths (other than by a top-level 'and') is not implemented")
        else:
            navigation.append(conjunct)
    return _join(own), _join(navigation)


def _conjuncts(node: Node) -> list[Node]:
    out: list[Node] = []
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, Binary) and n.op == "and":
            stack.extend((n.right, n.left))
        else:
            out.append(n)
    return out


def _join(nodes: list[Node]) -> Node | None:
    if not nodes:
        return None
    joined = nodes[0]
    for n in nodes[1:]:
        joined = Binary("and", joined, n)
    return joined


def _side(path: tuple[str, ...]) -> str:
    root = path[0]
    if root in OBSERVATION_PROPERTIES:
        return "own"
    if root in NAVIGATION_ROOTS:
        return "navigation"
    if root in UNSTORED_PROPERTIES:
        raise NotImplementedFeature(f"$filter on the Observation property {root} is not implemented (not stored)")
    raise QueryError(f"Observations have no property {quote(root)}")


# --- the translation -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Cond:
    """A translated condition: 'true', 'false', 'cmp' (text, is_time), 'and' / 'or' (parts)."""

    kind: str
    text: str = ""
    time: bool = False
    parts: tuple[_Cond, ...] = ()


_TRUE, _FALSE = _Cond("true"), _Cond("false")


def to_influxql(node: Node, field: str, datastream: str | None = None) -> str:
    """The InfluxQL WHERE-clause text of an Observation-own filter over one series' ``field``.

    ``datastream`` (the series' Datastream id) lets ``@iot.id eq '<datastream>.<time>'`` translate;
    without it conditions on the id are NotImplementedFeature.
    """
    cond = _translate(node, False, field, datastream)
    top = list(cond.parts) if cond.kind == "and" else [cond]
    for part in top:
        if part.kind != "cmp" and _has_time(part):
            raise NotImplementedFeature(
                "$filter: conditions on phenomenonTime/resultTime are implemented only when joined to the "
                "rest by 'and' (InfluxQL cannot select time ranges with 'or')")
    return _render(cond, top_level=True)


def _has_time(cond: _Cond) -> bool:
    return cond.time or any(_has_time(p) for p in cond.parts)


def _render(cond: _Cond, top_level: bool = False) -> str:
    if cond.kind in ("true", "false"):
        return cond.kind
    if cond.kind == "cmp":
        return cond.text
    joined = f" {cond.kind.upper()} ".join(_render(p) for p in cond.parts)
    return joined if top_level and cond.kind == "and" else f"({joined})"


def _combine(kind: str, parts: list[_Cond]) -> _Cond:
    """and/or with constant folding (false decides 'and', true decides 'or'); nested same kinds flattened."""
    decisive, neutral = (_FALSE, _TRUE) if kind == "and" else (_TRUE, _FALSE)
    flat: list[_Cond] = []
    for p in parts:
        if p == decisive:
            return decisive
        if p != neutral:
            flat.extend(p.parts if p.kind == kind else (p,))
    if not flat:
        return neutral
    return flat[0] if len(flat) == 1 else _Cond(kind, parts=tuple(flat))


def _no_property(path: tuple[str, ...]) -> Any:  # pragma: no cover - only constants are evaluated with it
    raise AssertionError(path)


def _constant(node: Node) -> bool:
    return not properties(node)


def _truth(value: Any, negate: bool) -> _Cond:
    """A constant in a boolean context: null excludes the Observation whether negated or not."""
    if value is None:
        return _FALSE
    if not isinstance(value, bool):
        raise QueryError(f"expected a boolean condition, got {type_name(value)}")
    return _TRUE if value != negate else _FALSE


def _translate(node: Node, negate: bool, field: str, datastream: str | None) -> _Cond:
    if _constant(node):
        return _truth(evaluate(node, _no_property), negate)
    if isinstance(node, Unary) and node.op == "not":
        return _translate(node.operand, not negate, field, datastream)
    if isinstance(node, Binary) and node.op in ("and", "or"):
        kind = node.op if not negate else ("or" if node.op == "and" else "and")  # De Morgan: InfluxQL has no NOT
        return _combine(kind, [_translate(node.left, negate, field, datastream),
                               _translate(node.right, negate, field, datastream)])
    if isinstance(node, Binary) and node.op in COMPARISONS:
        return _comparison(node, negate, field, datastream)
    if isinstance(node, Property):
        if node.path == ("result",):
            return _result(Binary("eq", node, Literal(True)), "eq", True, negate, field)
        raise QueryError(f"{'/'.join(node.path)[:40]} is not a boolean condition")
    what = f"the function {node.name}()" if isinstance(node, Call) else "arithmetic"
    raise NotImplementedFeature(f"$filter: {what} on Observation properties is not implemented")


def _comparison(node: Binary, negate: bool, field: str, datastream: str | None) -> _Cond:
    op: str = node.op
    if isinstance(node.left, Property) and _constant(node.right):
        prop, other = node.left, node.right
    elif isinstance(node.right, Property) and _constant(node.left):
        prop, other, op = node.right, node.left, _FLIPPED[op]
    elif not isinstance(node.left, Property | Literal) or not isinstance(node.right, Property | Literal):
        raise NotImplementedFeature("$filter: functions and arithmetic on Observation properties are not "
                                    "implemented")
    else:
        raise NotImplementedFeature("$filter: comparing two Observation properties is not implemented")
    value = evaluate(other, _no_property)
    name = prop.path[0]
    if name not in OBSERVATION_PROPERTIES:
        raise QueryError(f"{'/'.join(prop.path)[:40]} is not a property of the Observation itself")
    if len(prop.path) > 1:
        raise NotImplementedFeature(f"$filter on {'/'.join(prop.path)[:40]} is not implemented")
    if value is None:  # never null in storage: eq null is false, ne null true, ordering false
        return _truth(op == "ne", negate)
    if name in TIMES:
        return _time(op, value, negate, name)
    if name == "result":
        return _result(node, op, value, negate, field)
    return _identifier(op, value, negate, datastream)


def _time(op: str, value: Any, negate: bool, name: str) -> _Cond:
    if isinstance(value, str):
        value = parse_datetime(value) or value
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    if not isinstance(value, dt.datetime):
        raise QueryError(f"{name} can only be compared with a datetime, not {type_name(value)}")
    op = _NEGATED[op] if negate else op
    if op == "ne":
        raise NotImplementedFeature(f"$filter: 'ne' on {name} is not implemented (InfluxQL has no time '!=')")
    delta = value - _EPOCH
    ns = (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000
    ns = max(MIN_TIME_NS, min(MAX_TIME_NS, ns))
    return _Cond("cmp", f"time {_SYMBOL[op]} {ns}", time=True)


def _number(value: float) -> str:
    """An InfluxQL number from a Python number: no exponent (InfluxQL reads 1e-5 as a duration), floats
    keep a decimal point, integers past int64 are written as floats (InfluxQL integers are int64)."""
    if isinstance(value, int) and -(2**63) < value < 2**63:
        return str(value)
    text = format(Decimal(value) if isinstance(value, int) else Decimal(repr(value)), "f")
    return text if "." in text else text + ".0"


def _result(node: Binary, op: str, value: Any, negate: bool, field: str) -> _Cond:
    op = _NEGATED[op] if negate else op
    if isinstance(value, bool):
        if op not in ("eq", "ne"):
            raise NotImplementedFeature("$filter: ordering boolean results (gt, lt, ...) is not implemented")
        literal = "true" if value else "false"
    elif isinstance(value, int | float):
        literal = _number(value)
    elif isinstance(value, str):
        if op not in ("eq", "ne"):  # InfluxQL answers string ordering with no rows at all (checked on 1.6)
            raise NotImplementedFeature("$filter: ordering text results (gt, lt, ...) is not implemented")
        literal = influx_string(value)
    else:
        raise QueryError(f"result cannot be compared with a {type_name(value)}")
    return _Cond("cmp", f"{influx_ident(field)} {_SYMBOL[op]} {literal}")


def _identifier(op: str, value: Any, negate: bool, datastream: str | None) -> _Cond:
    if datastream is None or op not in ("eq", "ne"):
        raise NotImplementedFeature("$filter: conditions on the Observation @iot.id other than eq are not "
                                    "implemented")
    op = _NEGATED[op] if negate else op
    if not isinstance(value, str):
        return _truth(op == "ne", False)
    try:
        ident_datastream, time_us = split_observation_id(value)
    except ValueError:
        return _truth(op == "ne", False)
    if ident_datastream != datastream:
        return _truth(op == "ne", False)
    if op == "ne":
        raise NotImplementedFeature("$filter: '@iot.id ne' on Observations is not implemented")
    return _Cond("cmp", f"time = {max(MIN_TIME_NS, min(MAX_TIME_NS, time_us * 1000))}", time=True)
