"""Reloads of the rule file and the registry: a bad one is counted and the previous rules go on; state carries over."""

import json
import os
import time

import pytest

from core.registry import load
from rules import service as service_module
from tests.conftest import wait_for
from tests.rules.test_service import presence, rules_text, value

pytestmark = pytest.mark.integration


def rewrite(path, text):
    """Replace the file atomically with a later mtime, so that even a write within the same tick is a change.

    Written in place (truncate, write, then utime) the watcher could see two versions of one edit.
    """
    before = path.stat().st_mtime_ns
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    st = tmp.stat()
    os.utime(tmp, ns=(st.st_atime_ns, max(st.st_mtime_ns, before) + 1_000_000))
    os.replace(tmp, path)


def move_device(env, device, gateway, add_gateway=False):
    data = json.loads(env.city.registry.read_text())
    if add_gateway:
        data["features"].append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [4.45, 52.13]},
                                 "properties": {"role": "gateway", "id": gateway, "gemeente": "GM0626"}})
    for f in data["features"]:
        if f["properties"]["id"] == device:
            f["properties"]["gateway"] = gateway
    rewrite(env.city.registry, json.dumps(data))
    load(env.city.registry)  # the edit itself must be a valid registry


def test_a_bad_rule_file_keeps_the_previous_rules_running_and_a_later_fix_loads(env):
    service = env.start()
    rewrite(env.city.rules, "version = 2\n[[rules]]\nname = 'broken'\n")
    wait_for(lambda: value(service, "reload_failures") == 1, 5)
    time.sleep(0.3)
    assert value(service, "reload_failures") == 1  # one failure per bad edit, not one per check
    env.publish("gw-vs-01", presence("vs-oc-101"))
    wait_for(lambda: env.commands.count() == 3, 5)  # evaluation goes on, on the previous rules
    rewrite(env.city.rules, rules_text(on=100, off=35))  # only an action changed: the slot keeps its state
    wait_for(lambda: value(service, "reloads") == 1, 5)
    env.publish("gw-vs-01", presence("vs-oc-101", False, seq=1))
    wait_for(lambda: env.commands.count() == 6, 5)
    assert env.commands.levels()["vs-sl-101"] == [100, 35]
    assert value(service, "evaluation_errors") == 0


def test_a_reload_whose_build_raises_leaves_the_evaluator_running(env, monkeypatch):
    """The old timer thread died of one exception in a registry reload, and no rule was evaluated after it."""
    service = env.start()
    real_build = service_module.build
    calls = []

    def explode_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("a bug in the engine build")
        return real_build(*args, **kwargs)

    monkeypatch.setattr(service_module, "build", explode_once)
    move_device(env, "vs-sl-103", "gw-vs-01")  # a registry change (same content, new object) triggers a build
    wait_for(lambda: value(service, "reload_failures") == 1, 5)
    env.publish("gw-vs-01", presence("vs-oc-101"))
    wait_for(lambda: env.commands.count() == 3, 5)
    service.request_reload()  # SIGHUP: a later reload works
    wait_for(lambda: value(service, "reloads") == 1, 5)
    assert all(t.is_alive() for t in service._threads)
    assert service.health()["evaluator"] == "running"


def test_an_evaluation_that_raises_is_counted_and_the_next_one_runs(env, monkeypatch):
    service = env.start()
    engine = service.runtime.engine
    real = engine.evaluate
    failing = {"left": 5}

    def flaky(now):
        if failing["left"]:
            failing["left"] -= 1
            raise ValueError("a bug in one evaluation")
        return real(now)

    monkeypatch.setattr(engine, "evaluate", flaky)
    wait_for(lambda: value(service, "evaluation_errors") == 5, 5)
    env.publish("gw-vs-01", presence("vs-oc-101"))
    wait_for(lambda: env.commands.count() == 3, 5)


def test_a_registry_reload_moves_a_sensor_to_a_new_gateway_and_resubscribes(env):
    service = env.start()
    assert len(service.runtime.topics) == 2
    move_device(env, "vs-oc-101", "gw-test", add_gateway=True)
    wait_for(lambda: value(service, "reloads") == 1, 5)
    assert "smartcity/v1/gw/gw-test/readings" in service.runtime.topics
    env.publish("gw-vs-01", presence("vs-oc-101"))  # its old gateway no longer speaks for it
    wait_for(lambda: value(service, "wrong_gateway") == 1, 5)
    # Retained: delivered whether or not the service's new SUBSCRIBE has reached the broker yet.
    env.publish("gw-test", presence("vs-oc-101", seq=1), retain=True)
    wait_for(lambda: env.commands.count() == 3, 5)
    assert value(service, "readings_used") == 1


def test_state_carries_over_a_reload(env):
    """An active slot stays active over a reload that keeps its rule: no second activation."""
    service = env.start()
    env.publish("gw-vs-01", presence("vs-oc-101"))
    wait_for(lambda: env.commands.count() == 3, 5)
    service.request_reload()
    wait_for(lambda: value(service, "reloads") == 1, 5)
    env.publish("gw-vs-01", presence("vs-oc-101", seq=1))
    time.sleep(0.5)
    assert env.commands.count() == 3
    assert value(service, "readings_used") == 2


def test_a_rule_that_no_longer_fits_the_partition_is_a_failed_reload(env):
    service = env.start(partition=(0, 2), partition_by="gemeente")
    rewrite(env.city.rules, rules_text().replace('group_by = "wijk"', 'group_by = "kind"'))
    wait_for(lambda: value(service, "reload_failures") == 1, 5)
    env.publish("gw-vs-01", presence("vs-oc-101"))  # GM0626 is worker 0's
    wait_for(lambda: env.commands.count() == 3, 5)
