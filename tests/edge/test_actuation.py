"""Desired-state actuation on the gateway, with a fake radio (the real one is covered in the agent tests)."""

import threading
import time

import pytest

from core.commands import AckStatus, Action, Command
from core.kinds import KINDS
from core.registry import load
from edge.actuation import Actuator
from edge.downlinks import DOWNLINKS
from edge.edge_device import EdgeDevice
from smartcity.data import demo_registry_path
from tests.conftest import wait_for

DEVICES = {d.id: EdgeDevice.of(d) for d in load(demo_registry_path()).devices_of("gw-vs-01")}


class FakeRadio:
    def __init__(self, ok=True, delay=0.0):
        self.sent = []
        self.ok = ok
        self.delay = delay
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, device, command):
        self.gate.wait(5)
        time.sleep(self.delay)
        self.sent.append((device.id, command.params["level"]))
        return self.ok


@pytest.fixture
def actuator_parts():
    radio, acks = FakeRadio(), []
    act = Actuator(DEVICES, radio, acks.append, retry_interval=0.0)
    act.start()
    yield act, radio, acks
    act.stop()


def dim(device, level, **kw):
    return Command(device, Action.DIM, {"level": level}, "test", **kw)


def test_applied_is_acknowledged_only_once_the_light_reports_the_level(actuator_parts):
    """The edge issue: an "applied" ack meant only that the radio had transmitted."""
    act, radio, acks = actuator_parts
    cmd = dim("vs-sl-101", 20)
    act.submit(cmd)
    wait_for(lambda: radio.sent, 5)
    assert radio.sent == [("vs-sl-101", 20)]
    time.sleep(0.2)
    assert acks == []  # transmitted, not yet confirmed
    act.observe("vs-sl-101", "dim_level", 100.0)  # a report from before the light got it: no confirmation
    assert acks == []
    act.observe("vs-sl-101", "dim_level", 20.0)
    assert [(a.id, a.status) for a in acks] == [(cmd.id, AckStatus.APPLIED)]
    assert "reports dim_level 20 %" in acks[0].detail
    act.observe("vs-sl-101", "dim_level", 20.0)
    assert len(acks) == 1  # confirmed once


@pytest.mark.parametrize(("cmd", "detail"), [
    (dim("ws-sl-101", 20), "not on this gateway"),
    (dim("vs-oc-101", 20), "cannot dim"),
    (Command("vs-sl-101", Action.DIM, {"level": 300}, "t"), "0-100"),
])
def test_commands_that_cannot_apply_are_rejected_with_a_reason(actuator_parts, cmd, detail):
    act, radio, acks = actuator_parts
    act.submit(cmd)
    assert acks[0].status is AckStatus.REJECTED and detail in acks[0].detail
    assert radio.sent == []


def test_expired_commands_are_not_sent(actuator_parts):
    act, radio, acks = actuator_parts
    act.submit(dim("vs-sl-101", 20, expires_at=time.time() - 1))
    assert acks[0].status is AckStatus.EXPIRED
    assert radio.sent == []


def test_the_latest_command_wins_and_a_late_older_one_is_refused(actuator_parts):
    act, radio, acks = actuator_parts
    radio.gate.clear()  # hold the radio so that commands pile up
    act.submit(dim("vs-sl-102", 50))  # taken by the worker, blocked in the radio
    time.sleep(0.1)
    older = dim("vs-sl-101", 30, issued_at=time.time() - 10)
    newer = dim("vs-sl-101", 100)
    act.submit(dim("vs-sl-101", 60, issued_at=time.time() - 5))
    act.submit(newer)
    act.submit(older)
    radio.gate.set()
    wait_for(lambda: len(radio.sent) == 2, 5)
    assert radio.sent == [("vs-sl-102", 50), ("vs-sl-101", 100)]
    act.observe("vs-sl-101", "dim_level", 100.0)
    statuses = {a.detail.split(" ")[0]: a.status for a in acks}
    assert statuses["superseded"] is AckStatus.REJECTED
    assert [a.status for a in acks if a.id == newer.id] == [AckStatus.APPLIED]
    assert [a.status for a in acks if a.id == older.id] == [AckStatus.REJECTED]


