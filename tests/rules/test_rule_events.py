"""Rule events and alarm changes written to a real influxd, read back with InfluxQL."""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import pytest

from core.influx import InfluxClient, InfluxConfig, InfluxError
from core.settings import InfluxSettings
from deploy.influxdb import Influxd
from deploy.processes import free_port
from rules import alarm_cli
from rules.alarm_store import AlarmState, AlarmStore, default_path
from rules.rule_events import RuleEventWriter, transition_line
from rules.rule_model import Severity
from rules.transitions import Event, Transition

pytestmark = pytest.mark.integration

T0 = 1_700_000_000.123456


def rows(influx: InfluxClient, q: str) -> list[dict[str, object]]:
    return [r for s in influx.query(q, epoch="u") for r in s.rows()]


def test_transitions_become_rule_event_points(influx: InfluxClient) -> None:
    writer = RuleEventWriter(influx, backoff=0.05)
    writer.start()
    writer.transition(Transition("lamp-failure", "sl-1", Event.ACTIVATE, True, T0, {"failed": 1.0, "power": math.nan}),
                      Severity.MAJOR)
    writer.transition(Transition("lamp-failure", "sl-1", Event.REASSERT, True, T0 + 1, {"failed": 1.0}),
                      Severity.MAJOR)
    writer.transition(Transition("rain-bike", "WK062601", Event.CLEAR, False, T0 + 2, {"rain": 0.05}))
    writer.stop(5.0)
    assert writer.counters() == {"written": 2, "failed": 0, "dropped": 0, "retries": 0, "pending": 0}
    got = rows(influx, 'SELECT * FROM rule_event ORDER BY time')
    assert got == [
        {"time": 1_700_000_000_123_456, "active": True, "event": "activate", "group": "sl-1", "rule": "lamp-failure",
         "severity": "major", "v_failed": 1.0, "v_rain": None},
        {"time": 1_700_000_002_123_456, "active": False, "event": "clear", "group": "WK062601", "rule": "rain-bike",
         "severity": None, "v_failed": None, "v_rain": 0.05},
    ]
    # Tags are queryable as such (Grafana annotations filter on them).
    assert len(rows(influx, "SELECT active FROM rule_event WHERE \"group\" = 'sl-1' AND event = 'activate'")) == 1


def test_alarm_lifecycle_points(influx: InfluxClient) -> None:
    with RuleEventWriter(influx) as writer:
        writer.alarm("lamp-failure", "sl-1", Severity.CRITICAL, AlarmState.RAISED, at=T0, alarm_id=7,
                     text="Lamp failure")
        writer.alarm("lamp-failure", "sl-1", Severity.CRITICAL, AlarmState.ACKNOWLEDGED, at=T0 + 5, alarm_id=7,
                     text="Lamp failure", by="ann")
        writer.alarm("lamp-failure", "sl-1", Severity.CRITICAL, AlarmState.CLEARED, at=T0 + 9, alarm_id=7,
                     text="Lamp failure")
    got = rows(influx, "SELECT * FROM alarm ORDER BY time")
    assert [(r["state"], r["id"], r["by"], r["severity"]) for r in got] == [
        ("raised", 7, None, "critical"), ("acknowledged", 7, "ann", "critical"), ("cleared", 7, None, "critical")]


def test_a_missing_database_is_created(influxd: Influxd) -> None:
    writer = RuleEventWriter(InfluxSettings(url=influxd.url, database="made_by_rules"), backoff=0.05)
    writer.start()
    writer.transition(Transition("r", "g", Event.ACTIVATE, True, T0, {}))
    writer.stop(5.0)
    assert (writer.written, writer.dropped) == (1, 0)
    with InfluxClient(InfluxConfig(influxd.url, "made_by_rules")) as check:
        assert len(rows(check, "SELECT * FROM rule_event")) == 1


