"""Partitions of the city over rules workers: worker i of N owns the zones with crc32(code) % N == i.

A zone (partition unit) is a gemeente or a wijk code. A worker builds its engine on the registry
restricted to the devices of its zones and subscribes only to the gateways that feed them, so
with N workers every slot is evaluated by exactly one of them. That holds only if no slot and
no command target spans two zones: a rule grouping by a coarser attribute than the unit (say
``group_by = "gemeente"`` with ``--partition-by wijk``) would be split into partial groups, each
evaluated on a part of its members, so it is refused at start.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

from core.errors import ConfigError
from core.registry import Device, Registry
from rules.membership import lay_out
from rules.rule_model import CommandAction, RuleSet

UNITS = ("gemeente", "wijk")
# Attributes that never span two units of the partition: a group by one of them lies in one unit.
_WITHIN = {"gemeente": frozenset({"device", "wijk", "gemeente"}), "wijk": frozenset({"device", "wijk"})}
_SPEC = re.compile(r"^(\d+)/(\d+)$")


@dataclass(frozen=True, slots=True)
class Partition:
    """Which zones this worker owns: index of count, by gemeente or wijk code."""

    index: int = 0
    count: int = 1
    by: str = "gemeente"

    def __post_init__(self) -> None:
        if self.by not in UNITS:
            raise ConfigError(f"--partition-by must be one of {', '.join(UNITS)}: {self.by!r}")
        if not 0 <= self.index < self.count:
            raise ConfigError(f"--partition must be I/N with 0 <= I < N: {self.index}/{self.count}")

    @property
    def whole(self) -> bool:
        """True for the single worker that owns every zone."""
        return self.count == 1

    def unit(self, device: Device) -> str:
        """The zone code of a device."""
        return device.gemeente if self.by == "gemeente" else device.wijk

    def owns_unit(self, code: str) -> bool:
        """True if this worker owns the zone (crc32 is stable across processes, unlike hash())."""
        return self.whole or zlib.crc32(code.encode()) % self.count == self.index

    def owns(self, device: Device) -> bool:
        """True if the device's zone is this worker's."""
        return self.owns_unit(self.unit(device))

    def __str__(self) -> str:
        return f"{self.index}/{self.count} by {self.by}"


def parse_partition(spec: str, by: str = "gemeente") -> Partition:
    """``"I/N"`` (e.g. ``"0/2"``) as a Partition; raises ConfigError naming the option."""
    match = _SPEC.match(spec.strip())
    if match is None:
        raise ConfigError(f"--partition must be I/N, e.g. 0/2 (worker 0 of 2): {spec!r}")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1:
        raise ConfigError(f"--partition must be I/N with N >= 1: {spec!r}")
    return Partition(index, count, by)


def restrict(registry: Registry, partition: Partition) -> Registry:
    """The registry with only the partition's devices and the gateways that serve them."""
    if partition.whole:
        return registry
    devices = {ident: d for ident, d in registry.devices.items() if partition.owns(d)}
    used = {d.gateway for d in devices.values()}
    gateways = {ident: g for ident, g in registry.gateways.items() if ident in used}
    return Registry(gateways, devices, registry.map_year)


def check_rules(ruleset: RuleSet, registry: Registry, partition: Partition) -> None:
    """Raise ConfigError if a slot or its command targets of some rule would span two zones of the partition.

    Grouping (or targeting) by a coarser zone than the unit is refused outright, whatever the
    registry holds today; other attributes (gateway, kind, link, classification) are checked
    against the registry: such a rule is fine as long as its ``where`` keeps each slot in one zone.
    """
    if partition.whole:
        return
    within = _WITHIN[partition.by]
    for rule, layout in zip(ruleset.rules, lay_out(ruleset, registry), strict=True):
        sames = {rule.group_by} | {action.targets.same for action in (*rule.on_activate, *rule.on_clear)
                                   if isinstance(action, CommandAction) and action.targets.same != "group"}
        for same in sorted(sames & set(UNITS) - within):
            what = "groups by" if same == rule.group_by else "sends commands to the same"
            raise ConfigError(f"rule {rule.name!r} {what} {same!r}, a coarser zone than --partition-by "
                              f"{partition.by}: its {same} would be split between workers; partition by "
                              f"{same} or run one worker (--partition 0/1)")
        for s, group in enumerate(layout.groups):
            zones = {partition.unit(registry.devices[d]) for per_value in layout.members
                     for d, _metric in per_value[s]}
            zones |= {partition.unit(registry.devices[t.device]) for per_action in layout.targets.values()
                      for t in per_action[s]}
            if len(zones) > 1:
                raise ConfigError(
                    f"rule {rule.name!r}: its slot {group!r} ({rule.group_by}) spans several {partition.by} "
                    f"zones ({', '.join(sorted(zones)[:3])}): with --partition-by {partition.by} it would be "
                    f"split between workers; restrict the rule with `where`, partition by a coarser unit "
                    f"or run one worker (--partition 0/1)")
