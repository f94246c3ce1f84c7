"""SenML (RFC 8428) packs decoded into columns: the hot path of every consumer of readings.

One pass over the parsed JSON resolves base fields and validates each record into four parallel
lists (full name, value, time, unit) with no object per record: building one frozen dataclass per
record cost ~2.5 us, ten times the JSON parse (performance.md). A bad record becomes a message in
``errors`` while the good ones around it are kept; a pack that cannot be read at all raises
SenMLError. ``core.senml.decode`` builds Reading objects from these columns for the few callers
that want objects.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from core import jsonfast
from core.numbers import finite_float

Value = float | bool | str

# RFC 8428 section 4.5.3: times below 2**28 are relative to the time of reception.
RELATIVE_TIME_LIMIT = 2**28
# Unix seconds beyond this (the year 5138) are not times; the check also rejects inf and nan,
# so that no consumer ever has to convert a non-finite time (it raised OverflowError in ingest).
MAX_ABS_TIME = 1e11
_INF = float("inf")


class SenMLError(ValueError):
    """A pack that cannot be read at all (not JSON, not a non-empty array, a bad sequence number)."""


@dataclass(slots=True)
class Columns:
    """A decoded pack: parallel columns of its good records, and a message per bad record.

    ``seq`` is the gateway's batch sequence number (contract v1 puts it in the first record), or
    None for a standard pack from a third-party SenML producer that carries none.
    """

    seq: int | None
    names: list[str] = field(default_factory=list)
    values: list[Value] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    units: list[str | None] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.names)


def finite_number(value: Any, key: str) -> float:
    """value as a finite float, or ValueError naming the key (bools are not numbers)."""
    number = finite_float(value)
    if number is None:
        raise ValueError(f"'{key}' must be a finite number: {str(value)[:40]}")
    return number


def parse_pack(payload: bytes | bytearray | memoryview | str) -> list[Any]:
    """Parse the JSON of a pack; raises SenMLError unless it is a non-empty array."""
    try:
        data = jsonfast.loads(payload if not isinstance(payload, memoryview) else bytes(payload))
    except ValueError as exc:
        raise SenMLError(f"not JSON: {str(exc)[:200]}") from None
    if type(data) is not list or not data:
        raise SenMLError("a SenML pack must be a non-empty JSON array")
    return data


def batch_seq(first: Any) -> int | None:
    """The batch sequence number of contract v1 (in the first record), or None; SenMLError if malformed."""
    if type(first) is not dict or "seq" not in first:
        return None
    seq = first["seq"]
    if type(seq) is not int or seq < 0:
        raise SenMLError(f"'seq' must be a non-negative integer: {seq!r}")
    return int(seq)


# One function on purpose: this loop runs for every reading the platform receives, and helper calls
# per record would cost more than the checks themselves.
def decode_columns(payload: bytes | bytearray | memoryview | str, now: float | None = None) -> Columns:  # noqa: PLR0915
    """Decode a pack into columns; bad records go to Columns.errors, the good ones are kept."""
    data = parse_pack(payload)
    cols = Columns(batch_seq(data[0]))
    names, values, times, units, errors = cols.names, cols.values, cols.times, cols.units, cols.errors
    base_name = ""
    base_time = 0.0
    base_unit: str | None = None
    received = time.time() if now is None else now
    for index, rec in enumerate(data):
        if type(rec) is not dict:
            errors.append(f"record {index}: not an object")
            continue
        try:
            # Base fields apply to this and all later records, so they are read before anything can fail.
            if "bn" in rec:
                bn = rec["bn"]
                if type(bn) is not str:
                    raise ValueError(f"'bn' must be a string: {bn!r}")
                base_name = bn
            if "bt" in rec:
                base_time = finite_number(rec["bt"], "bt")
            if "bu" in rec:
                bu = rec["bu"]
                if bu is not None and type(bu) is not str:
                    raise ValueError(f"'bu' must be a string: {bu!r}")
                base_unit = bu or None
            value: Value | None = rec.get("v")
            if value is not None:
                # The common case inline (a finite float); ints, bools and the rest go to finite_number.
                if type(value) is not float or not -_INF < value < _INF:
                    value = finite_number(value, "v")
            elif "vb" in rec:
                value = rec["vb"]
                if type(value) is not bool:
                    raise ValueError(f"'vb' must be a boolean: {value!r}")
            elif "vs" in rec:
                value = rec["vs"]
                if type(value) is not str:
                    raise ValueError(f"'vs' must be a string: {value!r}")
            elif "n" in rec:
                raise ValueError("record has no value (v, vb or vs)")
            else:
                continue  # a record that only sets base fields (or only seq) is legal
            n = rec.get("n", "")
            if type(n) is not str:
                raise ValueError(f"'n' must be a string: {n!r}")
            t = rec.get("t")
            if t is None:
                when = base_time
            elif type(t) is float and -_INF < t < _INF:
                when = base_time + t
            else:
                when = base_time + finite_number(t, "t")
            if when < RELATIVE_TIME_LIMIT:
                when += received
            if not -MAX_ABS_TIME < when < MAX_ABS_TIME:
                raise ValueError(f"time out of range: {when!r}")
            unit = rec.get("u", base_unit)
            if unit is not None and type(unit) is not str:
                raise ValueError(f"'u' must be a string: {unit!r}")
        except ValueError as exc:
            errors.append(f"record {index}: {exc}")
            continue
        names.append(base_name + n)
        values.append(value)
        times.append(when)
        units.append(unit or None)
    return cols
