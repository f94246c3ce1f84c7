"""What the open-data routes share: the public devices, their InfluxQL condition, and time handling.

Privacy is enforced twice (architecture.md, "Classification and privacy"): queries name only
the devices classified ``openbaar`` in their WHERE clause, and rows are checked against the same
set again before they are served, so a tag that somehow escaped the condition is still dropped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from fastapi import HTTPException

from core.kinds import KINDS, Classification, Kind
from core.registry import Device, Registry

# Device ids are checked against core.topics.ID_PATTERN when the registry loads, but the
# condition still quotes them properly: no text reaches InfluxQL unescaped.


def influx_string(value: str) -> str:
    """An InfluxQL single-quoted string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def public_devices(registry: Registry, kind: str | None = None) -> list[Device]:
    """The devices classified openbaar (of one kind, if given), sorted by id."""
    return sorted((d for d in registry.devices.values()
                   if d.classification is Classification.OPENBAAR and (kind is None or d.kind == kind)),
                  key=lambda d: d.id)


def device_condition(devices: Iterable[Device]) -> str:
    """``("device" = 'a' OR "device" = 'b')``; never empty (callers skip the query for no devices)."""
    terms = [f'"device" = {influx_string(d.id)}' for d in devices]
    if not terms:
        raise ValueError("no devices")
    return "(" + " OR ".join(terms) + ")"


def known_kind(kind: str) -> Kind:
    """The kind, or 404 naming the known ones (the name is cut short: it is client input)."""
    found = KINDS.get(kind)
    if found is None:
        raise HTTPException(404, f"unknown device kind {kind[:40]!r}; known: {', '.join(sorted(KINDS))}")
    return found


def utc(value: dt.datetime) -> dt.datetime:
    """value in UTC; a time without offset is taken as UTC."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def to_us(value: dt.datetime) -> int:
    """Microseconds since the epoch (InfluxDB's precision here)."""
    delta = utc(value) - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def iso_us(time_us: int) -> str:
    """ISO 8601 UTC with microseconds, e.g. 2026-12-01T10:00:00.250000Z."""
    when = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=time_us)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
