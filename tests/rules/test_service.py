"""The rules service against real mosquitto: readings in, commands out, and the defects of the rules issue.

RulesHarness (and the helpers above it) is what tests/rules/conftest.py builds every service test's ``env`` on.
"""

import json
import threading
import time
from types import SimpleNamespace

import httpx
import pytest

from core import topics
from core.commands import Action, parse_command
from core.mqtt_service import PublishError
from core.registry import WatchedRegistry
from core.status_http import StatusServer
from core.topics import Channel
from rules.service import RulesService
from smartcity.data import demo_registry_path
from tests.conftest import settings_for, wait_for

pytestmark = pytest.mark.integration

PRESENCE_RULES = """
version = 2

[[rules]]
name = "presence-lighting"
kind = "occupancy"
group_by = "wijk"
values.present = {{ metric = "presence" }}
when = "present > 0"
clear_when = "present == 0"
for = "{for_}"
urgent = {urgent}
on_activate = [{{ command = "dim", params = {{ level = {on} }}, targets = {{ kind = "street_light" }} }}]
on_clear = [{{ command = "dim", params = {{ level = {off} }}, targets = {{ kind = "street_light" }} }}]
"""
# The demo city's lights per wijk; *-sl-204/205 are LoRaWAN lights (through a network server).
WIJK_LIGHTS = {"WK062600": ["vs-sl-101", "vs-sl-102", "vs-sl-103"],
               "WK062601": ["vs-sl-201", "vs-sl-202", "vs-sl-203", "vs-sl-204", "vs-sl-205"],
               "WK062900": ["ws-sl-101", "ws-sl-102", "ws-sl-103"],
               "WK062901": ["ws-sl-201", "ws-sl-202", "ws-sl-203", "ws-sl-204", "ws-sl-205"]}


def rules_text(on=100, off=20, for_="0s", urgent=True):
    return PRESENCE_RULES.format(on=on, off=off, for_=for_, urgent="true" if urgent else "false")


def presence(device, value=True, t=None, seq=0):
    """A SenML pack with one presence reading (t None: relative time 0, i.e. now)."""
    rec = {"bn": f"{device}/", "n": "presence", "vb": value, "seq": seq}
    if t is not None:
        rec["t"] = t
    return json.dumps([rec]).encode()


class Commands:
    """Every command on any gateway's commands topic, as (gateway, Command, monotonic arrival time)."""

    def __init__(self, client):
        self.got = []
        self._lock = threading.Lock()
        self.subscribed = threading.Event()
        client.on_message = self._on_message
        client.on_subscribe = lambda *_args: self.subscribed.set()
        client.subscribe(topics.subscription(Channel.COMMANDS), qos=1)

    def _on_message(self, _client, _userdata, msg):
        with self._lock:
            self.got.append((topics.parse(msg.topic).gateway, parse_command(msg.payload), time.monotonic()))

    def levels(self):
        """device -> the dim levels it was sent, in order."""
        out = {}
        with self._lock:
            for _gw, cmd, _at in self.got:
                out.setdefault(cmd.device, []).append(cmd.params.get("level"))
        return out

    def count(self):
        with self._lock:
            return len(self.got)


class RulesHarness:
    """A test's city (copies of the demo registry and a rule file it may edit), its rules services and clients.

    Every module's ``env`` fixture builds one and closes it at teardown, which stops every service started.
    """

    def __init__(self, broker, mqtt_client, tmp_path):
        self.broker = broker
        registry = tmp_path / "registry.geojson"
        registry.write_bytes(demo_registry_path().read_bytes())
        rules = tmp_path / "rules.toml"
        rules.write_text(rules_text())
        self.city = SimpleNamespace(registry=registry, rules=rules, state=tmp_path / "state")
        self._mqtt_client = mqtt_client
        self._clients = {}
        self._started = []
        self.commands = Commands(mqtt_client("operator"))
        wait_for(self.commands.subscribed.is_set, 10)  # the SUBACK of the commands listener

    def start(self, user="rules", client_id="rules-test", connect=True, **options):
        """A started RulesService (as the broker account user) with the test's defaults for its options."""
        options = {"state_dir": self.city.state, "watch_interval": 0.05, "tick": 0.02, **options}
        service = RulesService(settings_for(self.broker, user), self.city.rules,
                               WatchedRegistry(self.city.registry, 0.05), client_id=client_id, **options)
        self._started.append(service)
        service.start()
        if connect:
            wait_for(service.connected.is_set, 10)
            wait_for(service.link.subscribed.is_set, 10)  # the SUBACK: nothing published from now is missed
        return service

    def publish(self, gateway, payload, retain=False):
        """Publish as that gateway's own account, on its readings topic, at QoS 1, and wait for the PUBACK.

        retain: the broker also hands the message to a subscription made after it (no race with a SUBSCRIBE).
        """
        if gateway not in self._clients:
            self._clients[gateway] = self._mqtt_client(gateway)
        topic = topics.topic(gateway, Channel.READINGS)
        self._clients[gateway].publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def close(self):
        for service in self._started:
            service.stop()


def value(service, name):
    return service.metrics.value(name)


