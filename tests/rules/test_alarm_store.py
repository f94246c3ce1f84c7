"""The alarm store: lifecycle, idempotent raising across restarts, several processes, file mode; and the CLI."""

from __future__ import annotations

import argparse
import logging
import math
import multiprocessing
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from rules import alarm_cli
from rules.alarm_store import AlarmError, AlarmState, AlarmStore, AlarmStoreError, default_path
from rules.rule_model import Severity

T0 = 1_700_000_000.0


@pytest.fixture
def store(tmp_path: Path) -> Iterator[AlarmStore]:
    s = AlarmStore(default_path(tmp_path / "state"))
    yield s
    s.close()


def test_lifecycle_raised_acknowledged_cleared(store: AlarmStore) -> None:
    alarm_id = store.raise_alarm("lamp-failure", "sl-1", "Lamp failure", Severity.MAJOR, at=T0,
                                 values={"failed": 1.0, "power": math.nan})
    [alarm] = store.open_alarms()
    assert (alarm.id, alarm.state, alarm.severity, alarm.raised_at) == (alarm_id, AlarmState.RAISED, Severity.MAJOR, T0)
    assert alarm.values == {"failed": 1.0, "power": None}  # NaN (missing) is stored as null
    acked = store.acknowledge(alarm_id, "j.devries", T0 + 60)
    assert (acked.state, acked.acknowledged_by, acked.acknowledged_at) == (AlarmState.ACKNOWLEDGED, "j.devries",
                                                                           T0 + 60)
    assert store.clear("lamp-failure", "sl-1", T0 + 120) == alarm_id
    assert store.open_alarms() == []
    done = store.get(alarm_id)
    assert done is not None and done.state is AlarmState.CLEARED and done.cleared_at == T0 + 120
    assert store.audit_trail(alarm_id) == [(AlarmState.RAISED, "rules", T0),
                                           (AlarmState.ACKNOWLEDGED, "j.devries", T0 + 60),
                                           (AlarmState.CLEARED, "rules", T0 + 120)]


def test_raising_again_returns_the_open_occurrence(tmp_path: Path) -> None:
    path = tmp_path / "alarms.sqlite"
    with AlarmStore(path) as first:
        a = first.raise_alarm("r", "g", "text", Severity.MINOR, at=T0, values={})
    with AlarmStore(path) as after_restart:
        assert after_restart.raise_or_find("r", "g", "text", Severity.MINOR, at=T0 + 5, values={}) == (a, False)
        other = after_restart.raise_alarm("r", "other", "text", Severity.MINOR, at=T0, values={})
        assert other != a
        assert after_restart.clear("r", "g", T0 + 10) == a
        b = after_restart.raise_alarm("r", "g", "text", Severity.MINOR, at=T0 + 20, values={})
        assert b != a  # after a clear, a new occurrence
        assert [x.id for x in after_restart.history(10)] == [b, other, a]  # newest first; ties by id


def test_clear_without_an_open_alarm_is_none(store: AlarmStore) -> None:
    assert store.clear("r", "g", T0) is None


def test_history_is_newest_first_and_limited(store: AlarmStore) -> None:
    ids = [store.raise_alarm("r", f"g{i}", "t", Severity.WARNING, at=T0 + i, values={}) for i in range(5)]
    assert [a.id for a in store.history(3)] == ids[::-1][:3]
    assert [a.id for a in store.open_alarms()] == ids


def test_acknowledge_refuses_unknown_repeated_and_anonymous(store: AlarmStore) -> None:
    a = store.raise_alarm("r", "g", "t", Severity.CRITICAL, at=T0, values={})
    with pytest.raises(AlarmError, match="no alarm 999"):
        store.acknowledge(999, "me", T0)
    with pytest.raises(AlarmError, match="name"):
        store.acknowledge(a, "  ", T0)
    store.acknowledge(a, "me", T0 + 1)
    with pytest.raises(AlarmError, match="already acknowledged by me"):
        store.acknowledge(a, "you", T0 + 2)


