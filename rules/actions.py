"""What a transition does: commands to the slot's target devices, alarms, webhooks and rule events.

- activate: the commands of ``on_activate``, the rule's alarm raised, its webhooks, a rule event;
- clear: the commands of ``on_clear``, the rule's alarm cleared, the webhooks of ``on_clear``, a
  rule event;
- reassert: only the commands of the slot's current state (``on_activate`` when active, else
  ``on_clear``), as rules/README.md says.

Commands are built as plain dicts and serialised with orjson (core.jsonfast) in the wire form of
core.commands.Command.to_json: dataclasses.asdict on a Command costs several times more, and a
city-wide transition can send thousands. ``publish(gateway, payload)`` is the caller's (the
service publishes to the gateway's command topic); an exception from it is counted and logged,
never raised: one gateway's trouble must not stop the commands to the others, nor the engine.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields

from core import jsonfast
from rules.alarm_store import AlarmState, AlarmStore, AlarmStoreError
from rules.group_zones import NO_ZONE, GroupZones, Zone
from rules.membership import RuleSlots, Target
from rules.operator_control import Hold
from rules.rule_events import RuleEventWriter
from rules.rule_model import Action, AlarmAction, CommandAction, WebhookAction
from rules.transitions import Event, Transition
from rules.webhooks import WebhookSender

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes], None]
Holds = Callable[[], Mapping[tuple[str, str], Hold]]  # operators' holds by (device, action)
ACTIVATE, CLEAR = Event.ACTIVATE.value, Event.CLEAR.value


@dataclass(slots=True)
class DispatchCounts:
    """What one dispatch (or all of them, in ``ActionDispatcher.totals``) did."""

    commands: int = 0  # commands handed to publish without an exception
    publish_failures: int = 0
    alarms_raised: int = 0  # new occurrences (an already open one found again is not counted)
    alarms_cleared: int = 0
    alarm_failures: int = 0  # the alarm store could not be written
    webhooks: int = 0  # calls queued
    events: int = 0  # rule events queued
    unknown_slots: int = 0  # transitions for a (rule, group) not in the current layout (a reload raced)
    held: int = 0  # commands not sent: an operator's manual command holds that device and action

    def add(self, other: DispatchCounts) -> None:
        """Add other's counts to these."""
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


@dataclass(frozen=True, slots=True)
class _Commands:
    action: str
    params: dict[str, object]
    targets: tuple[tuple[Target, ...], ...]  # per slot


@dataclass(frozen=True, slots=True)
class _Plan:
    """A rule's actions, sorted by what they are, for each event."""

    origin: str
    commands: dict[str, tuple[_Commands, ...]]  # "activate" / "clear" -> command actions
    webhooks: dict[str, tuple[str, ...]]
    alarm: AlarmAction | None  # the first alarm action of on_activate (one alarm per slot)


def _plan(slots: RuleSlots) -> _Plan:
    rule = slots.rule
    commands: dict[str, tuple[_Commands, ...]] = {}
    webhooks: dict[str, tuple[str, ...]] = {}
    acts: tuple[tuple[str, tuple[Action, ...]], ...] = ((ACTIVATE, rule.on_activate), (CLEAR, rule.on_clear))
    for event, actions in acts:
        commands[event] = tuple(_Commands(a.action, a.params, slots.targets[event, i])
                                for i, a in enumerate(actions) if isinstance(a, CommandAction))
        webhooks[event] = tuple(a.url for a in actions if isinstance(a, WebhookAction))
    alarm = next((a for a in rule.on_activate if isinstance(a, AlarmAction)), None)
    return _Plan(f"rule:{rule.name}", commands, webhooks, alarm)


def _index(slots: Sequence[RuleSlots], zones: GroupZones | None) -> dict[tuple[str, str], tuple[_Plan, int, Zone]]:
    # The slot's zone (its rule events' and alarms' gemeente and wijk) is looked up here, once per layout.
    out: dict[tuple[str, str], tuple[_Plan, int, Zone]] = {}
    for rs in slots:
        plan = _plan(rs)
        for s, group in enumerate(rs.groups):
            out[rs.rule.name, group] = (plan, s, NO_ZONE if zones is None else zones.of(rs.rule.group_by, group))
    return out


