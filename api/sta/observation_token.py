"""The keyset ``$skiptoken`` of Observation pages: where the previous page ended, not how many rows to skip.

A token is URL-safe base64 of a small JSON array ``[version, order, time_us, datastream, result?]``:
the sort key of the last row served and the order it was served in. The next page asks InfluxDB
for rows after that key (``time > last``), so a page a million rows deep costs what the first page
costs. Tokens are not signed: they name a position, not a permission (the Datastreams a page may
show are chosen from the request, never from the token), so a forged token can only move the
position. They are validated strictly instead: anything that is not a token of this order is a
QueryError (HTTP 400).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from api.sta.query.ast import QueryError

VERSION = 1
MAX_TOKEN = 1_200  # characters: a datastream id, a time and a result fit easily
MAX_ID = 500
# Times InfluxDB can hold (int64 nanoseconds from 1677 to 2262), in microseconds.
MIN_TIME_US, MAX_TIME_US = -9_223_372_036_854_775, 9_223_372_036_854_775


@dataclass(frozen=True, slots=True)
class Position:
    """The sort key of the last row of a page: its time, Datastream and (when ordering by result) result."""

    order: str
    time_us: int
    datastream: str
    result: Any = None


def encode(position: Position) -> str:
    """The token for a position."""
    body: list[Any] = [VERSION, position.order, position.time_us, position.datastream]
    if position.result is not None:
        body.append(position.result)
    raw = json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(token: str, order: str) -> Position:
    """The position a token names; QueryError when it is not a token of this service for this order."""
    bad = QueryError("$skiptoken is not a token this service gave for this query (follow @iot.nextLink as given)")
    if not token or len(token) > MAX_TOKEN:
        raise bad
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        body = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise bad from None
    if not isinstance(body, list) or len(body) not in (4, 5) or body[0] != VERSION or body[1] != order:
        raise bad
    time_us, datastream = body[2], body[3]
    if type(time_us) is not int or not MIN_TIME_US <= time_us <= MAX_TIME_US:
        raise bad
    if not isinstance(datastream, str) or not 0 < len(datastream) <= MAX_ID:
        raise bad
    result = body[4] if len(body) == 5 else None
    if result is not None and not isinstance(result, bool | int | float | str):
        raise bad
    if isinstance(result, str) and len(result) > MAX_ID:
        raise bad
    return Position(order, time_us, datastream, result)
