"""Tokens of OData / SensorThings expressions: the lexer turns ``$filter`` text into a list of tokens,
each with its 0-based character position so that parse errors can say where they are.

Literal forms: ``'it''s'`` (quotes doubled), ``42``, ``4.5``, ``1e3``, ``true``/``false``/``null``
(as identifiers, the parser decides), ``2026-12-01T10:00:00Z`` / ``...+01:00`` (naive ones are UTC),
``2026-12-01`` (a date), ``10:30:00`` (a time of day), ``duration'P1DT2H'``, ``geography'POINT(4.4 52.1)'``
(also ``geometry'...'`` and ``SRID=4326;`` prefixes).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from api.sta.query.ast import QueryError, at, quote
from api.sta.query.geo import parse_wkt


class Kind(StrEnum):
    """What a token is."""

    STRING = "string"
    NUMBER = "number"
    LITERAL = "literal"  # a typed literal whose value is ready: datetime, date, time, duration, geometry
    IDENT = "identifier"
    LPAREN = "'('"
    RPAREN = "')'"
    COMMA = "','"
    SLASH = "'/'"
    MINUS = "'-'"
    COLON = "':'"  # only in lambda expressions (any(d: ...)), which the parser refuses as not implemented
    EOF = "end of input"


@dataclass(frozen=True, slots=True)
class Token:
    """One token; ``value`` is the literal's Python value, or the identifier's / punctuation's text."""

    kind: Kind
    value: object
    pos: int
    end: int


_SPACE = re.compile(r"\s+")
_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,12}))?)?(Z|[+-]\d{2}:\d{2})?(?![\w.])", re.ASCII)
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?![\w.:-])", re.ASCII)
_TIME = re.compile(r"(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,12}))?)?(?![\w.:])", re.ASCII)
_DECODED_PLUS = re.compile(r" \d{2}:\d{2}(?![\d:])", re.ASCII)
_NUMBER = re.compile(r"\d+(\.\d+)?([eE][+-]?\d+)?", re.ASCII)
_IDENT = re.compile(r"(?:[^\W\d]|@)[\w.@]*")
_DURATION = re.compile(r"(-)?P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?", re.ASCII)
_PUNCT = {"(": Kind.LPAREN, ")": Kind.RPAREN, ",": Kind.COMMA, "/": Kind.SLASH, "-": Kind.MINUS,
          ":": Kind.COLON}
_TYPED_PREFIXES = frozenset({"duration", "geography", "geometry"})
MAX_NUMBER_DIGITS = 40  # longer digit runs are no measurement: refuse them before int() does the work


def tokenize(text: str) -> list[Token]:
    """The tokens of ``text``, ending with one EOF token; QueryError for characters that start no token."""
    tokens: list[Token] = []
    pos, n = 0, len(text)
    while pos < n:
        space = _SPACE.match(text, pos)
        if space:
            pos = space.end()
            continue
        ch = text[pos]
        if ch == "'":
            value, end = _string(text, pos)
            tokens.append(Token(Kind.STRING, value, pos, end))
        elif ch in _PUNCT:
            tokens.append(Token(_PUNCT[ch], ch, pos, pos + 1))
            end = pos + 1
        elif "0" <= ch <= "9":  # ASCII only: str.isdigit() admits '²', which no number pattern reads
            tokens.append(_number_or_time(text, pos))
            end = tokens[-1].end
        elif (ident := _IDENT.match(text, pos)) is not None:
            end = ident.end()
            name = ident.group()
            if name.lower() in _TYPED_PREFIXES and end < n and text[end] == "'":
                body, end = _string(text, end)
                tokens.append(Token(Kind.LITERAL, _typed(name.lower(), body, text, pos), pos, end))
            else:
                tokens.append(Token(Kind.IDENT, name, pos, end))
        else:
            raise QueryError(f"unexpected character {quote(ch)} {at(text, pos)}", pos)
        pos = end
    tokens.append(Token(Kind.EOF, "", n, n))
    return tokens


def _string(text: str, start: int) -> tuple[str, int]:
    """A quoted string from ``start`` (the opening quote): its value and the position after it."""
    parts: list[str] = []
    pos = start + 1
    while True:
        close = text.find("'", pos)
        if close < 0:
            raise QueryError(f"unterminated string {at(text, start)}", start)
        parts.append(text[pos:close])
        if close + 1 < len(text) and text[close + 1] == "'":  # '' is one quote inside the string
            parts.append("'")
            pos = close + 2
            continue
        return "".join(parts), close + 1


