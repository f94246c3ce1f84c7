"""SenML packs decoded into numpy columns of only the series a consumer wants: the rules' hot path.

Same base-field and time semantics as core.senml_columns.decode_columns (bn/bt/bu, relative times,
MAX_ABS_TIME), but a record whose full name (bn + n) is not in ``names`` is skipped before any
value or time conversion: a rules worker reads ~13 % of a gateway's records (performance.md), and
converting the rest only to drop them would cost more than the parse. Selected records go to
plain lists (no object per record) and leave as numpy arrays: series index, value, time.

Two decoders give the same results. The fast one has msgspec decode the pack straight into typed
records of the SenML fields (~60 us for a 200-record gateway pack against ~85 us through orjson's
dicts, bench/senml_select_speed.py); it accepts only packs it can decode exactly as the orjson one
would, and returns None for every other pack (a field of the wrong type, an unknown field, a pack
that is not JSON, ...), which the orjson decoder then reads with its per-record errors and messages.
Such a pack costs both decodes (~120 us when the bad record is the last one).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Annotated, Any, NoReturn

import msgspec
import numpy as np
from msgspec import UNSET, UnsetType
from numpy.typing import NDArray

from core.senml_columns import MAX_ABS_TIME, RELATIVE_TIME_LIMIT, SenMLError, batch_seq, finite_number, parse_pack

__all__ = ["MAX_ERRORS", "Selected", "SenMLError", "decode_selected", "decode_selected_msgspec",
           "decode_selected_orjson"]

# Error messages kept per pack: a pack of 10,000 bad records must not become 10,000 strings.
MAX_ERRORS = 10
_INF = float("inf")
_EMPTY_SERIES: NDArray[np.intp] = np.empty(0, dtype=np.intp)
_EMPTY_FLOATS: NDArray[np.float64] = np.empty(0, dtype=np.float64)
_EMPTY_SERIES.flags.writeable = _EMPTY_FLOATS.flags.writeable = False  # shared by every empty result


@dataclass(slots=True)
class Selected:
    """The selected good records of a pack as columns, and counts of everything else.

    ``records`` is every record of the pack; ``not_used`` those whose name is not selected;
    ``bad_value`` selected records with a string value; ``bad_record`` records that break SenML
    (``errors`` holds the first MAX_ERRORS messages). Records that only set base fields count in
    none of the others. ``fast`` tells which decoder read the pack (the msgspec one, or orjson's).
    """

    seq: int | None
    series: NDArray[np.intp] = field(default_factory=lambda: _EMPTY_SERIES)
    values: NDArray[np.float64] = field(default_factory=lambda: _EMPTY_FLOATS)
    times: NDArray[np.float64] = field(default_factory=lambda: _EMPTY_FLOATS)
    records: int = 0
    not_used: int = 0
    bad_value: int = 0
    bad_record: int = 0
    errors: list[str] = field(default_factory=list)
    fast: bool = False

    def __len__(self) -> int:
        return len(self.series)


def _raise_unnamed(rec: dict[str, Any]) -> NoReturn:
    """Raise the error decode_columns gives a record whose 'n' is present but not a string."""
    # decode_columns checks the value before the name; the same order gives the same message.
    value = rec.get("v")
    if value is not None:
        if type(value) is not float or not -_INF < value < _INF:
            finite_number(value, "v")
    elif "vb" in rec:
        if type(rec["vb"]) is not bool:
            raise ValueError(f"'vb' must be a boolean: {rec['vb']!r}")
    elif "vs" in rec:
        if type(rec["vs"]) is not str:
            raise ValueError(f"'vs' must be a string: {rec['vs']!r}")
    else:
        raise ValueError("record has no value (v, vb or vs)")
    raise ValueError(f"'n' must be a string: {rec.get('n', '')!r}")


# The records the fast decoder accepts: every field typed as decode_columns requires it, and a
# present-but-null field typed out where null is not the same as absent (bn, bt, n, vb, vs, seq), so
# that such a record fails to decode instead of being read differently. A number field is a float:
# msgspec takes JSON ints for it but not booleans, and refuses a number beyond float range exactly
# where orjson does (orjson fails the whole pack on it, so the fast decoder must fail too).
# forbid_unknown_fields: msgspec skips an unknown field's value without the checks orjson makes
# (UTF-8, numbers beyond float range, nesting depth), so a pack with one goes to the orjson decoder;
# the other RFC 8428 fields are declared, and checked as orjson checks them, so that standard packs
# that carry them stay on the fast path. seq is bounded to int64: orjson reads larger integers as
# floats (then 'seq' is refused) or fails on them, so those packs are left to it.
_Seq = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]


class _Record(msgspec.Struct, gc=False, forbid_unknown_fields=True):
    bn: str | UnsetType = UNSET
    bt: float | UnsetType = UNSET
    bu: str | None = None
    n: str | UnsetType = UNSET
    u: str | None = None
    v: float | None = None
    vb: bool | UnsetType = UNSET
    vs: str | UnsetType = UNSET
    t: float | None = None
    seq: _Seq | UnsetType = UNSET
    # Read by nobody here; declared so that packs carrying them are still decoded fast.
    bv: float | None = None
    bs: float | None = None
    bver: float | None = None
    s: float | None = None
    ut: float | None = None
    vd: str | None = None


_DECODER = msgspec.json.Decoder(list[_Record])
# What msgspec raises on a pack it will not decode: a DecodeError (a ValueError, as is the
# UnicodeEncodeError of a str payload with lone surrogates), TypeError for a payload of the wrong type,
# BufferError for a non-contiguous memoryview, RecursionError in the unlikely case.
_NOT_DECODED = (ValueError, TypeError, BufferError, RecursionError)


def decode_selected(payload: bytes | bytearray | memoryview | str, names: dict[str, int],
                    now: float | None = None) -> Selected:
    """Decode the records of a pack whose full name is in names into (series, value, time) columns.

    The msgspec decoder when it can read the pack, else the orjson one; the same result either way.
    """
    received = time.time() if now is None else now
    out = decode_selected_msgspec(payload, names, received)
    return decode_selected_orjson(payload, names, received) if out is None else out


# One function on purpose, as decode_selected_orjson.
def decode_selected_msgspec(payload: bytes | bytearray | memoryview | str, names: dict[str, int],  # noqa: PLR0915
                            now: float | None = None) -> Selected | None:
    """decode_selected by typed msgspec decoding, or None for a pack that decode_selected_orjson must read."""
    try:
        data = _DECODER.decode(payload)
    except _NOT_DECODED:
        return None
    if not data:
        return None  # the orjson decoder raises the SenMLError
    seq = data[0].seq
    out = Selected(None if seq is UNSET else seq, records=len(data), fast=True)
    errors = out.errors
    series: list[int] = []
    values: list[float] = []
    times: list[float] = []
    lookup = names.get
    base_name = ""
    base_time = 0.0
    received = time.time() if now is None else now
    not_used = bad_value = bad_record = 0
    # The checks of decode_selected_orjson in the same order, less those the types make: msgspec
    # never gives a non-finite float, but the finite checks stay as a guard and give up, not differ.
    for index, rec in enumerate(data):
        bn = rec.bn
        if bn is not UNSET:
            base_name = bn
        bt = rec.bt
        if bt is not UNSET:
            if not -_INF < bt < _INF:
                return None
            base_time = bt
        n = rec.n
        if n is not UNSET:
            number = lookup(base_name + n)
        elif rec.v is None and rec.vb is UNSET and rec.vs is UNSET:
            continue  # a record that only sets base fields (or only seq) is legal
        else:
            number = lookup(base_name)
        if number is None:
            not_used += 1
            continue
        v = rec.v  # read only now: most records are not selected
        string = False
        if v is not None:
            if not -_INF < v < _INF:
                return None
            value = v
        elif rec.vb is not UNSET:
            value = 1.0 if rec.vb else 0.0
        elif rec.vs is not UNSET:
            string = True
            value = 0.0
        else:
            bad_record += 1
            if len(errors) < MAX_ERRORS:
                errors.append(f"record {index}: record has no value (v, vb or vs)")
            continue
        t = rec.t
        if t is None:
            when = base_time
        elif -_INF < t < _INF:
            when = base_time + t
        else:
            return None
        if when < RELATIVE_TIME_LIMIT:
            when += received
        if not -MAX_ABS_TIME < when < MAX_ABS_TIME:
            bad_record += 1
            if len(errors) < MAX_ERRORS:
                errors.append(f"record {index}: time out of range: {when!r}")
            continue
        if string:
            bad_value += 1
            continue
        series.append(number)
        values.append(value)
        times.append(when)
    out.not_used, out.bad_value, out.bad_record = not_used, bad_value, bad_record
    if series:
        out.series = np.array(series, dtype=np.intp)
        out.values = np.array(values, dtype=np.float64)
        out.times = np.array(times, dtype=np.float64)
    return out


# One function on purpose, as decode_columns: helper calls per record would cost more than the checks.
def decode_selected_orjson(payload: bytes | bytearray | memoryview | str, names: dict[str, int],  # noqa: PLR0915
                           now: float | None = None) -> Selected:
    """decode_selected by orjson: reads every pack, with a message per bad record and SenMLError."""
    data = parse_pack(payload)
    out = Selected(batch_seq(data[0]), records=len(data))
    errors = out.errors
    series: list[int] = []
    values: list[float] = []
    times: list[float] = []
    lookup = names.get
    base_name = ""
    base_time = 0.0
    received = time.time() if now is None else now
    not_used = bad_value = bad_record = 0
    for index, rec in enumerate(data):
        if type(rec) is not dict:
            bad_record += 1
            if len(errors) < MAX_ERRORS:
                errors.append(f"record {index}: not an object")
            continue
        try:
            # Base fields apply to later records too, so they are read (and checked) whatever the name.
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
            n = rec.get("n")
            if type(n) is str:
                number = lookup(base_name + n)
            elif "n" in rec:
                _raise_unnamed(rec)
            elif rec.get("v") is None and "vb" not in rec and "vs" not in rec:
                continue  # a record that only sets base fields (or only seq) is legal
            else:
                number = lookup(base_name)
            if number is None:
                not_used += 1
                continue
            value: Any = rec.get("v")
            string = False
            if value is not None:
                if type(value) is not float or not -_INF < value < _INF:
                    value = finite_number(value, "v")
            elif "vb" in rec:
                value = rec["vb"]
                if type(value) is not bool:
                    raise ValueError(f"'vb' must be a boolean: {value!r}")
                value = 1.0 if value else 0.0
            elif "vs" in rec:
                if type(rec["vs"]) is not str:
                    raise ValueError(f"'vs' must be a string: {rec['vs']!r}")
                string = True
            else:
                raise ValueError("record has no value (v, vb or vs)")
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
            unit = rec.get("u")
            if unit is not None and type(unit) is not str:
                raise ValueError(f"'u' must be a string: {unit!r}")
        except ValueError as exc:
            bad_record += 1
            if len(errors) < MAX_ERRORS:
                errors.append(f"record {index}: {exc}")
            continue
        if string:
            bad_value += 1  # checked in full first: a string with a bad time is a bad record, as in decode_columns
            continue
        series.append(number)
        values.append(value)
        times.append(when)
    out.not_used, out.bad_value, out.bad_record = not_used, bad_value, bad_record
    if series:
        out.series = np.array(series, dtype=np.intp)
        out.values = np.array(values, dtype=np.float64)
        out.times = np.array(times, dtype=np.float64)
    return out
