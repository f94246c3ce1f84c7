"""Manual commands through the real broker, overriding the real rules service for the hold time."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from core import mqtt, topics
from core.commands import parse_command
from core.registry import WatchedRegistry
from core.topics import Channel
from rules.operator_control import read_holds
from rules.service import RulesService
from tests.conftest import settings_for, wait_for

pytestmark = pytest.mark.integration


class Commands:
    """Every command on any gateway's commands topic, as (gateway, Command)."""

    def __init__(self, client):
        self.got = []
        self._lock = threading.Lock()
        subscribed = threading.Event()
        client.on_message = self._on_message
        client.on_subscribe = lambda *_a: subscribed.set()
        client.subscribe(topics.subscription(Channel.COMMANDS), qos=1)
        wait_for(subscribed.is_set, 5)

    def _on_message(self, _c, _u, msg):
        with self._lock:
            self.got.append((topics.parse(msg.topic).gateway, parse_command(msg.payload)))

    def of(self, device):
        with self._lock:
            return [c for _g, c in self.got if c.device == device]

    def count(self):
        with self._lock:
            return len(self.got)


@pytest.fixture
def commands(mqtt_client):
    return Commands(mqtt_client("operator"))


def test_a_command_to_a_device_reaches_its_gateway_with_the_operators_origin(served, commands):
    with served.client("otto") as c:
        resp = c.post("/v1/operator/commands", json={"device": "vs-sl-101", "action": "dim", "params": {"level": 35},
                                                     "hold": 600})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert [(r["device"], r["gateway"], r["status"]) for r in body["commands"]] == [("vs-sl-101", "gw-vs-01", "sent")]
    wait_for(lambda: commands.of("vs-sl-101"), 5)
    cmd = commands.of("vs-sl-101")[0]
    assert cmd.origin == "operator:otto" and cmd.params == {"level": 35} and cmd.id == body["commands"][0]["id"]
    holds = read_holds(Path(served.settings.alarms_path).parent)
    assert holds["vs-sl-101", "dim"].until == pytest.approx(time.time() + 600, abs=5)
    assert holds["vs-sl-101", "dim"].by == "operator:otto"
    row = served.app.state.audit.entries(5, who="otto", action="command.send")[0]
    assert (row.target, row.result) == ("vs-sl-101", "ok")
    assert "dim" in row.detail and "1/1" in row.detail


def test_a_group_command_goes_to_every_device_of_the_wijk_that_accepts_it(served, commands):
    with served.client("otto") as c:
        resp = c.post("/v1/operator/commands", json={"wijk": "WK062600", "action": "dim", "params": {"level": 0}})
    assert resp.status_code == 200, resp.text
    devices = sorted(r["device"] for r in resp.json()["commands"])
    assert devices == ["vs-sl-101", "vs-sl-102", "vs-sl-103"]  # the wijk's occupancy sensors take no dim
    wait_for(lambda: commands.count() == 3, 5)
    assert served.app.state.audit.entries(5, action="command.send")[0].target == "wijk=WK062600"


@pytest.mark.parametrize(("body", "status", "text"), [
    ({"device": "vs-sl-101", "action": "dim", "params": {"level": 400}}, 400, "0-100"),
    ({"device": "vs-sl-101", "action": "bike_priority", "params": {"enabled": True}}, 400, "does not accept"),
    ({"device": "nope-1", "action": "dim", "params": {"level": 1}}, 404, "no device"),
    ({"gemeente": "GM9999", "action": "dim", "params": {"level": 1}}, 404, "no device"),
    ({"device": "vs-sl-101", "wijk": "WK062600", "action": "dim", "params": {"level": 1}}, 400, "either"),
    ({"action": "dim", "params": {"level": 1}}, 400, "either"),
    ({"kind": "rain_gauge", "action": "dim", "params": {"level": 1}}, 400, "do not accept"),
    ({"device": "vs-sl-101", "action": "explode"}, 422, ""),
    ({"device": "vs-sl-101", "action": "dim", "params": {"level": 1}, "hold": -1}, 422, ""),
])
def test_bad_commands_are_refused_with_a_reason_and_nothing_is_sent(served, commands, body, status, text):
    with served.client("otto") as c:
        resp = c.post("/v1/operator/commands", json=body)
    assert resp.status_code == status, resp.text
    assert text in resp.text
    time.sleep(0.2)
    assert commands.count() == 0
    assert not read_holds(Path(served.settings.alarms_path).parent)


