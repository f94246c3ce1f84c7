"""`smartcity backup` / `smartcity restore` against real servers: a populated platform (InfluxDB with points
over several days in two retention policies, the API's metadata and audit log, alarms, rule state, control
files, registry, operators) is backed up, restored into a fresh influxd and fresh directories, and compared
point by point, row by row and byte by byte; damaged backups and overwrites are refused; a backup taken
while points are written restores a consistent database."""

from __future__ import annotations

import contextlib
import io
import shutil
import sqlite3
import tarfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from api.operators.audit import AuditLog
from api.operators.roles import Role
from api.operators.users import write_users_file
from api.sta.metadata_store import MetadataStore
from api.sta.model import EntitySet
from deploy.influxdb import Influxd, start_influxd
from rules import snapshot_file
from rules.alarm_store import AlarmStore
from rules.operator_control import Hold, add_holds, set_enabled
from rules.rule_model import Severity
from smartcity.cli import main
from smartcity.data import demo_registry_path

ADMIN = ("admin", "backup-test-admin-pw")
DB = "smartcity"
HOUR_NS = 3600 * 10**9


@dataclass
class Platform:
    """Where one installation keeps its state, and its influxd."""

    root: Path
    influxd: Influxd
    production: bool = False  # the units' layout: alarms, holds, overrides in their own control directory

    @property
    def registry(self) -> Path:
        return self.root / "etc" / "registry.geojson"

    @property
    def operators(self) -> Path:
        return self.root / "etc" / "operators.toml"

    @property
    def rules(self) -> Path:
        return self.root / "etc" / "rules.toml"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def control(self) -> Path:
        return self.state / "rules" / "control" if self.production else self.state / "rules"

    def files(self) -> list[Path]:
        """Every plain file of the state (not the SQLite databases)."""
        return [self.registry, self.operators, self.rules, self.state / "rules" / "state-0of1.npz",
                self.control / "holds.json", self.control / "rule-overrides.json"]

    def databases(self) -> list[Path]:
        return [self.control / "alarms.sqlite", self.state / "api" / "sta.sqlite",
                self.state / "api" / "audit.sqlite"]

    def args(self, database: str = DB) -> list[str]:
        control = ["--control-dir", str(self.control)] if self.production else []
        return ["--registry", str(self.registry), "--state-dir", str(self.state), "--operators", str(self.operators),
                "--rules", str(self.rules), "--influx-url", self.influxd.url, "--influx-database", database,
                "--influx-rpc", f"127.0.0.1:{self.influxd.rpc_port}", *control]


def smartcity(*argv: str) -> tuple[int, str]:
    """Run the smartcity command in this process; (exit status, what it printed)."""
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        mp.setenv("SMARTCITY_INFLUX_USERNAME", ADMIN[0])
        mp.setenv("SMARTCITY_INFLUX_PASSWORD", ADMIN[1])
        status = main(["--log-level", "WARNING", *argv])
    return status, out.getvalue()


def query(server: Influxd, q: str, db: str = DB) -> list[dict[str, Any]]:
    resp = httpx.get(f"{server.url}/query", params={"q": q, "db": db, "epoch": "ns"}, auth=ADMIN, timeout=30)
    resp.raise_for_status()
    results: list[dict[str, Any]] = resp.json()["results"]
    assert all("error" not in r for r in results), results
    return results


def write(server: Influxd, lines: list[str], db: str = DB, rp: str | None = None) -> None:
    params = {"db": db, **({"rp": rp} if rp else {})}
    resp = httpx.post(f"{server.url}/write", params=params, content="\n".join(lines), auth=ADMIN, timeout=30)
    assert resp.status_code == 204, resp.text


def populate_influx(server: Influxd) -> None:
    """Three measurements over ten days (two shard groups of autogen), one in a second retention policy."""
    server.admin_query(f'CREATE DATABASE "{DB}"')
    server.admin_query(f'CREATE RETENTION POLICY "short" ON "{DB}" DURATION 30d REPLICATION 1 SHARD DURATION 1d')
    now = time.time_ns() // HOUR_NS * HOUR_NS
    env, traffic, sta = [], [], []
    for h in range(240):
        t = now - h * HOUR_NS
        for d in range(3):
            env.append(f"environment,device=env-{d},kind=air value={20 + d + h / 7:.6f},quality={h % 4}i,"
                       f'status="ok {h}",valid={"true" if h % 5 else "false"} {t}')
        traffic.append(f"traffic,device=loop-1,lane=north count={h * 3}i,speed={40.5 + h % 9} {t + 17}")
        if h < 72:
            sta.append(f"sta_observation,datastream=api-4 result={h * 0.25} {t + 1}")
    write(server, env)
    write(server, traffic)
    write(server, sta, rp="short")


