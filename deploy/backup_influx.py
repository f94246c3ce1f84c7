"""The InfluxDB part of a backup: `influxd backup -portable`, `influxd restore -portable`, what the manifest says.

influxd's backup talks to the server's backup/RPC service (deploy/influxdb.py binds it to its own
loopback port, ``bind-address``), which has no authentication in 1.x: that is why it must never
listen beyond loopback. The HTTP API (with the admin's credentials when auth is on) is used only to
describe the database (retention policies, measurements) and, on a forced restore, to drop it:
``influxd restore`` refuses a database that exists.

The portable format snapshots each shard (cache flushed, TSM files hard-linked), so a backup taken
while the ingest writes is consistent shard by shard: a point is in it or not, never half.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from deploy.processes import find_binary

POLL = 1.0  # seconds between progress looks at a running influxd backup/restore
REPORT_EVERY = 5.0  # seconds between progress lines while the output grows
HINT = "apt-get install influxdb (the backup runs on the InfluxDB host, as the user that may read its data)"


class InfluxBackupError(RuntimeError):
    """influxd backup/restore failed, or the server could not be asked; the message says what it said."""


@dataclass(frozen=True, slots=True)
class InfluxTarget:
    """One InfluxDB server and database: HTTP for questions, the RPC address for influxd backup/restore."""

    url: str
    database: str
    rpc: str  # host:port of the backup/RPC service
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def _auth(self) -> tuple[str, str] | None:
        return (self.username, self.password or "") if self.username else None

    def query(self, q: str, *, db: bool = True, post: bool = False) -> list[dict[str, Any]]:
        """The results of an InfluxQL statement; InfluxBackupError on any error the server reports."""
        params = {"q": q, "epoch": "ns", **({"db": self.database} if db else {})}
        try:
            if post:
                resp = httpx.post(f"{self.url}/query", data=params, auth=self._auth(), timeout=30)
            else:
                resp = httpx.get(f"{self.url}/query", params=params, auth=self._auth(), timeout=30)
        except httpx.HTTPError as exc:
            raise InfluxBackupError(f"InfluxDB at {self.url} cannot be reached: {exc}") from None
        try:
            body = resp.json()
        except ValueError:
            body = {}
        errors = [r["error"] for r in body.get("results", []) if "error" in r]
        if resp.status_code >= 300 or errors or "error" in body:
            raise InfluxBackupError(f"InfluxDB refused {q!r}: {resp.status_code} {errors or body.get('error')}")
        results: list[dict[str, Any]] = body.get("results", [])
        return results

    def database_exists(self) -> bool:
        """Whether the database is on the server."""
        series = self.query("SHOW DATABASES", db=False)[0].get("series", [])
        return any(row[0] == self.database for s in series for row in s.get("values", []))

    def describe(self) -> dict[str, Any]:
        """Retention policies (name, duration, shard group duration, replication, default) and measurements."""
        rps = self.query(f'SHOW RETENTION POLICIES ON "{self.database}"')[0].get("series", [])
        policies = [dict(zip(s["columns"], row, strict=True)) for s in rps for row in s.get("values", [])]
        ms = self.query("SHOW MEASUREMENTS")[0].get("series", [])
        measurements = sorted(row[0] for s in ms for row in s.get("values", []))
        return {"database": self.database, "retention_policies": policies, "measurements": measurements}

    def drop_database(self) -> None:
        """DROP DATABASE (a forced restore: influxd restore refuses an existing database)."""
        self.query(f'DROP DATABASE "{self.database}"', db=False, post=True)


def influxd_version() -> str:
    """`influxd version`, e.g. "InfluxDB v1.6.7~rc0 (git: 1.6 ...)"."""
    out = subprocess.run([find_binary("influxd", HINT), "version"], capture_output=True, text=True, timeout=30,
                         check=False)
    return out.stdout.strip() or out.stderr.strip()


def _dir_bytes(directory: Path) -> int:
    return sum(f.stat().st_size for f in directory.iterdir() if f.is_file()) if directory.is_dir() else 0


def _run(args: list[str], watch: Path, what: str, say: Callable[[str], None], timeout: float) -> str:
    """Run influxd with a bounded wait, printing how many bytes are in `watch` while it runs."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    started = last = time.monotonic()
    try:
        while proc.poll() is None:
            now = time.monotonic()
            if now - started > timeout:
                raise InfluxBackupError(f"{what} did not finish within {timeout:.0f} s (raise --influx-timeout)")
            if now - last >= REPORT_EVERY:
                say(f"  influxdb: {what} running, {_dir_bytes(watch):,} bytes so far")
                last = now
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(POLL)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    output = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
    if proc.stdout:
        proc.stdout.close()
    if proc.returncode != 0:
        raise InfluxBackupError(f"{what} failed (exit {proc.returncode}): {output.strip()[-1500:]}")
    return output


def backup(target: InfluxTarget, directory: Path, say: Callable[[str], None], *, start: str | None = None,
           end: str | None = None, timeout: float = 3600.0) -> dict[str, Any]:
    """Write a portable backup of the database into directory (which must not exist); what the manifest records."""
    described = target.describe()
    args = [find_binary("influxd", HINT), "backup", "-portable", "-database", target.database, "-host", target.rpc]
    if start:
        args += ["-start", start]
    if end:
        args += ["-end", end]
    _run([*args, str(directory)], directory, "influxd backup", say, timeout)
    return {**described, "rpc": target.rpc, "start": start, "end": end, "influxd": influxd_version()}


def restore(target: InfluxTarget, directory: Path, backed_up_db: str, say: Callable[[str], None], *,
            timeout: float = 3600.0) -> None:
    """Restore the backup in directory as target.database (which must not exist on the server)."""
    args = [find_binary("influxd", HINT), "restore", "-portable", "-db", backed_up_db, "-newdb", target.database,
            "-host", target.rpc, str(directory)]
    _run(args, directory, "influxd restore", say, timeout)


def check_restored(target: InfluxTarget, recorded: dict[str, Any]) -> list[str]:
    """What differs between the restored database and what the manifest recorded (empty: nothing)."""
    now = target.describe()
    problems = []
    key = ("name", "duration", "shardGroupDuration", "replicaN", "default")
    want = sorted(tuple(p.get(k) for k in key) for p in recorded.get("retention_policies", []))
    got = sorted(tuple(p.get(k) for k in key) for p in now["retention_policies"])
    if want != got:
        problems.append(f"retention policies differ: backed up {want}, restored {got}")
    # A backup limited by -start/-end may hold only some of the measurements the database had.
    if not recorded.get("start") and not recorded.get("end"):
        missing = sorted(set(recorded.get("measurements", [])) - set(now["measurements"]))
        if missing:
            problems.append(f"measurements missing after the restore: {', '.join(missing)}")
    return problems