def test_a_refused_event_is_counted_and_the_others_stored(influx: InfluxClient) -> None:
    # active stored as a string in the same shard: every rule_event point below conflicts with it.
    influx.write(f"rule_event,rule=r,group=g,event=activate active=\"yes\" {round((T0 - 10) * 1e6)}", precision="u")
    writer = RuleEventWriter(influx)
    for i in range(4):
        writer.transition(Transition("r", f"g{i}", Event.ACTIVATE, True, T0 + i, {"x": float(i)}))
    writer.alarm("r", "g", Severity.MINOR, AlarmState.RAISED, at=T0, alarm_id=1)  # one batch with the above
    writer.start()
    writer.stop(5.0)
    assert (writer.failed, writer.written) == (4, 1)
    assert len(rows(influx, "SELECT * FROM alarm")) == 1


def test_no_server_retries_then_gives_up_at_the_stop_deadline() -> None:
    client = InfluxClient(InfluxConfig(f"http://127.0.0.1:{free_port()}", "x", timeout=1))
    writer = RuleEventWriter(client, backoff=0.02, max_backoff=0.05)
    writer.start()
    for i in range(3):
        writer.transition(Transition("r", "g", Event.ACTIVATE, True, T0 + i, {}))
    deadline = time.monotonic() + 5
    while writer.retries < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    started = time.monotonic()
    writer.stop(0.3)
    assert time.monotonic() - started < 2.0
    assert writer.retries >= 2 and writer.written == 0 and writer.dropped == 3
    client.close()


def test_a_full_queue_drops_and_counts(influx: InfluxClient) -> None:
    writer = RuleEventWriter(influx, max_queue=2)
    for i in range(5):
        writer.transition(Transition("r", "g", Event.ACTIVATE, True, T0 + i, {}))
    assert (writer.dropped, writer.pending) == (3, 2)
    writer.start()
    writer.stop(5.0)
    assert writer.written == 2


def test_line_protocol_of_a_transition() -> None:
    t = Transition("rain bike", "WK 1", Event.CLEAR, False, 1.5, {"rain": 0.25, "gone": math.nan, "n": 3})
    assert transition_line(t) == (r"rule_event,event=clear,group=WK\ 1,rule=rain\ bike "
                                  "active=false,v_rain=0.25,v_n=3.0 1500000")


def test_cli_ack_writes_the_acknowledgement(influxd: Influxd, influx: InfluxClient, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTCITY_INFLUX_URL", influxd.url)
    monkeypatch.setenv("SMARTCITY_INFLUX_DATABASE", influx.config.database)
    state = tmp_path / "state"
    with AlarmStore(default_path(state)) as store:
        alarm_id = store.raise_alarm("lamp-failure", "sl-3", "Lamp failure", Severity.MAJOR, at=T0, values={})
    parser = argparse.ArgumentParser()
    alarm_cli.add_arguments(parser)
    args = parser.parse_args(["ack", str(alarm_id), "--by", "ann", "--state-dir", str(state)])
    assert alarm_cli.run(args) == 0
    [point] = rows(influx, "SELECT * FROM alarm")
    assert (point["state"], point["by"], point["id"]) == ("acknowledged", "ann", alarm_id)
    assert point["rule"] == "lamp-failure"


class RefusesLinesWith:
    """A stand-in client that refuses, like InfluxDB 1.x does within one batch, any batch holding a marked line."""

    def __init__(self, marker: str) -> None:
        self.marker = marker
        self.stored: list[str] = []

    def write(self, lines: bytes, precision: str = "u") -> None:
        batch = lines.decode().split("\n")
        if any(self.marker in line for line in batch):
            raise InfluxError("InfluxDB /write answered 400", 400, "field type conflict")
        self.stored.extend(batch)


def test_a_batch_refused_whole_is_halved_until_only_the_bad_event_is_left() -> None:
    client = RefusesLinesWith("group=bad")
    writer = RuleEventWriter(client)  # type: ignore[arg-type]
    for group in ("a", "b", "bad", "c", "d"):
        writer.transition(Transition("r", group, Event.ACTIVATE, True, T0, {}))
    writer.start()
    writer.stop(5.0)
    assert (writer.written, writer.failed) == (4, 1)
    assert len(client.stored) == 4
