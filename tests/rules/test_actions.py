"""The action dispatcher: commands to the right targets in the contract's form, alarms, webhooks, events."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.commands import Action, parse_command
from core.influx import InfluxClient, InfluxConfig
from core.mqtt_service import PublishError
from core.registry import Registry
from rules.actions import ActionDispatcher
from rules.alarm_store import AlarmState, AlarmStore
from rules.membership import lay_out
from rules.rule_events import RuleEventWriter
from rules.rule_model import (
    AlarmAction,
    Binary,
    CommandAction,
    Const,
    Expression,
    Name,
    Rule,
    RuleSet,
    Severity,
    TargetSpec,
    ValueSpec,
    WebhookAction,
)
from rules.transitions import Event, Transition
from rules.webhooks import WebhookSender
from tests.rules.city import SMALL, make_registry

NOW = 1_700_000_000.0
HOOK = "http://127.0.0.1:9/hook"


def when(name: str) -> Expression:
    return Expression(f"{name} > 0", Binary(">", Name(name), Const(0.0)))


PRESENCE = Rule(
    name="presence-lighting", kind="occupancy", group_by="wijk",
    values=(ValueSpec("presence", "occupancy", "presence"),), when=when("presence"), reassert_seconds=300.0,
    on_activate=(CommandAction("dim", {"level": 100}, TargetSpec("street_light")), WebhookAction(HOOK)),
    on_clear=(CommandAction("dim", {"level": 20}, TargetSpec("street_light")),),
)
LAMP = Rule(
    name="lamp-failure", kind="street_light", group_by="device", where={"gemeente": frozenset({"GM0002"})},
    values=(ValueSpec("failed", "street_light", "lamp_failure"),), when=when("failed"),
    on_activate=(AlarmAction("Lamp failure", Severity.MAJOR),
                 CommandAction("dim", {"level": 0}, TargetSpec("street_light", same="device"))),
)


class Collector:
    """A fake publish: records (gateway, payload); raises for the gateways told to fail."""

    def __init__(self, failing: frozenset[str] = frozenset()) -> None:
        self.sent: list[tuple[str, bytes]] = []
        self.failing = failing

    def __call__(self, gateway: str, payload: bytes) -> None:
        if gateway in self.failing:
            raise PublishError(f"{gateway}: publish refused: out of memory")
        self.sent.append((gateway, payload))

    def commands(self) -> list[tuple[str, str, object]]:
        out = []
        for gateway, payload in self.sent:
            cmd = parse_command(payload)
            out.append((gateway, cmd.device, cmd.params.get("level")))
        return out


@pytest.fixture
def city() -> Registry:
    return make_registry(SMALL)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[AlarmStore]:
    s = AlarmStore(tmp_path / "alarms.sqlite")
    yield s
    s.close()


def dispatcher(city: Registry, publish: Collector, **kwargs: object) -> ActionDispatcher:
    rs = RuleSet(2, (PRESENCE, LAMP), {}, "Europe/Amsterdam", "test")
    return ActionDispatcher(lay_out(rs, city), publish, **kwargs)  # type: ignore[arg-type]


def t(rule: Rule, group: str, event: Event, active: bool, **values: float) -> Transition:
    return Transition(rule.name, group, event, active, NOW - 1, values)


def test_activate_sends_the_commands_to_every_target_of_the_slot(city: Registry) -> None:
    publish = Collector()
    counts = dispatcher(city, publish).dispatch([t(PRESENCE, "WK000101", Event.ACTIVATE, True, presence=1.0)], NOW)
    assert publish.commands() == [("gw-WK000101-a", "sl-WK000101-0", 100), ("gw-WK000101-b", "sl-WK000101-1", 100),
                                  ("gw-WK000101-a", "sl-WK000101-2", 100)]
    assert counts.commands == 3 and counts.publish_failures == 0
    ids = set()
    for _, payload in publish.sent:
        cmd = parse_command(payload)
        assert (cmd.action, cmd.origin, cmd.issued_at, cmd.expires_at) == (Action.DIM, "rule:presence-lighting",
                                                                          NOW, NOW + 60)
        assert len(cmd.id) == 32 and int(cmd.id, 16) >= 0
        ids.add(cmd.id)
        assert cmd.to_json() == payload  # the same bytes as the Command path
    assert len(ids) == 3


def test_clear_sends_the_clear_commands(city: Registry) -> None:
    publish = Collector()
    dispatcher(city, publish, command_ttl=10.0).dispatch([t(PRESENCE, "WK000102", Event.CLEAR, False)], NOW)
    assert publish.commands() == [("gw-WK000102-a", "sl-WK000102-0", 20), ("gw-WK000102-b", "sl-WK000102-1", 20)]
    assert parse_command(publish.sent[0][1]).expires_at == NOW + 10.0


def test_targets_same_device(city: Registry, store: AlarmStore) -> None:
    publish = Collector()
    dispatcher(city, publish, alarms=store).dispatch([t(LAMP, "sl-WK000201-1", Event.ACTIVATE, True, failed=1.0)],
                                                     NOW)
    assert publish.commands() == [("gw-WK000201-b", "sl-WK000201-1", 0)]


def test_reassert_sends_the_commands_of_the_current_state_only(city: Registry, store: AlarmStore) -> None:
    publish = Collector()
    hooks = WebhookSender()  # not started: what it was given stays queued, for the test to see
    influx = InfluxClient(InfluxConfig("http://127.0.0.1:9", "unused"))
    events = RuleEventWriter(influx)  # not started either
    d = dispatcher(city, publish, alarms=store, webhooks=hooks, events=events)
    counts = d.dispatch([t(PRESENCE, "WK000101", Event.REASSERT, True), t(PRESENCE, "WK000102", Event.REASSERT, False),
                         t(LAMP, "sl-WK000201-0", Event.REASSERT, True)], NOW)
    assert [level for _, _, level in publish.commands()] == [100, 100, 100, 20, 20, 0]
    assert (counts.commands, counts.webhooks, counts.events, counts.alarms_raised) == (6, 0, 0, 0)
    assert (hooks.pending, events.pending, store.open_alarms()) == (0, 0, [])
    d.dispatch([t(PRESENCE, "WK000101", Event.ACTIVATE, True), t(PRESENCE, "WK000101", Event.CLEAR, False)], NOW)
    assert (hooks.pending, events.pending) == (1, 2)  # the webhook is in on_activate only; an event for both
    hooks.stop(0)
    events.stop(0)
    influx.close()


def test_alarm_lifecycle(city: Registry, store: AlarmStore) -> None:
    influx = InfluxClient(InfluxConfig("http://127.0.0.1:9", "unused"))
    events = RuleEventWriter(influx)
    d = dispatcher(city, Collector(), alarms=store, events=events)
    up = d.dispatch([t(LAMP, "sl-WK000201-0", Event.ACTIVATE, True, failed=1.0)], NOW)
    [alarm] = store.open_alarms()
    assert (alarm.rule, alarm.group, alarm.text, alarm.severity, alarm.values) == (
        "lamp-failure", "sl-WK000201-0", "Lamp failure", Severity.MAJOR, {"failed": 1.0})
    assert up.alarms_raised == 1 and events.pending == 2  # the rule event and the alarm's "raised"
    # After a restart the slot activates again (its state was lost): the open occurrence is kept, not doubled.
    again = dispatcher(city, Collector(), alarms=store).dispatch(
        [t(LAMP, "sl-WK000201-0", Event.ACTIVATE, True, failed=1.0)], NOW + 5)
    assert again.alarms_raised == 0 and len(store.open_alarms()) == 1
    down = d.dispatch([t(LAMP, "sl-WK000201-0", Event.CLEAR, False, failed=0.0)], NOW + 10)
    assert down.alarms_cleared == 1 and store.open_alarms() == []
    assert [s for s, _, _ in store.audit_trail(alarm.id)] == [AlarmState.RAISED, AlarmState.CLEARED]
    # A rule without an alarm action touches no alarm.
    assert d.dispatch([t(PRESENCE, "WK000101", Event.ACTIVATE, True)], NOW).alarms_raised == 0
    assert store.history(10) == [store.get(alarm.id)]
    events.stop(0)
    influx.close()


def test_a_publish_exception_is_counted_and_logged_never_raised(city: Registry,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    publish = Collector(failing=frozenset({"gw-WK000101-b"}))
    d = dispatcher(city, publish)
    with caplog.at_level(logging.WARNING, logger="rules.actions"):
        counts = d.dispatch([t(PRESENCE, "WK000101", Event.ACTIVATE, True)], NOW)
    assert (counts.commands, counts.publish_failures) == (2, 1)
    assert [device for _, device, _ in publish.commands()] == ["sl-WK000101-0", "sl-WK000101-2"]
    [record] = caplog.records
    assert "presence-lighting" in record.getMessage() and "sl-WK000101-1" in record.getMessage()
    assert d.totals.publish_failures == 1


def test_unknown_slots_are_counted_and_rebind_changes_the_layout(city: Registry) -> None:
    publish = Collector()
    d = dispatcher(city, publish)
    assert d.dispatch([t(PRESENCE, "WK999999", Event.ACTIVATE, True)], NOW).unknown_slots == 1
    d.rebind(lay_out(RuleSet(2, (LAMP,), {}, "Europe/Amsterdam", "test"), city))
    counts = d.dispatch([t(PRESENCE, "WK000101", Event.ACTIVATE, True), t(LAMP, "sl-WK000201-0", Event.ACTIVATE, True)],
                        NOW)
    assert (counts.unknown_slots, counts.commands) == (1, 1)
    assert d.totals.unknown_slots == 2


def test_many_commands_in_one_dispatch() -> None:
    """6,000 commands from one evaluation (the size the old Command path took 0.70 s for; see bench/)."""
    layout = {"GM0001": {f"WK0001{w:02d}": (1, 100) for w in range(60)}}
    registry = make_registry(layout)
    publish = Collector()
    d = dispatcher(registry, publish)
    counts = d.dispatch([t(PRESENCE, f"WK0001{w:02d}", Event.ACTIVATE, True) for w in range(60)], NOW)
    assert counts.commands == 6000 and len({p for _, p in publish.sent}) == 6000