def populate_state(p: Platform) -> None:
    """Registry, operators, rule file, rule snapshot, holds, overrides, alarms, STA metadata, audit log."""
    p.registry.parent.mkdir(parents=True)
    shutil.copyfile(demo_registry_path(), p.registry)
    p.registry.chmod(0o644)
    write_users_file(p.operators, [("alice", Role.ADMIN, "correct horse battery"),
                                   ("bob", Role.VIEWER, "another long password")])
    p.rules.write_text('[[rule]]\nname = "dim-at-night"\n')
    rules_dir = p.state / "rules"
    snapshot_file.save(rules_dir / "state-0of1.npz", {"means": np.arange(12.0).reshape(3, 4), "n": 7,
                                                       "groups": ["a", "b"]}, {"saved_at": 1.5})
    add_holds(rules_dir, [Hold("lamp-1", "dim", time.time() + 86400, by="alice", command="c-1")])
    set_enabled(rules_dir, "dim-at-night", False, "alice")
    with AlarmStore(rules_dir / "alarms.sqlite") as alarms:
        ids = [alarms.raise_alarm(f"rule-{i}", f"group-{i}", f"alarm {i}", Severity("warning"), at=1000.0 + i,
                                  values={"x": float(i), "y": float("nan")}) for i in range(3)]
        alarms.acknowledge(ids[0], "alice", 1100.0)
        alarms.clear("rule-1", "group-1", 1200.0)
    store = MetadataStore(p.state / "api" / "sta.sqlite")
    try:
        with store.transaction() as tx:
            thing, loc, ds = tx.new_id(), tx.new_id(), tx.new_id()
            tx.insert(EntitySet.THINGS, thing, {"name": "kiosk", "description": "ä kiosk"})
            tx.insert(EntitySet.LOCATIONS, loc, {"name": "square", "location": {"type": "Point",
                                                                             "coordinates": [4.1, 52.2]}})
            tx.set_links(thing, "Locations", (loc,))
            tx.insert(EntitySet.DATASTREAMS, ds, {"name": "counts"})
            tx.set_links(ds, "Thing", (thing,))
            tx.set_result_time(ds, 123456, True)
    finally:
        store.close()
    audit = AuditLog(p.state / "api" / "audit.sqlite")
    try:
        for i in range(6):
            audit.append("alice" if i % 2 else None, "login" if i % 2 else "command.send", f"target-{i}", "ok",
                         address="127.0.0.1", detail=f"entry {i}", at=1_700_000_000.0 + i)
    finally:
        audit.close()


def sqlite_content(path: Path) -> dict[str, Any]:
    """The schema (tables, indexes, triggers) and every row of every table, in a canonical order."""
    db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        schema = sorted(db.execute("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"))
        tables = [name for kind, name, _ in schema if kind == "table"]
        rows = {t: sorted(db.execute(f'SELECT * FROM "{t}"'), key=repr) for t in tables}
    finally:
        db.close()
    return {"schema": schema, "rows": rows}


def influx_content(server: Influxd, db: str = DB) -> dict[str, Any]:
    """Retention policies, field types and every point of every measurement in every retention policy."""
    out: dict[str, Any] = {"rps": query(server, f'SHOW RETENTION POLICIES ON "{db}"', db)[0]["series"],
                           "fields": query(server, "SHOW FIELD KEYS", db)[0].get("series")}
    for rp in ("autogen", "short"):
        for m in ("environment", "traffic", "sta_observation", "live"):
            res = query(server, f'SELECT * FROM "{db}"."{rp}"."{m}" GROUP BY *', db)[0]
            out[f"{rp}.{m}"] = res.get("series", [])
    return out


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Platform, Path, Path]]:
    """A populated platform, its backup as a .tar archive and as a directory."""
    root = tmp_path_factory.mktemp("source")
    server = start_influxd(root / "influx", admin=ADMIN)
    try:
        p = Platform(root, server)
        populate_influx(server)
        populate_state(p)
        archive, directory = root / "backups" / "full.tar", root / "backups" / "full"
        for out in (archive, directory):
            status, text = smartcity("backup", str(out), *p.args())
            assert status == 0, text
        assert "[1/9] influxdb" in text and "audit: 1 file(s)" in text, text  # progress per part, with bytes
        yield p, archive, directory
    finally:
        server.stop()


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Platform]:
    """A new installation: an empty influxd in a new directory, no state."""
    server = start_influxd(tmp_path / "influx", admin=ADMIN)
    try:
        yield Platform(tmp_path / "fresh", server, production=True)  # restored into the other layout
    finally:
        server.stop()


