"""The audit log: append-only, hash-chained, survives restarts, readable by admins only."""

from __future__ import annotations

import itertools
import sqlite3

import pytest

from api.operators.audit import GENESIS, AuditLog, row_hash

pytestmark = pytest.mark.integration


def filled(tmp_path, n=5):
    log = AuditLog(tmp_path / "audit.sqlite")
    for i in range(n):
        log.append(f"op{i}", "rules.disable", f"rule-{i}", "ok", address="127.0.0.1", detail=f"#{i}")
    return log


def test_rows_chain_onto_each_other(tmp_path):
    log = filled(tmp_path)
    rows = sorted(log.entries(), key=lambda e: e.seq)
    assert rows[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(rows))
    assert log.verify() == (5, None)


def test_update_and_delete_are_refused_by_triggers(tmp_path):
    filled(tmp_path).close()
    db = sqlite3.connect(tmp_path / "audit.sqlite")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("UPDATE audit SET who = 'mallory' WHERE seq = 2")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("DELETE FROM audit WHERE seq = 2")
    db.close()


def tamper(tmp_path, *sql):
    db = sqlite3.connect(tmp_path / "audit.sqlite")
    db.execute("DROP TRIGGER audit_no_update")
    db.execute("DROP TRIGGER audit_no_delete")
    for s in sql:
        db.execute(s)
    db.commit()
    db.close()


@pytest.mark.parametrize(("sql", "broken"), [
    (("UPDATE audit SET who = 'mallory' WHERE seq = 3",), 3),
    (("UPDATE audit SET result = 'ok', detail = '' WHERE seq = 4",), 4),
    (("DELETE FROM audit WHERE seq = 2",), 3),
    # a row rewritten with a correct hash of its own still breaks the next row's link
    (("UPDATE audit SET hash = '" + "a" * 64 + "' WHERE seq = 2",), 2),
])
def test_tampering_with_the_file_is_detected(tmp_path, sql, broken):
    filled(tmp_path).close()
    tamper(tmp_path, *sql)
    log = AuditLog(tmp_path / "audit.sqlite")  # the triggers come back on open
    assert log.verify()[1] == broken


def test_a_forged_row_recomputed_in_place_breaks_the_next_link(tmp_path):
    filled(tmp_path).close()
    db = sqlite3.connect(tmp_path / "audit.sqlite")
    seq, t, _who, action, target, result, address, detail, prev, _h = db.execute(
        "SELECT * FROM audit WHERE seq = 2").fetchone()
    db.close()
    forged = row_hash(prev, (seq, t, "mallory", action, target, result, address, detail))
    tamper(tmp_path, f"UPDATE audit SET who = 'mallory', hash = '{forged}' WHERE seq = 2")
    assert AuditLog(tmp_path / "audit.sqlite").verify() == (2, 3)


def test_the_log_survives_a_restart_and_the_chain_continues(tmp_path):
    filled(tmp_path, 3).close()
    log = AuditLog(tmp_path / "audit.sqlite")
    entry = log.append("ada", "gateway.revoke", "gw-x", "ok", address="::1")
    assert entry.seq == 4
    assert log.verify() == (4, None)


def test_long_and_control_character_fields_are_cut_and_neutralised(tmp_path):
    log = AuditLog(tmp_path / "audit.sqlite")
    e = log.append("a\nb", "x" * 1000, "t", "ok", address="1.2.3.4")
    assert e.who == "a?b"
    assert len(e.action) == 200
    assert log.verify() == (1, None)


def test_admin_reads_the_audit_log_with_chain_state(served):
    with served.client("vera") as c:
        c.get("/v1/operator/me")
    with served.client("ada") as c:
        body = c.get("/v1/operator/audit", params={"verify": "true"}).json()
        assert body["chain"] == {"rows": 1, "intact": True, "first_broken_seq": None}
        assert [(e["who"], e["action"], e["result"]) for e in body["entries"]] == [
            ("vera", "me", "ok")]
        again = c.get("/v1/operator/audit", params={"operator": "ada"}).json()
    assert [e["action"] for e in again["entries"]] == ["audit.read"]


def test_admin_route_reports_a_broken_chain(served):
    log = served.app.state.audit
    for i in range(3):
        log.append("x", "a", str(i), "ok", address="-")
    db = sqlite3.connect(log.path)
    db.execute("DROP TRIGGER audit_no_update")
    db.execute("UPDATE audit SET result = 'denied' WHERE seq = 2")
    db.commit()
    db.close()
    with served.client("ada") as c:
        chain = c.get("/v1/operator/audit", params={"verify": "true"}).json()["chain"]
    assert chain == {"rows": 1, "intact": False, "first_broken_seq": 2}
