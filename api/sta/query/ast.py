"""The syntax tree of SensorThings (OData) ``$filter`` / ``$orderby`` expressions, and the two errors
the query language raises.

Nodes are frozen dataclasses so a parsed filter can be cached, compared in tests and shared between
threads. ``Literal.value`` holds the Python value of the literal: str, int, float, bool, None,
``datetime`` (always timezone-aware), ``date`` / ``time`` (OData Edm.Date / Edm.TimeOfDay),
``timedelta`` (``duration'P1D'``) or a shapely geometry (``geography'POINT(4.4 52.1)'``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal as TypingLiteral

# How much of the user's input an error message may quote: error bodies must not echo large input.
QUOTE_LIMIT = 40


class QueryError(ValueError):
    """A query option that cannot be parsed or evaluated (HTTP 400); the message names the problem and
    where (``at character N``, 1-based), quoting at most ``QUOTE_LIMIT`` characters of the input."""

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.position = position  # 0-based offset in the option's text, when there is one


class NotImplementedFeature(Exception):  # noqa: N818 - the contract's name; it maps to HTTP 501
    """A valid query this service does not implement (HTTP 501); the message says which feature."""


def quote(text: str, limit: int = QUOTE_LIMIT) -> str:
    """A short, printable quotation of user input for an error message (never more than ``limit`` chars)."""
    if len(text) > limit:
        return repr(text[:limit]) + "..."
    return repr(text)


def at(text: str, position: int) -> str:
    """``at character N near '...'``: where in ``text`` a problem is, for error messages."""
    if position >= len(text):
        return f"at character {position + 1} (end of input)"
    return f"at character {position + 1} near {quote(text[position:])}"


@dataclass(frozen=True, slots=True)
class Literal:
    """A constant: string, number, boolean, null, datetime, date, time, duration or geometry."""

    value: object


@dataclass(frozen=True, slots=True)
class Property:
    """A property path: ``("Datastream", "Thing", "properties", "wijk")``, ``("result",)``, ``("@iot.id",)``."""

    path: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Call:
    """A function call; ``name`` is the lower-case OData / STA function name (``geo.distance``, ``st_within``)."""

    name: str
    args: tuple[Node, ...]


UnaryOp = TypingLiteral["not", "-"]
BinaryOp = TypingLiteral["eq", "ne", "gt", "ge", "lt", "le", "and", "or", "add", "sub", "mul", "div", "mod"]


@dataclass(frozen=True, slots=True)
class Unary:
    """``not x`` or ``-x``."""

    op: UnaryOp
    operand: Node


@dataclass(frozen=True, slots=True)
class Binary:
    """A binary operator: comparison (eq ne gt ge lt le), logic (and or) or arithmetic (add sub mul div mod)."""

    op: BinaryOp
    left: Node
    right: Node


Node = Literal | Property | Call | Unary | Binary

COMPARISONS: frozenset[str] = frozenset({"eq", "ne", "gt", "ge", "lt", "le"})
LOGICAL: frozenset[str] = frozenset({"and", "or"})
ARITHMETIC: frozenset[str] = frozenset({"add", "sub", "mul", "div", "mod"})


@dataclass(frozen=True, slots=True)
class OrderItem:
    """One ``$orderby`` key."""

    expr: Node
    descending: bool = False


def properties(node: Node) -> list[tuple[str, ...]]:
    """Every property path the expression reads, in order of appearance."""
    out: list[tuple[str, ...]] = []
    stack: list[Node] = [node]
    while stack:  # iterative: the parser bounds depth, but walkers need not rely on it
        n = stack.pop()
        if isinstance(n, Property):
            out.append(n.path)
        elif isinstance(n, Call):
            stack.extend(reversed(n.args))
        elif isinstance(n, Unary):
            stack.append(n.operand)
        elif isinstance(n, Binary):
            stack.extend((n.right, n.left))
    return out