def test_broker_down_answers_503_and_releases_the_hold(served, broker):
    broker.stop()
    with served.client("otto") as c:
        resp = c.post("/v1/operator/commands", json={"device": "vs-sl-101", "action": "dim", "params": {"level": 5}})
    assert resp.status_code == 503
    assert "broker" in resp.json()["detail"] and "127.0.0.1" not in resp.text
    assert not read_holds(Path(served.settings.alarms_path).parent)
    assert served.app.state.audit.entries(5, action="command.send")[0].result == "failed"


def test_the_manual_command_overrides_the_rules_until_the_hold_ends(served, commands, broker, tmp_path):
    """The rules service (real, on the same broker and control directory) leaves a held light alone."""
    registry = WatchedRegistry(served.settings.registry_path, 0.05)
    rules = RulesService(settings_for(broker, "rules"), served.settings.rules_path, registry, client_id="rules-t",
                         state_dir=tmp_path / "rules-state", watch_interval=0.05,
                         control_dir=Path(served.settings.alarms_path).parent)
    rules.start()
    try:
        wait_for(rules.link.subscribed.is_set, 10)
        with served.client("otto") as c:
            assert c.post("/v1/operator/commands", json={"device": "vs-sl-101", "action": "dim",
                                                         "params": {"level": 42}, "hold": 2}).status_code == 200
        wait_for(lambda: commands.of("vs-sl-101"), 5)
        publish_presence(broker, True, 0)
        wait_for(lambda: len(commands.of("vs-sl-102")) == 1, 5)  # the rule fired for the wijk
        time.sleep(0.3)
        assert [c.origin for c in commands.of("vs-sl-101")] == ["operator:otto"]  # but not for the held light
        assert rules.metrics.value("dispatch_held") == 1
        time.sleep(2)  # the hold ends
        publish_presence(broker, False, 1)
        wait_for(lambda: len(commands.of("vs-sl-101")) == 2, 5)
        assert commands.of("vs-sl-101")[-1].origin == "rule:presence-lighting"
    finally:
        rules.stop()


def publish_presence(broker, value, seq):
    client = mqtt.new_client(settings_for(broker, "gw-vs-01"), f"gw-test-{seq}")
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        payload = json.dumps([{"bn": "vs-oc-101/", "n": "presence", "vb": value, "seq": seq}]).encode()
        info = client.publish(topics.topic("gw-vs-01", Channel.READINGS), payload, qos=1)
        info.wait_for_publish(5)
        assert info.rc == paho.MQTT_ERR_SUCCESS
    finally:
        client.disconnect()
        client.loop_stop()


def test_holds_are_listed_and_released(served):
    with served.client("otto") as c:
        c.post("/v1/operator/commands", json={"device": "vs-sl-101", "action": "dim", "params": {"level": 9}})
        holds = c.get("/v1/operator/holds").json()["holds"]
        assert [(h["device"], h["action"], h["by"]) for h in holds] == [("vs-sl-101", "dim", "operator:otto")]
        assert c.delete("/v1/operator/holds/vs-sl-101/dim").status_code == 200
        assert c.get("/v1/operator/holds").json()["holds"] == []
        assert c.delete("/v1/operator/holds/vs-sl-101/dim").status_code == 404
    results = [r.result for r in served.app.state.audit.entries(10, action="hold.release")]
    assert results == ["not found", "ok"]
