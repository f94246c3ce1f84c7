"""The query options of a SensorThings request (OGC 18-088, 9.3): ``$filter $orderby $top $skip
$count $select $expand $skiptoken $resultFormat``, with ``$expand`` items that carry their own
options (``Datastreams($select=id;$top=2;$expand=Observations($top=1))``).

``parse_options`` takes the raw query pairs (as ``request.query_params.multi_items()`` gives them) so
that a repeated option is an error rather than silently the last one. Option names are matched
without regard to case (OData 4.01); parameters not starting with ``$`` belong to the application and
are ignored here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from api.sta.query.ast import Node, OrderItem, QueryError, quote
from api.sta.query.parser import MAX_LENGTH, parse_filter, parse_orderby

MAX_EXPAND_DEPTH = 10
_NAMES = {"$filter": "filter", "$orderby": "orderby", "$top": "top", "$skip": "skip", "$count": "count",
          "$select": "select", "$expand": "expand", "$skiptoken": "skiptoken", "$resultformat": "result_format"}
_TOP_LEVEL_ONLY = frozenset({"skiptoken", "result_format"})
_INTEGER = re.compile(r"\d{1,15}")
_SELECT_ITEM = re.compile(r"(?:[^\W\d]|@)[\w.@]*(?:/(?:[^\W\d]|@)[\w.@]*)*")
_SEGMENT = re.compile(r"[^\W\d][\w]*")


@dataclass(frozen=True)
class QueryOptions:
    """The options of one request, or of one ``$expand`` item."""

    filter: Node | None = None
    orderby: tuple[OrderItem, ...] = ()
    top: int | None = None
    skip: int = 0
    count: bool = False
    select: tuple[str, ...] | None = None
    expand: tuple[ExpandItem, ...] = ()
    skiptoken: str | None = None
    result_format: str | None = None


@dataclass(frozen=True)
class ExpandItem:
    """One ``$expand`` path (``Datastreams/Observations`` -> ``("Datastreams", "Observations")``) and the
    options that apply to its last segment."""

    path: tuple[str, ...]
    options: QueryOptions


def parse_options(params: Sequence[tuple[str, str]]) -> QueryOptions:
    """The query options of raw query pairs; QueryError for unknown, repeated or malformed options."""
    return _options(params, depth=0)


def _options(params: Sequence[tuple[str, str]], depth: int) -> QueryOptions:
    seen: set[str] = set()
    values: dict[str, object] = {}
    for raw_name, value in params:
        if not raw_name.startswith("$"):
            continue
        name = _NAMES.get(raw_name.lower())
        if name is None:
            raise QueryError(f"unknown query option {quote(raw_name)}")
        if name in seen:
            raise QueryError(f"query option {raw_name.lower()} given more than once")
        if depth and name in _TOP_LEVEL_ONLY:
            raise QueryError(f"{raw_name} is not allowed inside $expand")
        seen.add(name)
        if len(value) > MAX_LENGTH:
            raise QueryError(f"{raw_name} too long ({len(value)} characters, at most {MAX_LENGTH})")
        try:
            values[name] = _value(name, value, depth)
        except QueryError as e:
            raise QueryError(f"{raw_name.lower()}: {e}", e.position) from None
    return replace(QueryOptions(), **values)  # type: ignore[arg-type]


def _value(name: str, text: str, depth: int) -> object:
    if name == "filter":
        return parse_filter(text)
    if name == "orderby":
        return parse_orderby(text)
    if name in ("top", "skip"):
        if not _INTEGER.fullmatch(text):
            raise QueryError(f"expected a non-negative integer, got {quote(text)}")
        return int(text)
    if name == "count":
        if text.lower() not in ("true", "false"):
            raise QueryError(f"expected true or false, got {quote(text)}")
        return text.lower() == "true"
    if name == "select":
        return _select(text)
    if name == "expand":
        return _expand(text, depth + 1)
    if not text:
        raise QueryError("empty value")
    return text  # skiptoken (checked by who made it), resultFormat (checked by who serves it)


def _select(text: str) -> tuple[str, ...]:
    items: list[str] = []
    for raw in text.split(","):
        item = raw.strip()
        if not _SELECT_ITEM.fullmatch(item):
            raise QueryError(f"expected property names separated by ',', got {quote(item or text)}")
        if item not in items:
            items.append(item)
    return tuple(items)


def _expand(text: str, depth: int) -> tuple[ExpandItem, ...]:
    if depth > MAX_EXPAND_DEPTH:
        raise QueryError(f"$expand nested more than {MAX_EXPAND_DEPTH} deep")
    return tuple(_expand_item(item.strip(), depth) for item in _split_top_level(text, ","))


def _expand_item(item: str, depth: int) -> ExpandItem:
    open_at = item.find("(")
    path_text = item if open_at < 0 else item[:open_at].rstrip()
    segments = tuple(s.strip() for s in path_text.split("/"))
    if not all(_SEGMENT.fullmatch(s) for s in segments):
        raise QueryError(f"expected a navigation path like Datastreams/Observations, got {quote(path_text or item)}")
    if open_at < 0:
        return ExpandItem(segments, QueryOptions())
    if not item.endswith(")") or _matching_paren(item, open_at) != len(item) - 1:
        raise QueryError(f"unbalanced parentheses after {quote(path_text)}")
    pairs: list[tuple[str, str]] = []
    for part in _split_top_level(item[open_at + 1:-1], ";"):
        name, eq, value = part.strip().partition("=")
        if not eq or not name.startswith("$"):
            raise QueryError(f"expected $option=value inside {quote(path_text)}(...), got {quote(part)}")
        pairs.append((name.strip(), value.strip()))
    try:
        return ExpandItem(segments, _options(pairs, depth))
    except QueryError as e:
        raise QueryError(f"in {'/'.join(segments)[:40]}(...): {e}", e.position) from None


def _matching_paren(text: str, open_at: int) -> int:
    """The index of the ')' that closes the '(' at ``open_at`` (quoted strings skipped), or -1."""
    level, quoted = 0, False
    for i in range(open_at, len(text)):
        ch = text[i]
        if ch == "'":
            quoted = not quoted  # '' inside a string toggles twice: still inside
        elif not quoted and ch == "(":
            level += 1
        elif not quoted and ch == ")":
            level -= 1
            if level == 0:
                return i
    return -1


def _split_top_level(text: str, separator: str) -> list[str]:
    """``text`` split at ``separator`` where it is outside parentheses and quoted strings."""
    parts: list[str] = []
    level, quoted, start = 0, False, 0
    for i, ch in enumerate(text):
        if ch == "'":
            quoted = not quoted
        elif quoted:
            continue
        elif ch == "(":
            level += 1
        elif ch == ")":
            level -= 1
            if level < 0:
                raise QueryError(f"unbalanced parentheses at character {i + 1}", i)
        elif ch == separator and level == 0:
            parts.append(text[start:i])
            start = i + 1
    if quoted:
        raise QueryError("unterminated string")
    if level:
        raise QueryError("unbalanced parentheses")
    parts.append(text[start:])
    return parts
