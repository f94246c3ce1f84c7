"""The scalar reference of presence_dimming: one Python object per zone, one reading at a time.

It is written to be obviously right rather than fast, and shares no code with the vectorised
kernel except the rule and output types, so that tests comparing the two catch mistakes in
either. The benchmark runs it side by side with the kernel as the baseline. It numbers inputs
and zones by the same documented convention as the kernel (rules/zone_topology.py): inputs in
sorted (device, metric) order, zones in rule order then zone code.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from core.registry import Device, Registry
from rules.presence_dimming import ZoneChange
from rules.rule_file import PresenceDimmingRule, ZoneLevel
from rules.zone_topology import Target

T = TypeVar("T")


@dataclass(slots=True)
class ReferenceZone:
    """One zone of one rule and its state."""

    rule: PresenceDimmingRule
    code: str
    targets: list[Target] = field(default_factory=list)
    last_presence: float = -math.inf
    grace_start: float = 0.0
    last_level: int | None = None
    last_emit: float = -math.inf

    def update(self, value: float, ts: float) -> None:
        """Fold one reading of one of the zone's sensors into its state."""
        if value > 0 and ts > self.last_presence:
            self.last_presence = ts

    def evaluate(self, now: float) -> ZoneChange | None:
        """The change to emit at time now, if any."""
        rule = self.rule
        present = now - self.last_presence <= rule.hold_seconds
        in_grace = now - self.grace_start <= rule.hold_seconds
        if in_grace and not present:
            return None
        level = rule.on_level if present else rule.off_level
        changed = level != self.last_level
        due = rule.reassert_seconds > 0 and now - self.last_emit >= rule.reassert_seconds
        if not changed and not due:
            return None
        self.last_level = level
        self.last_emit = now
        return ZoneChange(rule.name, self.code, level, present, not changed, tuple(self.targets))


class ReferencePresenceDimming:
    """All presence_dimming rules evaluated zone by zone and reading by reading."""

    def __init__(self, rules: Sequence[PresenceDimmingRule], registry: Registry, start_time: float) -> None:
        self.zones: list[ReferenceZone] = []
        zone_by_key: dict[tuple[str, str], ReferenceZone] = {}
        # Rules by the gemeente they cover, so each device is matched against its own rules only.
        everywhere = [r for r in rules if r.gemeenten is None]
        by_gemeente: dict[str, list[PresenceDimmingRule]] = {}
        for r in rules:
            for g in r.gemeenten or ():
                by_gemeente.setdefault(g, []).append(r)
        order = {r.name: i for i, r in enumerate(rules)}

        def rules_of(device: Device) -> list[PresenceDimmingRule]:
            return everywhere + by_gemeente.get(device.gemeente, [])

        def code_of(rule: PresenceDimmingRule, device: Device) -> str:
            return device.wijk if rule.zone is ZoneLevel.WIJK else device.gemeente

        for device in sorted(registry.devices.values(), key=lambda d: d.id):
            for rule in rules_of(device):
                if device.kind == rule.target_kind:
                    key = (rule.name, code_of(rule, device))
                    if key not in zone_by_key:
                        zone_by_key[key] = ReferenceZone(rule, key[1], grace_start=float(start_time))
                    zone_by_key[key].targets.append(Target(device.id, device.gateway))
        self.zones = sorted(zone_by_key.values(), key=lambda z: (order[z.rule.name], z.code))
        zones_of_input: dict[tuple[str, str], list[ReferenceZone]] = {}
        for device in registry.devices.values():
            for rule in rules_of(device):
                zone = zone_by_key.get((rule.name, code_of(rule, device)))
                if device.kind == rule.sensor_kind and zone is not None:
                    zones_of_input.setdefault((device.id, rule.sensor_metric), []).append(zone)
        self.inputs = tuple(sorted(zones_of_input))
        self._zones_of_input = [zones_of_input[key] for key in self.inputs]

    def update(self, sensor: int, value: float, ts: float) -> None:
        """Fold one reading of input number sensor into the zones it feeds."""
        for zone in self._zones_of_input[sensor]:
            zone.update(value, ts)

    def update_many(self, sensor_idx: Iterable[int], values: Iterable[float], ts: Iterable[float]) -> None:
        """Fold readings one at a time; accepts numpy arrays or any iterables."""
        for sensor, value, t in zip(_items(sensor_idx), _items(values), _items(ts), strict=True):
            self.update(sensor, value, t)

    def evaluate(self, now: float) -> list[ZoneChange]:
        """The changes of all zones at time now, in zone order."""
        changes = []
        for zone in self.zones:
            change = zone.evaluate(now)
            if change is not None:
                changes.append(change)
        return changes


def _items(values: Iterable[T]) -> Iterable[T]:
    # numpy scalars compare like Python numbers but are several times slower to work with.
    tolist = getattr(values, "tolist", None)
    return tolist() if callable(tolist) else values
