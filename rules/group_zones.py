"""The gemeente and wijk a slot's group key stands for, as tags of its rule_event and alarm points.

Grafana's dashboards filter every panel by gemeente and wijk; a rule event or alarm can only be
filtered so if it carries them. The group key determines them for some ``group_by`` attributes:

- ``device`` and ``wijk``: the device's (the wijk's) gemeente and wijk;
- ``gemeente``: that gemeente only;
- ``gateway``: the registry's gemeente of the gateway (its devices may lie in several wijken);
- ``kind``, ``link``, ``classification``: neither (a slot spans the city).

Built once per registry load (service_build.build), so the dispatcher's per-event cost is a dict
lookup. ``guess`` serves callers that know the (rule, group) of an alarm but not the rule's
``group_by`` (an acknowledgement from the alarm store, an alarm of a rule since removed): registry
ids are unique over gateways and devices, and wijk and gemeente codes have their own CBS forms, so
the key itself says what it is; for the four attributes above it gives what ``of`` gives, so the
raised, acknowledged and cleared points of one alarm carry the same tags.
"""

from __future__ import annotations

from core.registry import GEMEENTE, WIJK, Registry

Zone = tuple[str | None, str | None]  # (gemeente, wijk); None: not determined by the slot
NO_ZONE: Zone = (None, None)


class GroupZones:
    """Group key -> (gemeente, wijk), for one registry."""

    def __init__(self, registry: Registry) -> None:
        self._device: dict[str, Zone] = {d.id: (d.gemeente, d.wijk) for d in registry.devices.values()}
        self._wijk: dict[str, Zone] = {}
        for d in sorted(registry.devices.values(), key=lambda d: d.id):
            # A wijk lies in one gemeente (its CBS code holds the gemeente's digits); the smallest
            # device id decides should a registry disagree, as a slot's leader does (rules/README.md).
            self._wijk.setdefault(d.wijk, (d.gemeente, d.wijk))
        self._gateway: dict[str, Zone] = {g.id: (g.gemeente, None) for g in registry.gateways.values()}

    def of(self, group_by: str, group: str) -> Zone:
        """The zone of the slot ``group`` of a rule with this group_by (NO_ZONE where it determines none)."""
        if group_by == "device":
            return self._device.get(group, NO_ZONE)
        if group_by == "wijk":
            return self._wijk.get(group, (None, group))
        if group_by == "gemeente":
            return (group, None)
        if group_by == "gateway":
            return self._gateway.get(group, NO_ZONE)
        return NO_ZONE

    def guess(self, group: str) -> Zone:
        """The zone of a group key whose rule's group_by is not known: by what the key is in the registry."""
        found = self._device.get(group) or self._gateway.get(group)
        if found is not None:
            return found
        if WIJK.match(group):
            return self.of("wijk", group)
        if GEMEENTE.match(group):
            return (group, None)
        return NO_ZONE

