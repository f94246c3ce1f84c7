"""SenML (RFC 8428) JSON packs: the uplink batch of contract v1.

A pack carries the readings of many devices of one gateway. Each device's records start
with a base name ``"<device>/"``, so a record's full name is ``<device>/<metric>``. The
first record also carries ``"seq"``, the gateway's batch sequence number, an extension
field that generic SenML parsers ignore (RFC 8428 section 12.2: fields without a trailing
underscore may be skipped).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from core import jsonfast

Value = float | bool | str


class SenMLError(ValueError):
    """A pack that cannot be read at all (not JSON, not an array, no sequence number)."""


@dataclass(frozen=True, slots=True)
class Reading:
    """One measured value of one device at one time (unix seconds)."""

    device: str
    metric: str
    value: Value
    time: float
    unit: str | None = None


@dataclass(slots=True)
class Pack:
    """A decoded pack: its sequence number, its good readings, and a message per bad record."""

    seq: int
    readings: list[Reading] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def encode(readings: Iterable[Reading], seq: int) -> bytes:
    """Encode readings as one SenML pack, grouping records per device under a base name."""
    by_device: dict[str, list[Reading]] = {}
    for r in readings:
        by_device.setdefault(r.device, []).append(r)
    if not by_device:
        return jsonfast.dumps([{"seq": seq}])
    base_time = min(r.time for rs in by_device.values() for r in rs)
    records: list[dict[str, Any]] = []
    for device, rs in by_device.items():
        for i, r in enumerate(rs):
            rec: dict[str, Any] = {"n": r.metric}
            if i == 0:
                rec["bn"] = f"{device}/"
            if not records:
                rec["bt"] = base_time
                rec["seq"] = seq
            if r.time != base_time:
                rec["t"] = round(r.time - base_time, 6)
            if r.unit:
                rec["u"] = r.unit
            if isinstance(r.value, bool):
                rec["vb"] = r.value
            elif isinstance(r.value, str):
                rec["vs"] = r.value
            else:
                rec["v"] = r.value
            records.append(rec)
    return jsonfast.dumps(records)


def _record_value(rec: dict[str, Any]) -> Value:
    if "v" in rec:
        v = rec["v"]
        # bool is an int subclass: {"v": true} is a type error, not the number 1.
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ValueError(f"'v' must be a finite number: {v!r}")
        return float(v)
    if "vb" in rec:
        if not isinstance(rec["vb"], bool):
            raise ValueError(f"'vb' must be a boolean: {rec['vb']!r}")
        return bool(rec["vb"])
    if "vs" in rec:
        if not isinstance(rec["vs"], str):
            raise ValueError(f"'vs' must be a string: {rec['vs']!r}")
        return str(rec["vs"])
    raise ValueError("record has no value (v, vb or vs)")


# RFC 8428 section 4.5.3: times below 2**28 are relative to the time of reception.
RELATIVE_TIME_LIMIT = 2**28


def decode(payload: bytes | bytearray | str, now: float | None = None) -> Pack:
    """Decode a pack; bad records are reported in Pack.errors while the good ones are kept."""
    try:
        data = jsonfast.loads(payload)
    except ValueError as exc:
        raise SenMLError(f"not JSON: {exc}") from None
    if not isinstance(data, list) or not data:
        raise SenMLError("a SenML pack must be a non-empty JSON array")
    first = data[0]
    seq = first.get("seq") if isinstance(first, dict) else None
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        raise SenMLError(f"first record must carry a non-negative integer 'seq': {seq!r}")
    pack = Pack(seq=seq)
    base_name = ""
    base_time = 0.0
    base_unit: str | None = None
    for index, rec in enumerate(data):
        if not isinstance(rec, dict):
            pack.errors.append(f"record {index}: not an object")
            continue
        try:
            # Base fields apply to this and all later records, so read them before anything can fail.
            if "bn" in rec:
                if not isinstance(rec["bn"], str):
                    raise ValueError(f"'bn' must be a string: {rec['bn']!r}")
                base_name = rec["bn"]
            if "bt" in rec:
                bt = rec["bt"]
                if isinstance(bt, bool) or not isinstance(bt, int | float):
                    raise ValueError(f"'bt' must be a number: {bt!r}")
                base_time = float(bt)
            if "bu" in rec:
                base_unit = rec["bu"] if isinstance(rec["bu"], str) else None
            if not any(k in rec for k in ("v", "vb", "vs")) and "n" not in rec:
                continue  # a record that only sets base fields (or only seq) is legal
            name = base_name + str(rec.get("n", ""))
            device, sep, metric = name.partition("/")
            if not sep or not device or not metric:
                raise ValueError(f"name must be '<device>/<metric>': {name!r}")
            t = rec.get("t", 0.0)
            if isinstance(t, bool) or not isinstance(t, int | float):
                raise ValueError(f"'t' must be a number: {t!r}")
            unit = rec.get("u", base_unit)
            when = base_time + float(t)
            if when < RELATIVE_TIME_LIMIT:
                when += time.time() if now is None else now
            pack.readings.append(Reading(device, metric, _record_value(rec), when, unit if unit else None))
        except ValueError as exc:
            pack.errors.append(f"record {index}: {exc}")
    return pack