def test_acknowledging_a_cleared_alarm_is_allowed(store: AlarmStore) -> None:
    a = store.raise_alarm("r", "g", "t", Severity.CRITICAL, at=T0, values={})
    store.clear("r", "g", T0 + 1)
    assert store.acknowledge(a, "late-operator", T0 + 2).state is AlarmState.CLEARED


def test_file_is_private(tmp_path: Path) -> None:
    path = default_path(tmp_path / "state")
    with AlarmStore(path) as s:
        s.raise_alarm("r", "g", "t", Severity.MAJOR, at=T0, values={})
        for p in path.parent.iterdir():  # the database and its -wal and -shm files
            assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "alarms.sqlite"
    path.write_bytes(b"not a database at all, but long enough to have a header" * 20)
    with pytest.raises(AlarmStoreError, match=r"alarms\.sqlite"):
        AlarmStore(path)


def test_busy_past_the_timeout_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "alarms.sqlite"
    with AlarmStore(path, timeout=0.2) as s:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process holding the write lock
        try:
            with pytest.raises(AlarmStoreError, match="locked"):
                s.raise_alarm("r", "g", "t", Severity.MAJOR, at=T0, values={})
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert s.raise_alarm("r", "g", "t", Severity.MAJOR, at=T0, values={}) > 0


def _raise_many(path: str, worker: int) -> None:
    with AlarmStore(path) as s:
        for i in range(30):
            s.raise_alarm("shared", f"g{i % 10}", f"from {worker}", Severity.MAJOR, at=T0 + i, values={})
            if i % 10 == 9:
                for g in range(10):
                    s.clear("shared", f"g{g}", T0 + i)


def test_several_processes_never_open_two_occurrences_of_a_slot(tmp_path: Path) -> None:
    path = tmp_path / "alarms.sqlite"
    AlarmStore(path).close()
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_raise_many, args=(str(path), w)) for w in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
        assert w.exitcode == 0
    db = sqlite3.connect(path)
    open_per_slot = db.execute("SELECT group_key, count(*) FROM alarm WHERE cleared_at IS NULL "
                               "GROUP BY group_key HAVING count(*) > 1").fetchall()
    db.close()
    assert open_per_slot == []


# ---- the CLI ----

def cli(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    alarm_cli.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_cli_ack_requires_by() -> None:
    with pytest.raises(SystemExit):
        cli("ack", "1")


def test_cli_list_and_ack(tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    state = str(tmp_path / "state")
    assert alarm_cli.run(cli("list", "--state-dir", state)) == 0
    assert "no alarms" in capsys.readouterr().out
    with AlarmStore(default_path(state)) as s:
        a = s.raise_alarm("lamp-failure", "sl-7", "Lamp failure", Severity.MAJOR, at=T0, values={})
    assert alarm_cli.run(cli("list", "--state-dir", state)) == 0
    out = capsys.readouterr().out
    assert "lamp-failure" in out and "raised" in out and str(a) in out
    with caplog.at_level(logging.INFO, logger="rules.alarm_store"):
        assert alarm_cli.run(cli("ack", str(a), "--by", "operator-ann", "--no-influx", "--state-dir", state)) == 0
    assert "acknowledged by operator-ann" in capsys.readouterr().out
    audit = [r.getMessage() for r in caplog.records if r.getMessage().startswith("audit:")]
    assert len(audit) == 1 and f"alarm {a}" in audit[0] and "operator-ann" in audit[0]
    assert alarm_cli.run(cli("ack", str(a), "--by", "someone-else", "--no-influx", "--state-dir", state)) == 1
    assert "already acknowledged by operator-ann" in capsys.readouterr().err
    assert alarm_cli.run(cli("ack", "4242", "--by", "x", "--no-influx", "--state-dir", state)) == 1
    assert alarm_cli.run(cli("list", "--state-dir", state, "--all")) == 0
    assert "ack operator-ann" in capsys.readouterr().out
