"""Everything the ingest needs to know about one SenML name, computed once per registry.

A reading's full name ``<device>/<metric>`` maps in one dict lookup to its gateway, its line
protocol prefix (measurement and escaped tags), its field key, its value type and unit, so the
per-record work on the hot path is a lookup and a few comparisons.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.kinds import KINDS, ValueType
from core.line_protocol import escape_measurement, escape_tag
from core.registry import Registry


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One datastream: a device's metric, as the ingest writes it."""

    device: str
    gateway: str
    prefix: str  # "street_light,device=...,gateway=...,gemeente=...,wijk=... "
    key: str  # escaped field key followed by "="
    boolean: bool
    unit: str | None


class SeriesTable:
    """name -> FieldSpec for every device x metric of a registry."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.specs: dict[str, FieldSpec] = {}
        for d in registry.devices.values():
            kind = KINDS[d.kind]
            tags = {"device": d.id, "gateway": d.gateway, "gemeente": d.gemeente, "wijk": d.wijk}
            tag_part = "".join(f",{k}={escape_tag(v)}" for k, v in sorted(tags.items()) if v)
            prefix = f"{escape_measurement(kind.name)}{tag_part} "
            for m in kind.metrics.values():
                self.specs[f"{d.id}/{m.name}"] = FieldSpec(d.id, d.gateway, prefix, f"{escape_tag(m.name)}=",
                                                           m.type is ValueType.BOOLEAN, m.unit)

    def why_unknown(self, name: str) -> tuple[str, str]:
        """The reject reason and message for a name that is not in the table."""
        device, sep, metric = name.partition("/")
        if not sep or not device or not metric:
            return "bad_name", f"name must be '<device>/<metric>': {name[:80]!r}"
        found = self.registry.devices.get(device)
        if found is None:
            return "unknown_device", f"unknown device {device[:64]!r}"
        return "unknown_metric", f"device {device!r} ({found.kind}): unknown metric {metric[:64]!r}"


class TableCache:
    """The table of the current registry, rebuilt only when the registry object changes."""

    def __init__(self) -> None:
        self._table: SeriesTable | None = None

    def get(self, registry: Registry) -> SeriesTable:
        """The table for registry (built on first use and after every reload)."""
        table = self._table
        if table is None or table.registry is not registry:
            table = self._table = SeriesTable(registry)
        return table
