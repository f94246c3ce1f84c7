"""The gemeente and wijk tags of rule_event and alarm points (rules/group_zones.py), read back from a real influxd.

The dashboards filter annotations and the alarm table by ``"gemeente" =~ /^$gemeente$/`` and the same for
wijk: a point without them would be in no gemeente's view. The raised, acknowledged and cleared points of
one alarm must carry the same tags, or an alarm would look open forever in a gemeente's view.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from core.influx import InfluxClient
from core.registry import Registry
from deploy.influxdb import Influxd
from rules import alarm_cli
from rules.alarm_store import AlarmState, AlarmStore
from rules.group_zones import NO_ZONE, GroupZones
from rules.rule_events import RuleEventWriter, alarm_line, transition_line
from rules.rule_model import Severity
from rules.transitions import Event, Transition
from smartcity.cli import build_parser
from tests.conftest import wait_for
from tests.rules.test_service import RulesHarness, presence

# One slot each for vs-oc-101 (gw-vs-01, GM0626, WK062600), grouped by every kind of attribute.
RULE = """
[[rules]]
name = "by-{by}"
kind = "occupancy"
where = {{ device = ["vs-oc-101"] }}
group_by = "{by}"
values.present = {{ metric = "presence" }}
when = "present > 0"
clear_when = "present == 0"
urgent = true
on_activate = [{{ alarm = "someone at vs-oc-101 by {by}", severity = "minor" }}]
"""
BY = ("wijk", "device", "gemeente", "gateway", "kind")
EXPECTED = {  # rule -> (group, gemeente, wijk) as InfluxDB returns them (None: no such tag on the point)
    "by-wijk": ("WK062600", "GM0626", "WK062600"),
    "by-device": ("vs-oc-101", "GM0626", "WK062600"),
    "by-gemeente": ("GM0626", "GM0626", None),
    "by-gateway": ("gw-vs-01", "GM0626", None),
    "by-kind": ("occupancy", None, None),
}


def rule_file(*by: str) -> str:
    return "version = 2\n" + "".join(RULE.format(by=b) for b in by)


def rows(influx: InfluxClient, q: str) -> list[dict[str, Any]]:
    return [r for s in influx.query(q, epoch="u") for r in s.rows()]


def zones_of(points: list[dict[str, Any]]) -> dict[str, set[tuple[Any, Any, Any]]]:
    out: dict[str, set[tuple[Any, Any, Any]]] = {}
    for p in points:
        out.setdefault(p["rule"], set()).add((p["group"], p["gemeente"], p["wijk"]))
    return out


def start(env: RulesHarness, influx: InfluxClient, tmp_path: Path, *by: str) -> Any:
    env.city.rules.write_text(rule_file(*by))
    return env.start(events=RuleEventWriter(influx, backoff=0.05), alarms=AlarmStore(tmp_path / "alarms.sqlite"))


# -- the line builders and the lookup --------------------------------------------------------------------------
def test_the_line_builders_take_gemeente_and_wijk_as_keywords_and_old_calls_still_work() -> None:
    t = Transition("r", "vs-oc-101", Event.ACTIVATE, True, 1.5, {"x": 1.0})
    assert transition_line(t) == "rule_event,event=activate,group=vs-oc-101,rule=r active=true,v_x=1.0 1500000"
    assert transition_line(t, Severity.MINOR, gemeente="GM0626", wijk="WK062600") == (
        "rule_event,event=activate,gemeente=GM0626,group=vs-oc-101,rule=r,severity=minor,wijk=WK062600 "
        "active=true,v_x=1.0 1500000")
    assert alarm_line("r", "GM0626", Severity.MAJOR, AlarmState.RAISED, at=2.0, alarm_id=3, gemeente="GM0626") == (
        'alarm,gemeente=GM0626,group=GM0626,rule=r,severity=major,state=raised id=3i,text="" 2000000')
    assert alarm_line("r", "g", Severity.MAJOR, AlarmState.RAISED, at=2.0, alarm_id=3) == (
        'alarm,group=g,rule=r,severity=major,state=raised id=3i,text="" 2000000')


def test_group_zones_follow_the_contract_for_each_group_by(demo_registry: Registry) -> None:
    zones = GroupZones(demo_registry)
    assert zones.of("device", "ws-sl-203") == ("GM0629", "WK062901")
    assert zones.of("wijk", "WK062601") == ("GM0626", "WK062601")
    assert zones.of("gemeente", "GM0629") == ("GM0629", None)
    assert zones.of("gateway", "gw-ws-01") == ("GM0629", None)
    for by, group in (("kind", "street_light"), ("link", "lora"), ("classification", "public")):
        assert zones.of(by, group) == NO_ZONE
    assert zones.of("device", "gone-device") == NO_ZONE and zones.of("gateway", "gw-gone") == NO_ZONE
    # Without the rule's group_by (an acknowledgement, an alarm of a removed rule) the key says what it is.
    for by, group in (("device", "vs-tl-101"), ("wijk", "WK062900"), ("gemeente", "GM0626"), ("gateway", "gw-vs-01"),
                      ("kind", "street_light"), ("kind", "traffic_light")):
        assert zones.guess(group) == zones.of(by, group), (by, group)


# -- a running service -------------------------------------------------------------------------------------------
@pytest.mark.integration
def test_rule_events_and_alarms_carry_the_slots_gemeente_and_wijk(env: RulesHarness, influx: InfluxClient,
                                                                 tmp_path: Path) -> None:
    start(env, influx, tmp_path, *BY)
    env.publish("gw-vs-01", presence("vs-oc-101"))
    # The clear only once every slot is active: published together, both can land in one evaluation
    # (seen on a loaded CI machine), and a slot that was never active neither activates nor clears.
    wait_for(lambda: len(rows(influx, "SELECT * FROM rule_event")) == len(BY), 10)
    env.publish("gw-vs-01", presence("vs-oc-101", False, t=time.time() + 1, seq=1))
    wait_for(lambda: len(rows(influx, "SELECT * FROM rule_event")) == 2 * len(BY)
             and len(rows(influx, "SELECT * FROM alarm")) == 2 * len(BY), 10)
    events = rows(influx, "SELECT * FROM rule_event")
    alarms = rows(influx, "SELECT * FROM alarm")
    expected = {rule: {zone} for rule, zone in EXPECTED.items()}
    assert zones_of(events) == expected
    assert zones_of(alarms) == expected
    assert sorted(p["state"] for p in alarms) == ["cleared"] * len(BY) + ["raised"] * len(BY)
    # The dashboards' filters find a wijk's events and alarms by these tags: the wijk and the device rule's.
    q = "SELECT * FROM {} WHERE \"gemeente\" =~ /^GM0626$/ AND \"wijk\" =~ /^WK062600$/"
    assert {p["rule"] for p in rows(influx, q.format("rule_event"))} == {"by-wijk", "by-device"}
    assert len(rows(influx, q.format("alarm"))) == 4


@pytest.mark.integration
def test_acknowledged_and_reconciled_alarms_carry_the_same_tags(env: RulesHarness, influx: InfluxClient,
                                                                influxd: Influxd, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The alarm store keeps rule and group only: the ack (CLI) and the clear of a removed rule look them up."""
    service = start(env, influx, tmp_path, *BY)
    env.publish("gw-vs-01", presence("vs-oc-101"))
    wait_for(lambda: len(rows(influx, "SELECT * FROM alarm")) == len(BY), 10)
    with AlarmStore(tmp_path / "alarms.sqlite") as store:
        ids = {a.rule: a.id for a in store.open_alarms()}
    monkeypatch.setenv("SMARTCITY_INFLUX_URL", influxd.url)
    monkeypatch.setenv("SMARTCITY_INFLUX_DATABASE", influx.config.database)
    for rule in EXPECTED:  # as `smartcity alarms ack ID --by ann` runs, with the top-level --registry
        argv = ["alarms", "--registry", str(env.city.registry), "ack", str(ids[rule]), "--by", "ann",
                "--store", str(tmp_path / "alarms.sqlite")]
        assert alarm_cli.run(build_parser(argv).parse_args(argv)) == 0
    env.city.rules.write_text(rule_file("wijk"))  # the other four rules are gone: their alarms are cleared
    wait_for(lambda: len(service.runtime.ruleset.rules) == 1, 10)
    wait_for(lambda: len(rows(influx, "SELECT * FROM alarm WHERE state = 'cleared'")) == 4, 10)
    for state, rules in (("acknowledged", EXPECTED), ("cleared", [r for r in EXPECTED if r != "by-wijk"])):
        got = zones_of(rows(influx, f"SELECT * FROM alarm WHERE state = '{state}'"))
        assert got == {rule: {EXPECTED[rule]} for rule in rules}, state


def test_an_ack_without_a_readable_registry_is_still_written(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert alarm_cli._zone(str(tmp_path / "missing.geojson"), "vs-oc-101") == NO_ZONE
    assert "without gemeente and wijk" in caplog.text
    assert alarm_cli._zone(None, "vs-oc-101") == NO_ZONE
