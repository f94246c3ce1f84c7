"""SenML (RFC 8428) JSON packs: the uplink batch of contract v1.

A pack carries the readings of many devices of one gateway. Each device's records start
with a base name ``"<device>/"``, so a record's full name is ``<device>/<metric>``. The
first record also carries ``"seq"``, the gateway's batch sequence number, an extension
field that generic SenML parsers ignore (RFC 8428 section 12.2: fields without a trailing
underscore may be skipped). A pack without ``seq`` (a third-party SenML producer) is accepted
and reported as unsequenced (``seq`` None).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from core import jsonfast
from core.senml_columns import SenMLError, Value, decode_columns

__all__ = ["Pack", "Reading", "SenMLError", "Value", "decode", "encode"]


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
    """A decoded pack: its sequence number (None if unsequenced), its good readings, a message per bad record."""

    seq: int | None
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


def decode(payload: bytes | bytearray | str, now: float | None = None) -> Pack:
    """Decode a pack into Reading objects; bad records are reported in Pack.errors, good ones kept.

    Hot paths (ingest, rules) use core.senml_columns.decode_columns directly and build no objects.
    """
    cols = decode_columns(payload, now)
    pack = Pack(cols.seq, errors=cols.errors)
    for name, value, when, unit in zip(cols.names, cols.values, cols.times, cols.units, strict=True):
        device, sep, metric = name.partition("/")
        if not sep or not device or not metric:
            pack.errors.append(f"name must be '<device>/<metric>': {name!r}")
            continue
        pack.readings.append(Reading(device, metric, value, when, unit))
    return pack
