"""Operators' control of the rules service (rules/operator_control.py) against real mosquitto.

A hold on (device, action) keeps the rules from sending that device that action until it ends; a
disabled rule is left out at the next reload, persistently; a reload request reloads at once.
"""

import time

import pytest

from rules.operator_control import Hold, add_holds, read_disabled, read_holds, release_hold, request_reload, set_enabled
from tests.conftest import wait_for
from tests.rules.test_service import WIJK_LIGHTS, presence, value

pytestmark = pytest.mark.integration


def test_a_hold_keeps_the_rules_off_that_device_until_it_ends(env, tmp_path):
    control = tmp_path / "control"
    add_holds(control, [Hold("vs-sl-101", "dim", time.time() + 1.5, "operator:otto", "c1")])
    service = env.start(control_dir=control)
    env.publish("gw-vs-01", presence("vs-oc-101"))
    wait_for(lambda: env.commands.count() == 2, 5)
    time.sleep(0.3)
    assert env.commands.levels() == {"vs-sl-102": [100], "vs-sl-103": [100]}  # vs-sl-101 is held
    assert value(service, "dispatch_held") == 1
    time.sleep(1.5)  # the hold has ended: the next transition reaches vs-sl-101 again
    env.publish("gw-vs-01", presence("vs-oc-101", False, seq=1))
    wait_for(lambda: env.commands.count() == 5, 5)
    assert env.commands.levels()["vs-sl-101"] == [20]


def test_a_hold_written_while_running_applies_to_the_next_dispatch(env, tmp_path):
    control = tmp_path / "control"
    env.start(control_dir=control)
    add_holds(control, [Hold(d, "dim", time.time() + 60) for d in WIJK_LIGHTS["WK062600"][:2]])
    env.publish("gw-vs-01", presence("vs-oc-101"))
    wait_for(lambda: env.commands.count() == 1, 5)
    time.sleep(0.3)
    assert env.commands.levels() == {"vs-sl-103": [100]}
    release_hold(control, "vs-sl-101", "dim")
    env.publish("gw-vs-01", presence("vs-oc-101", False, seq=1))
    wait_for(lambda: env.commands.count() == 3, 5)
    assert env.commands.levels() == {"vs-sl-101": [20], "vs-sl-103": [100, 20]}


def test_a_hold_on_another_action_does_not_stop_this_one(env, tmp_path):
    control = tmp_path / "control"
    add_holds(control, [Hold("vs-sl-101", "bike_priority", time.time() + 60)])
    env.start(control_dir=control)
    env.publish("gw-vs-01", presence("vs-oc-101"))
    wait_for(lambda: env.commands.count() == 3, 5)


def test_a_disabled_rule_sends_nothing_and_stays_disabled_across_a_restart(env, tmp_path):
    control = tmp_path / "control"
    service = env.start(control_dir=control)
    assert set_enabled(control, "presence-lighting", False, "otto")
    wait_for(lambda: len(service.runtime.ruleset.rules) == 0, 5)  # the overrides change is a reload
    assert service.link.subscriptions == []  # no rule reads readings any more
    env.publish("gw-vs-01", presence("vs-oc-101"))
    time.sleep(0.5)
    assert env.commands.count() == 0
    service.stop()
    again = env.start(control_dir=control, client_id="rules-test-2")
    assert [r.name for r in again.runtime.ruleset.rules] == []
    assert set_enabled(control, "presence-lighting", True, "otto")
    wait_for(lambda: [r.name for r in again.runtime.ruleset.rules] == ["presence-lighting"], 5)
    env.publish("gw-vs-01", presence("vs-oc-101", seq=1))
    wait_for(lambda: env.commands.count() == 3, 5)


def test_a_reload_request_reloads_the_rule_file(env, tmp_path):
    control = tmp_path / "control"
    service = env.start(control_dir=control, watch_interval=0.05)
    generation = service.runtime.generation
    request_reload(control)
    wait_for(lambda: service.runtime.generation > generation, 5)


def test_holds_file_keeps_the_latest_hold_and_drops_ended_ones(tmp_path):
    now = time.time()
    add_holds(tmp_path, [Hold("a", "dim", now + 10), Hold("b", "dim", now - 1)])
    add_holds(tmp_path, [Hold("a", "dim", now + 20, "x")])
    assert {k: h.until for k, h in read_holds(tmp_path).items()} == {("a", "dim"): now + 20}
    assert release_hold(tmp_path, "a", "dim").by == "x"
    assert release_hold(tmp_path, "a", "dim") is None
    assert not set_enabled(tmp_path, "r", True, "x")  # already enabled
    assert set_enabled(tmp_path, "r", False, "x") and read_disabled(tmp_path)["r"]["by"] == "x"