def _number_or_time(text: str, pos: int) -> Token:
    """A datetime, date, time of day or number starting at ``pos`` (tried in that order: longest form first)."""
    if m := _DATETIME.match(text, pos):
        y, mo, d, h, mi, s, frac, zone = m.groups()
        if zone is None and _DECODED_PLUS.match(text, m.end()):
            # '2026-12-01T10:00:00+01:00' sent unencoded: the URL decoding made the '+' a space
            raise QueryError(f"time zone offset without a sign (write '+' as %2B in a URL) {at(text, m.end())}",
                             m.end())
        tz = dt.UTC if zone in (None, "Z") else _offset(zone, text, pos)
        value: object = _checked(lambda: dt.datetime(int(y), int(mo), int(d), int(h), int(mi), int(s or 0),
                                                     _micro(frac), tzinfo=tz), text, pos, "datetime")
        return Token(Kind.LITERAL, value, pos, m.end())
    if m := _DATE.match(text, pos):
        y, mo, d = m.groups()
        value = _checked(lambda: dt.date(int(y), int(mo), int(d)), text, pos, "date")
        return Token(Kind.LITERAL, value, pos, m.end())
    if m := _TIME.match(text, pos):
        h, mi, s, frac = m.groups()
        value = _checked(lambda: dt.time(int(h), int(mi), int(s or 0), _micro(frac)), text, pos, "time of day")
        return Token(Kind.LITERAL, value, pos, m.end())
    m = _NUMBER.match(text, pos)
    assert m is not None  # a digit always starts a number
    if m.end() - pos > MAX_NUMBER_DIGITS:
        raise QueryError(f"number too long {at(text, pos)}", pos)
    if m.group(1) is None and m.group(2) is None:
        return Token(Kind.NUMBER, int(m.group()), pos, m.end())
    number = float(m.group())
    if not math.isfinite(number):
        raise QueryError(f"number out of range {at(text, pos)}", pos)
    return Token(Kind.NUMBER, number, pos, m.end())


def _micro(frac: str | None) -> int:
    """Microseconds of a fractional-seconds digit string (digits past the sixth are dropped)."""
    return int((frac or "0")[:6].ljust(6, "0"))


def _offset(zone: str, text: str, pos: int) -> dt.timezone:
    sign = -1 if zone[0] == "-" else 1
    hours, minutes = int(zone[1:3]), int(zone[4:6])
    if hours > 23 or minutes > 59:
        raise QueryError(f"invalid time zone offset {quote(zone)} {at(text, pos)}", pos)
    return dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))


def _checked(make: Callable[[], object], text: str, pos: int, what: str) -> object:
    """Build a date/time value; out-of-range fields (month 13, hour 25) become a QueryError."""
    try:
        return make()
    except ValueError:
        raise QueryError(f"invalid {what} {at(text, pos)}", pos) from None


def _typed(prefix: str, body: str, text: str, pos: int) -> object:
    """The value of ``duration'...'`` or ``geography'...'`` / ``geometry'...'``."""
    if prefix == "duration":
        return parse_duration(body, text, pos)
    try:
        return parse_wkt(body)
    except ValueError as e:
        raise QueryError(f"invalid {prefix} literal ({e}) {at(text, pos)}", pos) from None


def parse_duration(body: str, text: str, pos: int) -> dt.timedelta:
    """An ISO 8601 day-time duration (``P1DT2H30M``, ``PT0.5S``, ``-P1D``); years and months have no fixed length."""
    m = _DURATION.fullmatch(body)
    if m is None or not any(m.groups()[1:]) or body.endswith("T"):
        if re.search(r"\d+[YM]", body.split("T", maxsplit=1)[0]):
            raise QueryError(f"durations with years or months are not fixed lengths; use days {at(text, pos)}", pos)
        raise QueryError(f"invalid duration {quote(body)} (expected e.g. 'P1DT2H') {at(text, pos)}", pos)
    sign, weeks, days, hours, minutes, seconds = m.groups()
    try:
        value = dt.timedelta(weeks=int(weeks or 0), days=int(days or 0), hours=int(hours or 0),
                             minutes=int(minutes or 0), seconds=float(seconds or 0))
    except (OverflowError, ValueError):  # huge day counts; digit strings past int()'s limit
        raise QueryError(f"duration out of range {at(text, pos)}", pos) from None
    return -value if sign else value
