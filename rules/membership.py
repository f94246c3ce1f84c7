"""Who belongs to which slot: a rule set laid over a registry, in plain Python, built once per (re)load.

The vectorised engine compiles this into index arrays; the action dispatcher reads the command
targets of each slot from it. Ordering follows rules/README.md ("Slots and groups"): slots in
sorted group-key order, member series in (device, metric) order, targets in device-id order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.kinds import KINDS
from core.registry import Device, Registry
from rules.rule_model import ANY, CommandAction, Rule, RuleSet, ValueSpec


def attribute(device: Device, name: str) -> str:
    """A registry attribute of a device by its rule-language name (``device`` is the id)."""
    if name == "device":
        return device.id
    return str(getattr(device, name))


def matches_where(rule: Rule, device: Device) -> bool:
    """True if the device passes every attribute filter of the rule."""
    return all(attribute(device, key) in allowed for key, allowed in rule.where.items())


def value_metrics(spec: ValueSpec, device: Device) -> list[str]:
    """The metrics of the device that the value reads (none if the kind does not match)."""
    if spec.kind not in (ANY, device.kind):
        return []
    metrics = KINDS[device.kind].metrics
    if spec.metric == ANY:
        return sorted(metrics)
    return [spec.metric] if spec.metric in metrics else []


@dataclass(frozen=True, slots=True)
class Target:
    """A device a command goes to, with the gateway that reaches it."""

    device: str
    gateway: str


@dataclass(frozen=True, slots=True)
class RuleSlots:
    """The slots of one rule: group keys, their attributes, member series per value, command targets."""

    rule: Rule
    groups: tuple[str, ...]
    leaders: tuple[Device, ...]  # per slot: the member with the smallest device id
    # members[v][s]: the (device, metric) series of value v in slot s, sorted
    members: tuple[tuple[tuple[tuple[str, str], ...], ...], ...]
    # targets[(event, action index)][s]: for command actions of on_activate / on_clear
    targets: dict[tuple[str, int], tuple[tuple[Target, ...], ...]]


class DeviceIndex:
    """The registry's devices by kind, and by (kind, attribute value) for the attributes rules filter on.

    A city file has 1,000 rules each scoped to a gemeente: scanning every device per rule made
    building quadratic (23 s for 1,000 rules over 150k devices); the index makes it linear.
    """

    def __init__(self, registry: Registry) -> None:
        self.by_kind = devices_by_kind(registry)
        self._by_attr: dict[str, dict[tuple[str, str], list[Device]]] = {}

    def candidates(self, rule: Rule, kinds: set[str]) -> list[Device]:
        """Devices of the kinds (ANY: all) that may match the rule's where, in device-id order per kind."""
        chosen = [k for k in kinds if k != ANY] if ANY not in kinds else sorted(self.by_kind)
        if not rule.where:
            return [d for k in chosen for d in self.by_kind.get(k, [])]
        key = min(rule.where, key=lambda a: len(rule.where[a]))  # the narrowest filter
        index = self._by_attr.get(key)
        if index is None:
            index = {}
            for k, devices in self.by_kind.items():
                for d in devices:
                    index.setdefault((k, attribute(d, key)), []).append(d)
            self._by_attr[key] = index
        return [d for k in chosen for value in sorted(rule.where[key]) for d in index.get((k, value), [])]


def _targets(rule: Rule, action: CommandAction, leaders: Sequence[Device],
             devices: DeviceIndex) -> tuple[tuple[Target, ...], ...]:
    same = rule.group_by if action.targets.same == "group" else action.targets.same
    index: dict[str, list[Target]] = {}
    for d in devices.candidates(rule, {action.targets.kind}):
        if matches_where(rule, d):
            index.setdefault(attribute(d, same), []).append(Target(d.id, d.gateway))
    out = []
    for leader in leaders:
        found = index.get(attribute(leader, same), [])
        out.append(tuple(sorted(found, key=lambda t: t.device)))
    return tuple(out)


def rule_slots(rule: Rule, registry: Registry, devices: DeviceIndex | None = None) -> RuleSlots:
    """Lay one rule over the registry."""
    if devices is None:
        devices = DeviceIndex(registry)
    candidates = devices.candidates(rule, {spec.kind for spec in rule.values})
    per_group: dict[str, list[list[tuple[str, str]]]] = {}
    leader: dict[str, Device] = {}
    for d in candidates:
        if not matches_where(rule, d):
            continue
        series = [[(d.id, m) for m in value_metrics(spec, d)] for spec in rule.values]
        if not any(series):
            continue
        key = attribute(d, rule.group_by)
        slot = per_group.setdefault(key, [[] for _ in rule.values])
        for v, found in enumerate(series):
            slot[v].extend(found)
        if key not in leader or d.id < leader[key].id:
            leader[key] = d
    groups = tuple(sorted(per_group))
    members = tuple(
        tuple(tuple(sorted(per_group[g][v])) for g in groups) for v in range(len(rule.values))
    )
    leaders = tuple(leader[g] for g in groups)
    targets: dict[tuple[str, int], tuple[tuple[Target, ...], ...]] = {}
    for event, actions in (("activate", rule.on_activate), ("clear", rule.on_clear)):
        for i, action in enumerate(actions):
            if isinstance(action, CommandAction):
                targets[event, i] = _targets(rule, action, leaders, devices)
    return RuleSlots(rule, groups, leaders, members, targets)


def devices_by_kind(registry: Registry) -> dict[str, list[Device]]:
    """The registry's devices by kind, each list in device-id order."""
    out: dict[str, list[Device]] = {}
    for d in sorted(registry.devices.values(), key=lambda d: d.id):
        out.setdefault(d.kind, []).append(d)
    return out


def lay_out(ruleset: RuleSet, registry: Registry) -> tuple[RuleSlots, ...]:
    """Every rule of the set over the registry, in rule order."""
    devices = DeviceIndex(registry)
    return tuple(rule_slots(rule, registry, devices) for rule in ruleset.rules)