def test_a_presence_reading_dims_the_wijks_lights_through_their_gateway(env):
    service = env.start()
    sent = time.monotonic()
    env.publish("gw-vs-01", presence("vs-oc-101"))
    wait_for(lambda: env.commands.count() == 3, 5)
    latency = max(at for _gw, _cmd, at in env.commands.got) - sent
    assert latency < 1.0, f"reading -> last command took {latency:.3f} s"
    assert {gw for gw, _c, _a in env.commands.got} == {"gw-vs-01"}
    assert env.commands.levels() == {d: [100] for d in WIJK_LIGHTS["WK062600"]}
    cmd = env.commands.got[0][1]
    assert cmd.action is Action.DIM and cmd.origin == "rule:presence-lighting"
    assert cmd.expires_at == pytest.approx(cmd.issued_at + 60)
    env.publish("gw-vs-01", presence("vs-oc-101", False, seq=1))
    wait_for(lambda: env.commands.count() == 6, 5)
    assert env.commands.levels() == {d: [100, 20] for d in WIJK_LIGHTS["WK062600"]}
    assert value(service, "readings_used") == 2 and value(service, "commands_published") == 6
    assert value(service, "transitions") == 2 and value(service, "evaluation_errors") == 0


def test_a_reading_from_another_gateway_is_refused_and_switches_nothing(env):
    """A gateway must not speak for another gateway's sensor (the old service took any gateway's word)."""
    service = env.start()
    env.publish("gw-ws-01", presence("vs-oc-101"))  # vs-oc-101 belongs to gw-vs-01
    wait_for(lambda: value(service, "wrong_gateway") == 1, 5)
    time.sleep(0.3)
    assert env.commands.count() == 0
    assert value(service, "readings_used") == 0
    env.publish("gw-vs-01", presence("vs-oc-101"))  # the same reading from its own gateway does count
    wait_for(lambda: env.commands.count() == 3, 5)


@pytest.mark.parametrize(("offset", "counter"), [(365 * 86400, "future"), (301, "future"), (-8 * 86400, "too_late")])
def test_a_reading_outside_the_time_bounds_is_refused(env, offset, counter):
    """One reading dated a year ahead once kept a wijk's lights at 100 % for a month."""
    service = env.start()
    env.publish("gw-vs-01", presence("vs-oc-101", t=time.time() + offset))
    wait_for(lambda: value(service, counter) == 1, 5)
    time.sleep(0.3)
    assert env.commands.count() == 0 and value(service, "readings_used") == 0
    env.publish("gw-vs-01", presence("vs-oc-101", t=time.time() + 200, seq=1))  # within the 300 s of skew
    wait_for(lambda: env.commands.count() == 3, 5)


def test_malformed_payloads_are_counted_and_never_raise(env):
    service = env.start()
    for payload in (b"\x00garbage" * 100, b'{"bn": "x"}', b"[]", b'[{"seq": -1}]', b"[" * 100_000):
        env.publish("gw-vs-01", payload)
    mixed = [{"bn": "vs-oc-101/", "n": "presence", "vb": "yes"},  # a bad record of a series in use
             {"bn": "vs-oc-201/", "n": "presence", "vs": "on"},  # a string value
             {"bn": "vs-sl-101/", "n": "power", "v": 5, "u": "W"},  # no rule reads it
             {"bn": "vs-oc-101/", "n": "presence", "vb": True, "t": 1e308}]  # time out of range
    env.publish("gw-vs-01", json.dumps(mixed).encode())
    wait_for(lambda: value(service, "bad_messages") == 5 and value(service, "bad_records") == 2, 5)
    assert value(service, "bad_value") == 1 and value(service, "not_used") == 1
    assert service.link.stats.callback_errors == 0 and value(service, "evaluation_errors") == 0
    env.publish("gw-vs-01", presence("vs-oc-101", seq=9))
    wait_for(lambda: env.commands.count() == 3, 5)


def test_a_command_the_broker_refuses_is_counted(env):
    """Run as a user whose ACL does not allow publishing commands: every command is refused by the broker."""
    service = env.start(user="ingest")
    env.publish("gw-vs-01", presence("vs-oc-101"))
    wait_for(lambda: value(service, "publish_failures") == 3, 5)
    assert value(service, "commands_published") == 3  # handed to MQTT, then refused in the PUBACK


def test_a_command_paho_refuses_is_counted(env, monkeypatch):
    service = env.start()
    def refuse(*_args, **_kwargs):
        raise PublishError("rules: queue full")

    monkeypatch.setattr(service.link, "publish", refuse)
    env.publish("gw-vs-01", presence("vs-oc-101"))
    wait_for(lambda: value(service, "publish_failures") == 3, 5)
    assert value(service, "commands_published") == 0 and value(service, "evaluation_errors") == 0


def test_metrics_and_health_503_while_disconnected(broker, env):
    service = env.start()
    status = StatusServer(service.metrics.registry, service.health)
    status.start()
    try:
        env.publish("gw-vs-01", presence("vs-oc-101"))
        wait_for(lambda: value(service, "commands_published") == 3, 5)
        text = httpx.get(f"{status.url}/metrics").text
        for name in ("messages", "readings_used", "not_used", "wrong_gateway", "too_late", "future", "bad_value",
                     "bad_records", "bad_messages", "evaluations", "evaluation_seconds", "transitions",
                     "commands_published", "publish_failures", "evaluation_errors", "reload_failures",
                     "snapshots", "engine_late_for_window"):
            assert f"smartcity_rules_{name}_total " in text, name
        assert "smartcity_rules_commands_published_total 3.0" in text
        assert "smartcity_rules_series 4.0" in text
        health = httpx.get(f"{status.url}/healthz")
        assert health.status_code == 200 and health.json()["mqtt"] == "connected"
        assert health.json()["series"] == 4 and health.json()["gateways"] == 2
        broker.stop()
        wait_for(lambda: httpx.get(f"{status.url}/healthz").status_code == 503, 10)
        assert httpx.get(f"{status.url}/healthz").json()["mqtt"] == "disconnected"
    finally:
        status.stop()
