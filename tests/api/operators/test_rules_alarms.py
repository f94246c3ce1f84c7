"""Rules (list / enable / disable / reload) and alarms (list / acknowledge) through the operator API."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest

from rules.alarm_store import AlarmStore
from rules.operator_control import OVERRIDES_FILE, RELOAD_FILE, read_disabled
from rules.rule_model import Severity

pytestmark = pytest.mark.integration


def control(served):
    return Path(served.settings.alarms_path).parent


def test_rules_are_listed_with_their_enabled_state(served):
    with served.client("vera") as c:
        rules = c.get("/v1/operator/rules").json()["rules"]
    assert [(r["name"], r["enabled"], r["kind"]) for r in rules] == [
        ("presence-lighting", True, "occupancy"), ("rain-bike-priority", True, "rain_gauge")]
    assert rules[0]["description"] == "Lights up where people are"


def test_disable_and_enable_are_persistent_and_audited(served):
    with served.client("otto") as c:
        resp = c.post("/v1/operator/rules/rain-bike-priority/disable")
        assert resp.json() == {"name": "rain-bike-priority", "enabled": False, "changed": True}
        assert read_disabled(control(served))["rain-bike-priority"]["by"] == "otto"
        listed = {r["name"]: r for r in c.get("/v1/operator/rules").json()["rules"]}
        assert listed["rain-bike-priority"]["enabled"] is False
        assert listed["rain-bike-priority"]["disabled_by"] == "otto"
        assert c.post("/v1/operator/rules/rain-bike-priority/disable").json()["changed"] is False
        assert c.post("/v1/operator/rules/rain-bike-priority/enable").json()["changed"] is True
    assert read_disabled(control(served)) == {}
    rows = [(r.action, r.target, r.result) for r in reversed(served.app.state.audit.entries(20, who="otto"))
            if r.action.startswith("rule.")]
    assert rows == [("rule.disable", "rain-bike-priority", "ok"), ("rule.disable", "rain-bike-priority", "unchanged"),
                    ("rule.enable", "rain-bike-priority", "ok")]


def test_unknown_rule_is_404(served):
    with served.client("otto") as c:
        resp = c.post("/v1/operator/rules/no-such-rule/disable")
    assert resp.status_code == 404
    assert not (control(served) / OVERRIDES_FILE).exists()


def test_reload_checks_the_file_and_writes_a_reload_request(served):
    with served.client("otto") as c:
        assert c.post("/v1/operator/rules/reload").json() == {"requested": True, "rules": 2}
    first = (control(served) / RELOAD_FILE).read_text()
    Path(served.settings.rules_path).write_text("version = 2\n[[rules]]\nname = 'x'\n")
    with served.client("otto") as c:
        resp = c.post("/v1/operator/rules/reload")
    assert resp.status_code == 422
    assert "does not load" in resp.json()["detail"]
    assert str(Path(served.settings.rules_path).parent) not in resp.text  # no internal paths
    assert (control(served) / RELOAD_FILE).read_text() == first  # a bad file is not sent to the service
    assert served.app.state.audit.entries(1, action="rules.reload")[0].result == "invalid"


def raise_alarms(served):
    with AlarmStore(served.settings.alarms_path) as store:
        a = store.raise_alarm("lamp-failure", "vs-sl-101", "Lamp failure", Severity("major"), at=time.time() - 60,
                              values={"power": 0.0})
        b = store.raise_alarm("device-silent", "vs-rg-101", "Silent", Severity("minor"), at=time.time() - 30,
                              values={})
        store.clear("device-silent", "vs-rg-101", time.time())
    return a, b


def test_alarms_are_listed_open_or_all(served):
    a, b = raise_alarms(served)
    with served.client("vera") as c:
        open_ = c.get("/v1/operator/alarms").json()["alarms"]
        every = c.get("/v1/operator/alarms", params={"all": "true"}).json()["alarms"]
    assert [(x["id"], x["state"], x["severity"]) for x in open_] == [(a, "raised", "major")]
    assert {x["id"]: x["state"] for x in every} == {a: "raised", b: "cleared"}


def test_alarm_ack_records_who_and_is_written_to_influx(served, influx):
    a, _b = raise_alarms(served)
    with served.client("otto") as c:
        resp = c.post(f"/v1/operator/alarms/{a}/ack")
        assert resp.status_code == 200, resp.text
        assert resp.json()["acknowledged_by"] == "otto" and resp.json()["state"] == "acknowledged"
        again = c.post(f"/v1/operator/alarms/{a}/ack")
        assert again.status_code == 409 and "already acknowledged" in again.json()["detail"]
        assert c.post("/v1/operator/alarms/999/ack").status_code == 404
    with AlarmStore(served.settings.alarms_path) as store:
        assert store.get(a).acknowledged_by == "otto"
    points = [r for s in influx.query('SELECT * FROM "alarm"') for r in s.rows()]
    assert [(p["state"], p["by"]) for p in points] == [("acknowledged", "otto")]
    # Tagged with the lamp's zone, as the rules tag its raised and cleared points: the dashboards filter by them.
    lamp = served.app.state.registry.get().devices["vs-sl-101"]
    assert [(p["gemeente"], p["wijk"]) for p in points] == [(lamp.gemeente, lamp.wijk)]
    results = [r.result for r in reversed(served.app.state.audit.entries(10, action="alarm.ack"))]
    assert results == ["ok", "conflict", "not found"]


def test_without_alarm_settings_the_routes_say_what_is_missing(make_served, op_settings):
    served = make_served(replace(op_settings, alarms_path=None, rules_path=None))
    with served.client("otto") as c:
        for resp in (c.get("/v1/operator/alarms"), c.get("/v1/operator/rules"), c.get("/v1/operator/holds")):
            assert resp.status_code == 503
            assert "SMARTCITY_" in resp.json()["detail"] and "/" not in resp.json()["detail"].split("(")[0]