class ActionDispatcher:
    """Turns transitions into commands, alarms, webhook calls and rule events; never raises."""

    def __init__(self, slots: Sequence[RuleSlots], publish: Publish, *, alarms: AlarmStore | None = None,
                 webhooks: WebhookSender | None = None, events: RuleEventWriter | None = None,
                 command_ttl: float = 60.0, holds: Holds | None = None, zones: GroupZones | None = None) -> None:
        self.publish = publish
        self.holds = holds
        self.alarms = alarms
        self.webhooks = webhooks
        self.events = events
        self.command_ttl = command_ttl
        self.totals = DispatchCounts()
        self._zones = zones
        self._index = _index(slots, zones)

    def rebind(self, slots: Sequence[RuleSlots], zones: GroupZones | None = None) -> None:
        """Use a new layout (after a reload of the rules or the registry), and its registry's zones if given."""
        if zones is not None:
            self._zones = zones
        # One assignment: a dispatch in progress keeps the layout it started with.
        self._index = _index(slots, self._zones)

    def _zone_of(self, rule: str, group: str) -> Zone:
        """An alarm's zone: its slot's, or (its rule gone) what the registry says the group key is."""
        found = self._index.get((rule, group))
        if found is not None:
            return found[2]
        return NO_ZONE if self._zones is None else self._zones.guess(group)

    def reconcile_alarms(self, slots: dict[tuple[str, str], bool], rules: set[str], now: float) -> int:
        """Clear open alarms no slot will ever clear: the rule is gone, or its slot here is inactive.

        A reload that changes a rule's condition starts its slots afresh (inactive), and a removed
        rule has no slots: either way the alarm's clear would never come. An alarm of a group this
        worker does not hold (another partition's) is left alone. Returns how many were cleared.
        """
        if self.alarms is None:
            return 0
        cleared = 0
        try:
            for alarm in self.alarms.open_alarms():
                key = (alarm.rule, alarm.group)
                if alarm.rule in rules and slots.get(key, True):
                    continue  # still active here, or a group of another worker
                if self.alarms.clear(alarm.rule, alarm.group, now) is None:
                    continue
                cleared += 1
                log.info("alarm %d of rule %s group %s cleared: %s", alarm.id, alarm.rule, alarm.group,
                         "the rule is gone" if alarm.rule not in rules else "its slot restarted inactive")
                if self.events is not None:
                    gemeente, wijk = self._zone_of(alarm.rule, alarm.group)
                    self.events.alarm(alarm.rule, alarm.group, alarm.severity, AlarmState.CLEARED, at=now,
                                      alarm_id=alarm.id, text=alarm.text, gemeente=gemeente, wijk=wijk)
        except AlarmStoreError as exc:
            self.totals.alarm_failures += 1
            log.error("open alarms not reconciled: %s", exc)
        self.totals.alarms_cleared += cleared
        return cleared

    def dispatch(self, transitions: Sequence[Transition], now: float) -> DispatchCounts:
        """Carry out the actions of the transitions, in order; returns what was done."""
        index = self._index
        counts = DispatchCounts()
        for t in transitions:
            found = index.get((t.rule, t.group))
            if found is None:
                counts.unknown_slots += 1
                log.warning("transition %s of rule %s for unknown group %s ignored", t.event.value, t.rule, t.group)
                continue
            plan, slot, zone = found
            if t.event is Event.REASSERT:
                self._commands(plan, ACTIVATE if t.active else CLEAR, slot, t, now, counts)
                continue
            which = t.event.value
            self._commands(plan, which, slot, t, now, counts)
            if plan.alarm is not None and self.alarms is not None:
                self._alarm(self.alarms, plan.alarm, t, zone, counts)
            if self.webhooks is not None:
                for url in plan.webhooks[which]:
                    self.webhooks.send(url, t)
                    counts.webhooks += 1
            if self.events is not None:
                self.events.transition(t, None if plan.alarm is None else plan.alarm.severity, gemeente=zone[0],
                                       wijk=zone[1])
                counts.events += 1
        self.totals.add(counts)
        return counts

    def _commands(self, plan: _Plan, which: str, slot: int, t: Transition, now: float,  # noqa: PLR0917
                  counts: DispatchCounts) -> None:
        actions = plan.commands[which]
        if not actions:
            return
        dumps = jsonfast.dumps
        publish = self.publish
        uuid4 = uuid.uuid4
        origin = plan.origin
        expires = now + self.command_ttl
        failures = 0
        first_failure = ""
        # Read once per transition: one stat of the holds file, a dict lookup per target.
        holds = self.holds() if self.holds is not None else None
        for cmd in actions:
            for target in cmd.targets[slot]:
                if holds:
                    hold = holds.get((target.device, cmd.action))
                    if hold is not None and hold.until > now:
                        counts.held += 1
                        continue
                try:
                    # The keys and order of Command.to_json (asdict order), so both paths give the same bytes.
                    payload = dumps({"device": target.device, "action": cmd.action, "params": cmd.params,
                                     "origin": origin, "id": uuid4().hex, "issued_at": now, "expires_at": expires})
                    publish(target.gateway, payload)
                except Exception as exc:  # publish is the caller's: whatever it raises is one command's failure
                    failures += 1
                    if not first_failure:
                        first_failure = f"device {target.device} on {target.gateway}: {type(exc).__name__}: {exc}"
                    log.debug("command %s of rule %s to device %s not published: %s", cmd.action, t.rule,
                              target.device, exc)
                else:
                    counts.commands += 1
        if failures:
            counts.publish_failures += failures
            # One line per transition, not one per device: a broker outage must not flood the log.
            log.warning("rule %s group %s (%s): %d commands not published; first: %s", t.rule, t.group,
                        t.event.value, failures, first_failure)

    def _alarm(self, store: AlarmStore, alarm: AlarmAction, t: Transition, zone: Zone,
               counts: DispatchCounts) -> None:
        try:
            if t.event is Event.ACTIVATE:
                alarm_id, new = store.raise_or_find(t.rule, t.group, alarm.text, alarm.severity, at=t.time,
                                                          values=t.values)
                state = AlarmState.RAISED
                if not new:  # open from before a restart: the same occurrence, no new lifecycle change
                    return
                counts.alarms_raised += 1
            else:
                cleared = store.clear(t.rule, t.group, t.time)
                if cleared is None:
                    return
                alarm_id, state = cleared, AlarmState.CLEARED
                counts.alarms_cleared += 1
        except AlarmStoreError as exc:
            counts.alarm_failures += 1
            log.error("alarm of rule %s group %s not %s: %s", t.rule, t.group,
                      "raised" if t.event is Event.ACTIVATE else "cleared", exc)
            return
        if self.events is not None:
            self.events.alarm(t.rule, t.group, alarm.severity, state, at=t.time, alarm_id=alarm_id, text=alarm.text,
                              gemeente=zone[0], wijk=zone[1])
