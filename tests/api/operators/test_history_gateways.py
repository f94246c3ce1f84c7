"""Command history with acks, dead letters (real influxd), and gateway provisioning (real mosquitto)."""

from __future__ import annotations

import time

import paho.mqtt.client as paho
import pytest

from core import mqtt, topics
from core.commands import Ack, AckStatus, Action, Command
from core.settings import MqttSettings
from core.topics import Channel
from ingest.dead_letters import DeadLetter, dead_letter_line
from ingest.points import ack_line, command_line
from tests.conftest import wait_for

pytestmark = pytest.mark.integration


def test_command_history_joins_the_acks(served, influx):
    now = time.time()
    c1 = Command("vs-sl-101", Action.DIM, {"level": 20}, "rule:presence-lighting", id="a" * 32, issued_at=now - 20)
    c2 = Command("vs-sl-102", Action.DIM, {"level": 50}, "operator:otto", id="b" * 32, issued_at=now - 10)
    influx.write("\n".join([
        command_line("gw-vs-01", c1), command_line("gw-vs-01", c2),
        ack_line("gw-vs-01", Ack(c1.id, c1.device, AckStatus.APPLIED), int((now - 19) * 1e6)),
        ack_line("gw-vs-01", Ack(c2.id, c2.device, AckStatus.REJECTED, "lamp offline"), int((now - 9) * 1e6)),
    ]), precision="u")
    with served.client("vera") as c:
        got = c.get("/v1/operator/commands").json()["commands"]
        mine = c.get("/v1/operator/commands", params={"origin": "operator:otto"}).json()["commands"]
        one = c.get("/v1/operator/commands", params={"device": "vs-sl-101"}).json()["commands"]
        bad = c.get("/v1/operator/commands", params={"device": "x' OR 1=1"})
    assert [(x["device"], x["origin"], x["params"]) for x in got] == [
        ("vs-sl-102", "operator:otto", {"level": 50.0}), ("vs-sl-101", "rule:presence-lighting", {"level": 20.0})]
    assert [(a["status"], a["detail"]) for a in got[0]["acks"]] == [("rejected", "lamp offline")]
    assert [a["status"] for a in got[1]["acks"]] == ["applied"]
    assert [x["id"] for x in mine] == [c2.id] and [x["id"] for x in one] == [c1.id]
    assert bad.status_code == 422


def test_dead_letters_are_listed_newest_first(served, influx):
    now = time.time()
    lines = [dead_letter_line(DeadLetter(now - 5, "gw-vs-01", "smartcity/v1/gw/gw-vs-01/readings", "bad_json", 1,
                                         "not JSON", "{oops"), int((now - 5) * 1e6)),
             dead_letter_line(DeadLetter(now - 2, "gw-ws-01", "smartcity/v1/gw/gw-ws-01/readings", "unknown_device",
                                         3, "no device zz-1", "[...]"), int((now - 2) * 1e6))]
    influx.write("\n".join(lines), precision="u")
    with served.client("vera") as c:
        got = c.get("/v1/operator/dead-letters").json()["dead_letters"]
        only = c.get("/v1/operator/dead-letters", params={"reason": "bad_json"}).json()["dead_letters"]
    assert [(d["gateway"], d["reason"], d["count"]) for d in got] == [("gw-ws-01", "unknown_device", 3),
                                                                      ("gw-vs-01", "bad_json", 1)]
    assert [d["payload_head"] for d in only] == ["{oops"]


def test_influx_down_is_503_without_its_address(served, influxd):
    influxd.stop()
    with served.client("vera") as c:
        resp = c.get("/v1/operator/commands")
    assert resp.status_code == 503
    assert influxd.url.split("//")[1] not in resp.text


def connect(broker, user, password):
    """A connected client (or None if the broker refused the login) and a flag set when it disconnects."""
    client = mqtt.new_client(MqttSettings(broker.host, broker.port, user, password), f"t-{user}-{time.time_ns()}")
    result = {}
    client.on_connect = lambda _c, _u, _f, rc, _p: result.setdefault("rc", rc)
    client.on_disconnect = lambda *_a: result.setdefault("gone", True)
    client.connect(broker.host, broker.port)
    client.loop_start()
    wait_for(lambda: "rc" in result, 5)
    return client, result


def test_revoke_then_provision_a_gateway_against_the_real_broker(served, broker):
    old_client, old = connect(broker, "gw-vs-01", broker.users["gw-vs-01"])
    assert not old["rc"].is_failure
    with served.client("ada") as c:
        listed = {g["id"]: g["provisioned"] for g in c.get("/v1/operator/gateways").json()["gateways"]}
        assert listed == {"gw-vs-01": True, "gw-ws-01": True}
        resp = c.delete("/v1/operator/gateways/gw-vs-01")
        assert resp.json() == {"gateway": "gw-vs-01", "revoked": True, "broker_reloaded": True}
        wait_for(lambda: old.get("gone"), 5)  # the broker dropped the revoked gateway's connection
        old_client.loop_stop()
        refused, r = connect(broker, "gw-vs-01", broker.users["gw-vs-01"])
        assert r["rc"].is_failure
        refused.loop_stop()
        created = c.post("/v1/operator/gateways", json={"gateway": "gw-vs-01"})
        assert created.status_code == 201, created.text
        password = created.json()["password"]
        assert len(password) >= 32
        assert c.post("/v1/operator/gateways", json={"gateway": "gw-vs-01"}).status_code == 409
    time.sleep(0.2)  # mosquitto handles SIGHUP in its main loop
    client, res = connect(broker, "gw-vs-01", password)
    assert not res["rc"].is_failure
    # the new account is confined to its own topics by the ACL's patterns
    info = client.publish(topics.topic("gw-vs-01", Channel.READINGS), b"[]", qos=1)
    info.wait_for_publish(5)
    assert info.rc == paho.MQTT_ERR_SUCCESS
    client.disconnect()
    client.loop_stop()
    assert password not in (broker.config_path.parent / "passwd").read_text()
    results = [(r.action, r.result) for r in reversed(served.app.state.audit.entries(10, who="ada"))
               if r.action.startswith("gateway.")]
    assert results == [("gateway.revoke", "ok"), ("gateway.provision", "ok"), ("gateway.provision", "conflict")]


@pytest.mark.parametrize(("method", "path", "body", "status"), [
    ("POST", "/v1/operator/gateways", {"gateway": "gw-not-in-registry"}, 404),
    ("POST", "/v1/operator/gateways", {"gateway": "ingest"}, 409),
    ("DELETE", "/v1/operator/gateways/rules", None, 409),
    ("DELETE", "/v1/operator/gateways/gw-unknown", None, 404),
    ("POST", "/v1/operator/gateways", {"gateway": "bad id!"}, 422),
])
def test_gateway_requests_that_cannot_be_done_are_refused(served, broker, method, path, body, status):  # noqa: PLR0917
    before = (broker.config_path.parent / "passwd").read_text()
    with served.client("ada") as c:
        assert c.request(method, path, json=body).status_code == status
    assert (broker.config_path.parent / "passwd").read_text() == before