def test_restore_into_fresh_services_is_exact(source: tuple[Platform, Path, Path], fresh: Platform) -> None:
    src, archive, _ = source
    assert archive.stat().st_mode & 0o777 == 0o600  # it holds the operators' hashes
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
    assert {m.name for m in members} >= {"manifest.json", "audit/audit.sqlite", "operators/operators.toml"}
    assert all(m.mode & 0o777 == 0o600 for m in members if m.isfile())

    status, text = smartcity("restore", str(archive), *fresh.args())
    assert status == 0, text
    assert "hash chain intact, 6 entries" in text, text

    assert influx_content(fresh.influxd) == influx_content(src.influxd)
    assert len(influx_content(fresh.influxd)["autogen.environment"]) == 3  # the comparison compared something
    for a, b in zip(src.files(), fresh.files(), strict=True):
        assert b.read_bytes() == a.read_bytes(), b
        assert b.stat().st_mode & 0o777 == a.stat().st_mode & 0o777, b
    assert fresh.operators.stat().st_mode & 0o777 == 0o600
    for a, b in zip(src.databases(), fresh.databases(), strict=True):
        assert sqlite_content(b) == sqlite_content(a), b
        assert sqlite_content(b)["rows"], b
    log = AuditLog(fresh.state / "api" / "audit.sqlite")
    try:
        assert log.verify() == (6, None)
    finally:
        log.close()

    # Again without --force: refused, naming what exists, and nothing is touched.
    fresh.registry.write_bytes(fresh.registry.read_bytes() + b"\n")
    status, text = smartcity("restore", str(archive), *fresh.args())
    assert status == 1, text
    assert f"exists: {fresh.registry}" in text and "InfluxDB database smartcity" in text, text
    assert fresh.registry.read_bytes() == src.registry.read_bytes() + b"\n"
    # With --force the existing state (InfluxDB included) is replaced.
    write(fresh.influxd, ["environment,device=extra value=1 1000000000"])
    status, text = smartcity("restore", str(archive), "--force", *fresh.args())
    assert status == 0, text
    assert fresh.registry.read_bytes() == src.registry.read_bytes()
    assert influx_content(fresh.influxd) == influx_content(src.influxd)


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_changed_byte_is_refused_with_the_file_named(source: tuple[Platform, Path, Path],
                                                         tmp_path: Path) -> None:
    src, archive, directory = source
    tampered = tmp_path / "tampered.tar"
    shutil.copyfile(archive, tampered)
    with tarfile.open(tampered) as tar:
        member = tar.getmember("audit/audit.sqlite")
    _flip(tampered, member.offset_data + member.size // 2)
    target = Platform(tmp_path / "target", src.influxd)
    status, text = smartcity("restore", str(tampered), *target.args("never_created"))
    assert status == 1, text
    assert "audit/audit.sqlite: checksum mismatch" in text, text
    assert "nothing was restored" in text
    assert not target.root.exists()
    assert "never_created" not in str(query(src.influxd, "SHOW DATABASES"))

    copy = tmp_path / "dir-copy"
    shutil.copytree(directory, copy)
    _flip(copy / "rule-control" / "holds.json", 3)
    (copy / "rule-state" / "extra.json").write_text("{}")
    status, text = smartcity("restore", str(copy), *target.args("never_created"))
    assert status == 1, text
    assert "rule-control/holds.json: checksum mismatch" in text, text
    assert "rule-state/extra.json: not listed in the manifest" in text, text
    assert not target.root.exists()


def test_a_backup_taken_while_points_are_written_restores_consistently(source: tuple[Platform, Path, Path],
                                                                       tmp_path: Path) -> None:
    src, _, _ = source
    server = src.influxd
    server.admin_query('CREATE DATABASE "live"')
    acked: list[int] = []  # batch numbers InfluxDB acknowledged (204), in order
    stop, batch_points = threading.Event(), 50
    base = time.time_ns() - 3 * 86400 * 10**9  # three days: points of a batch fall in one or two shards

    def writer() -> None:
        deadline = time.monotonic() + 30
        for n in range(5000):
            if stop.is_set() or time.monotonic() > deadline:
                return
            lines = [f"live,batch={n % 7} n={n}i,k={k}i {base + (n * batch_points + k) * 10**8}"
                     for k in range(batch_points)]
            write(server, lines, db="live")
            acked.append(n)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while len(acked) < 20 and time.monotonic() < deadline:
        time.sleep(0.01)
    before = len(acked)
    out = tmp_path / "live.tar"
    status, text = smartcity("backup", str(out), *src.args("live"))
    during = len(acked) - before
    stop.set()
    thread.join(30)
    assert status == 0, text
    assert not thread.is_alive()
    assert before >= 20 and during > 0, (before, during)  # the backup really ran while points were written

    restored = Platform(tmp_path / "restored", server)
    status, text = smartcity("restore", str(out), "--only", "influxdb", *restored.args("live_restored"))
    assert status == 0, text
    rows = query(server, "SELECT n, k FROM live", db="live_restored")[0]["series"][0]["values"]
    got = {(int(r[1]), int(r[2])) for r in rows}
    assert len(got) == len(rows)
    # Every restored point is one that was written, exactly; every batch acknowledged before the backup began
    # is complete.
    for t, n, k in rows:
        assert t == base + (n * batch_points + k) * 10**8
        assert n in acked or n == len(acked)  # the last write may have been in flight when the writer stopped
    assert {(n, k) for n in range(before) for k in range(batch_points)} <= got
    assert len(got) < (len(acked) + 1) * batch_points