def test_a_light_reporting_another_level_gets_the_desired_one_again(actuator_parts):
    act, radio, acks = actuator_parts
    act.submit(dim("vs-sl-101", 20))
    wait_for(lambda: len(radio.sent) == 1, 5)
    act.observe("vs-sl-101", "dim_level", 20.0)  # matches: confirmed, nothing to send
    time.sleep(0.1)
    assert len(radio.sent) == 1
    act.observe("vs-sl-101", "dim_level", 100.0)  # e.g. the light rebooted
    wait_for(lambda: len(radio.sent) == 2, 5)
    assert radio.sent[-1] == ("vs-sl-101", 20)
    assert len(acks) == 1  # a resend is not a new command


def test_a_transmission_the_radio_cannot_make_is_retried_then_failed_at_expiry():
    radio, acks = FakeRadio(ok=False), []
    act = Actuator(DEVICES, radio, acks.append, retry_interval=0.3)
    act.start()
    try:
        act.submit(dim("vs-sl-101", 20, expires_at=time.time() + 2.0))
        wait_for(lambda: acks, 6)
        assert acks[0].status is AckStatus.FAILED and "could not transmit" in acks[0].detail
        assert len(radio.sent) >= 3  # tried again every retry_interval until it expired
    finally:
        act.stop()


def test_a_radio_that_recovers_gets_the_command_out():
    radio, acks = FakeRadio(ok=False), []
    act = Actuator(DEVICES, radio, acks.append, retry_interval=0.2)
    act.start()
    try:
        act.submit(dim("vs-sl-101", 20))
        wait_for(lambda: len(radio.sent) >= 2, 5)
        radio.ok = True
        tries = len(radio.sent)
        wait_for(lambda: len(radio.sent) > tries, 5)
        act.observe("vs-sl-101", "dim_level", 20.0)
        assert [a.status for a in acks] == [AckStatus.APPLIED]
    finally:
        act.stop()


def test_sent_but_never_confirmed_is_acknowledged_as_expired():
    radio, acks = FakeRadio(), []
    act = Actuator(DEVICES, radio, acks.append, retry_interval=30)
    act.start()
    try:
        act.submit(dim("vs-sl-101", 20, expires_at=time.time() + 1.0))
        wait_for(lambda: radio.sent, 5)
        act.observe("vs-sl-101", "dim_level", 100.0)  # the light does not show the new level
        wait_for(lambda: acks, 5)
        assert acks[0].status is AckStatus.EXPIRED and "never reported" in acks[0].detail
    finally:
        act.stop()


def bike(device, enabled, **kw):
    return Command(device, Action.BIKE_PRIORITY, {"enabled": enabled}, "test", **kw)


def test_bike_priority_is_applied_once_the_controller_reports_it():
    sent, acks = [], []
    act = Actuator(DEVICES, lambda device, command: sent.append((device.id, command.params)) or True, acks.append,
                   retry_interval=0.0)
    act.start()
    try:
        cmd = bike("vs-tl-101", True)
        act.submit(cmd)
        wait_for(lambda: sent, 5)
        assert sent == [("vs-tl-101", {"enabled": True})]
        act.observe("vs-tl-101", "bike_priority", False)  # still the old cycle: not confirmed
        act.observe("vs-tl-101", "cycle_time", 110.0)  # not the confirming metric
        assert acks == []
        act.observe("vs-tl-101", "bike_priority", True)
        assert [(a.id, a.status) for a in acks] == [(cmd.id, AckStatus.APPLIED)]
        assert "reports bike_priority on" in acks[0].detail
    finally:
        act.stop()


@pytest.mark.parametrize(("cmd", "detail"), [
    (bike("vs-sl-101", True), "street_light, which cannot bike_priority"),
    (dim("vs-tl-101", 20), "traffic_light, which cannot dim"),
    (bike("vs-tl-101", "yes"), "params.enabled true or false"),
    (bike("vs-ps-201", True), "parking_spot, which cannot bike_priority"),
])
def test_actions_go_only_to_kinds_that_take_them(actuator_parts, cmd, detail):
    act, radio, acks = actuator_parts
    act.submit(cmd)
    assert acks[0].status is AckStatus.REJECTED and detail in acks[0].detail
    assert radio.sent == []


def test_every_action_a_kind_takes_has_a_downlink():
    for kind in KINDS.values():
        for action in kind.actions:
            assert DOWNLINKS[Action(action)].kind == kind.name
            assert DOWNLINKS[Action(action)].metric in kind.metrics
