"""Which sensors and targets make up the zones of presence_dimming rules, as flat index arrays.

A *slot* is one (rule, zone) pair: the unit of state of the vectorised kernel. An *input* is one
(device, metric) series that feeds one or more slots. Inputs are numbered in sorted
(device, metric) order and slots in rule order, then zone code, so that any implementation
built from the same rules and registry numbers them the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from core.errors import ConfigError
from core.registry import Device, Registry
from rules.rule_file import PresenceDimmingRule, ZoneLevel


class RuleConflictError(ConfigError):
    """Two rules would command the same device; the latest command would win at random."""


@dataclass(frozen=True, slots=True)
class Target:
    """A device a rule commands, with the gateway that reaches it."""

    device: str
    gateway: str


@dataclass(frozen=True, slots=True)
class ZoneTopology:
    """The (rule, zone) slots, their targets, and the slots each input series feeds."""

    inputs: tuple[tuple[str, str], ...]  # (device, metric) per input index
    slot_keys: tuple[tuple[str, str], ...]  # (rule name, zone code) per slot
    slot_rule: npt.NDArray[np.intp]  # index into the rules sequence per slot
    slot_targets: tuple[tuple[Target, ...], ...]
    # The slots of input i are input_slots[input_indptr[i]:input_indptr[i + 1]] (CSR layout).
    input_indptr: npt.NDArray[np.intp]
    input_slots: npt.NDArray[np.intp]

    @property
    def one_slot_per_input(self) -> bool:
        """True when no series feeds more than one slot, so a plain gather maps inputs to slots."""
        return len(self.input_slots) == len(self.inputs)


def _zone_code(rule: PresenceDimmingRule, device: Device) -> str:
    return device.wijk if rule.zone is ZoneLevel.WIJK else device.gemeente


def _devices_by_kind_and_gemeente(registry: Registry) -> dict[tuple[str, str], list[Device]]:
    # Grouping once keeps building linear in devices + rules, not their product (1,000 rules x 100k devices).
    groups: dict[tuple[str, str], list[Device]] = {}
    for device in registry.devices.values():
        groups.setdefault((device.kind, device.gemeente), []).append(device)
    return groups


def _in_scope(rule: PresenceDimmingRule, kind: str,
              groups: dict[tuple[str, str], list[Device]]) -> list[Device]:
    if rule.gemeenten is None:
        return [d for (k, _), ds in groups.items() if k == kind for d in ds]
    return [d for g in rule.gemeenten for d in groups.get((kind, g), [])]


def build_topology(rules: Sequence[PresenceDimmingRule], registry: Registry) -> ZoneTopology:
    """Number the slots and inputs of the rules over the registry; raise RuleConflictError on overlap."""
    names = [r.name for r in rules]
    if len(set(names)) != len(names):
        # Slots are keyed by rule name (state carry-over, conflict messages): names must be unique.
        raise ValueError(f"rule names must be unique: {sorted(n for n in set(names) if names.count(n) > 1)}")
    groups = _devices_by_kind_and_gemeente(registry)
    claimed: dict[str, str] = {}
    slot_keys: list[tuple[str, str]] = []
    slot_rule: list[int] = []
    slot_targets: list[tuple[Target, ...]] = []
    slot_of: dict[tuple[int, str], int] = {}
    for ri, rule in enumerate(rules):
        zones: dict[str, list[Target]] = {}
        for d in _in_scope(rule, rule.target_kind, groups):
            owner = claimed.setdefault(d.id, rule.name)
            if owner != rule.name:
                raise RuleConflictError(f"rules {owner!r} and {rule.name!r} both command device {d.id!r}; "
                                        f"narrow their gemeenten so that each device has one rule")
            zones.setdefault(_zone_code(rule, d), []).append(Target(d.id, d.gateway))
        for code in sorted(zones):
            slot_of[ri, code] = len(slot_keys)
            slot_keys.append((rule.name, code))
            slot_rule.append(ri)
            slot_targets.append(tuple(sorted(zones[code], key=lambda t: t.device)))
    feeds: dict[tuple[str, str], list[int]] = {}
    for ri, rule in enumerate(rules):
        for d in _in_scope(rule, rule.sensor_kind, groups):
            # A sensor in a zone without targets has nothing to steer: it gets no input.
            slot = slot_of.get((ri, _zone_code(rule, d)))
            if slot is not None:
                feeds.setdefault((d.id, rule.sensor_metric), []).append(slot)
    inputs = tuple(sorted(feeds))
    counts = np.fromiter((len(feeds[k]) for k in inputs), dtype=np.intp, count=len(inputs))
    indptr = np.zeros(len(inputs) + 1, dtype=np.intp)
    np.cumsum(counts, out=indptr[1:])
    flat = np.fromiter((s for k in inputs for s in feeds[k]), dtype=np.intp, count=int(indptr[-1]))
    return ZoneTopology(inputs, tuple(slot_keys), np.asarray(slot_rule, dtype=np.intp),
                        tuple(slot_targets), indptr, flat)
