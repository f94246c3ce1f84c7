"""`smartcity backup`: the platform's state in one directory or .tar archive, with a manifest of checksums.

What is in it (docs/backup.md says why, and what is left out): InfluxDB's database (``influxd backup
-portable``), the registry, the rules' state (engine snapshots, holds, rule overrides), the alarm store,
the API's SensorThings metadata and audit log, the operators file and, when given, the rule file.

Each part is consistent by itself: SQLite databases are copied with SQLite's online backup API (one
read transaction, so a copy is one commit's state even while the services write; a plain copy of a
live WAL database can be torn), and the JSON, TOML and .npz files are read once into memory (their
writers replace them atomically, so one read is one version). The parts are not one instant of the
whole platform: each is taken after the one before.

Every file of a backup is 0600 and so is the archive: it holds the operators' argon2 hashes, the
audit log and the alarms. A backup is built under a hidden ``.NAME.*.partial`` name and renamed when
complete, so a backup that was interrupted never looks like one.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import secrets
import shutil
import socket
import sqlite3
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.private_file import atomic_writer, fsync_dir
from deploy import backup_influx
from deploy.backup_influx import InfluxTarget

FORMAT = "smartcity-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
Say = Callable[[str], None]


class BackupError(RuntimeError):
    """A backup or restore that cannot go on; the message says what and where."""


@dataclass(frozen=True, slots=True)
class Locations:
    """Where the platform keeps its state on this host (the services' own defaults, from the environment)."""

    registry: Path
    state_dir: Path  # SMARTCITY_STATE_DIR: rules/ (snapshots, alarms, control files), ingest/ (spools)
    api_state_dir: Path  # SMARTCITY_API_STATE_DIR: sta.sqlite, audit.sqlite
    operators: Path | None = None  # SMARTCITY_API_OPERATORS
    rules_file: Path | None = None  # SMARTCITY_RULES
    influx: InfluxTarget | None = None  # None: no InfluxDB part
    control_dir: Path | None = None  # the rules' --control-dir (the --alarms file's directory); None: rules_dir

    @property
    def rules_dir(self) -> Path:
        """The rules service's directory: its engine snapshots."""
        return self.state_dir / "rules"

    @property
    def control(self) -> Path:
        """The directory the rules share with the API: alarms.sqlite, holds.json, rule-overrides.json.

        The demo keeps it in rules_dir; production in /var/lib/smartcity-rules/control (the units' --alarms).
        """
        return self.control_dir or self.rules_dir


@dataclass(frozen=True, slots=True)
class Part:
    """One part of a backup: what it is, how it is copied, and where it lives under given Locations."""

    name: str
    kind: str  # "sqlite", "file" (one file) or "files" (matching files of a directory)
    description: str
    home: Callable[[Locations], Path | None]  # the file ("sqlite", "file") or the directory ("files")
    patterns: tuple[str, ...] = ()


PARTS = (
    Part("registry", "file", "the asset registry (GeoJSON FeatureCollection)", lambda loc: loc.registry),
    Part("operators", "file", "the API's operators: names, roles, argon2id hashes (TOML)", lambda loc: loc.operators),
    Part("rules-file", "file", "the rule file the rules service runs", lambda loc: loc.rules_file),
    Part("rule-state", "files", "the rules workers' engine snapshots", lambda loc: loc.rules_dir, ("state-*.npz",)),
    Part("rule-control", "files", "the operators' holds and rule overrides", lambda loc: loc.control,
         ("holds.json", "rule-overrides.json")),
    Part("alarms", "sqlite", "the rules' alarm store (occurrences and their lifecycle audit)",
         lambda loc: loc.control / "alarms.sqlite"),
    Part("sta-metadata", "sqlite", "the SensorThings entities operators created through the API",
         lambda loc: loc.api_state_dir / "sta.sqlite"),
    Part("audit", "sqlite", "the API's hash-chained, append-only audit log",
         lambda loc: loc.api_state_dir / "audit.sqlite"),
)
PART_NAMES = ("influxdb", *(p.name for p in PARTS))


def part(name: str) -> Part:
    """The part called name."""
    return next(p for p in PARTS if p.name == name)


def sources(p: Part, loc: Locations) -> list[Path]:
    """The files of part p that exist under loc."""
    home = p.home(loc)
    if home is None:
        return []
    if p.kind != "files":
        return [home] if home.is_file() else []
    if not home.is_dir():
        return []
    return sorted({f for pattern in p.patterns for f in home.glob(pattern) if f.is_file()})


def sha256_file(path: Path) -> str:
    """The hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def write_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace path with data atomically; the file has mode from its first byte."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with atomic_writer(path, mode) as fh:
        fh.write(data)


def read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection (it can never create or change the file)."""
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)


def copy_sqlite(src: Path, dst: Path) -> None:
    """One consistent copy of a (live) SQLite database as a single self-contained 0600 file."""
    dst.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.close(os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    source, target = read_only(src), sqlite3.connect(dst)
    try:
        source.backup(target)  # all pages in one step: one read transaction, one commit's state
        # No -wal beside the copy: the backup is one file per database.
        target.execute("PRAGMA journal_mode=DELETE")
        check = target.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise BackupError(f"the copy of {src} fails SQLite's quick_check: {check}")
    finally:
        source.close()
        target.close()


def file_entry(root: Path, rel: str, source_mode: int | None = None) -> dict[str, Any]:
    """The manifest's record of one file of the backup."""
    path = root / rel
    entry: dict[str, Any] = {"path": rel, "size": path.stat().st_size, "sha256": sha256_file(path)}
    if source_mode is not None:
        entry["mode"] = f"{source_mode & 0o777:04o}"
    return entry


def spool_bytes(state_dir: Path) -> int:
    """Bytes waiting in the ingest workers' spools (points not yet in InfluxDB, so not in a backup)."""
    base = state_dir / "ingest"
    return sum(f.stat().st_size for f in base.glob("*/spool/*.spool") if f.is_file()) if base.is_dir() else 0


def platform_version() -> str:
    """The installed smartcity distribution's version."""
    try:
        return importlib.metadata.version("smartcity")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _audit_chain(path: Path) -> dict[str, Any]:
    # Imported here: the API's code (FastAPI) is needed only when there is an audit log to check.
    from api.operators.audit import AuditLog  # noqa: PLC0415

    log = AuditLog(path)
    try:
        checked, broken = log.verify()
        seq, head = log.head()
    finally:
        log.close()
    # AuditLog opens in WAL mode; the backup's copy stays one file.
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=DELETE")
    db.close()
    return {"entries": checked, "broken_at": broken, "head_seq": seq, "head_hash": head}


def _copy_part(p: Part, loc: Locations, root: Path, say: Say) -> dict[str, Any] | None:
    files = sources(p, loc)
    if not files:
        say(f"  {p.name}: not present, skipped")
        return None
    entries = []
    for src in files:
        rel = f"{p.name}/{src.name}"
        mode = src.stat().st_mode
        if p.kind == "sqlite":
            copy_sqlite(src, root / rel)
        else:
            write_atomic(root / rel, src.read_bytes())  # one read: one version of a file replaced atomically
        entries.append(file_entry(root, rel, mode))
    record: dict[str, Any] = {"name": p.name, "kind": p.kind, "description": p.description,
                              "source": str(p.home(loc)), "files": entries}
    if p.name == "audit":
        record["chain"] = _audit_chain(root / entries[0]["path"])
        entries[0].update(file_entry(root, entries[0]["path"], mode))
    say(f"  {p.name}: {len(entries)} file(s), {sum(e['size'] for e in entries):,} bytes")
    return record


def _influx_part(target: InfluxTarget, root: Path, say: Say, *, start: str | None, end: str | None,
                 timeout: float) -> dict[str, Any]:
    directory = root / "influxdb"
    info = backup_influx.backup(target, directory, say, start=start, end=end, timeout=timeout)
    directory.chmod(0o700)
    entries = []
    for f in sorted(directory.iterdir()):
        f.chmod(0o600)
        entries.append(file_entry(root, f"influxdb/{f.name}"))
    say(f"  influxdb: database {target.database}, {len(info['retention_policies'])} retention policies, "
        f"{len(info['measurements'])} measurements, {len(entries)} files, {sum(e['size'] for e in entries):,} bytes")
    return {"name": "influxdb", "kind": "influxdb-portable", "source": target.url,
            "description": "InfluxDB database (influxd backup -portable: metadata and shards)",
            "files": entries, **info}


def create_backup(loc: Locations, out: Path, say: Say, *, start: str | None = None, end: str | None = None,
                  influx_timeout: float = 3600.0) -> dict[str, Any]:
    """Write a backup to out (a directory, or an archive if it ends in .tar); returns the manifest."""
    if out.exists():
        raise BackupError(f"{out} exists: a backup never overwrites another (choose a new name)")
    archive = out.name.endswith(".tar")
    out.parent.mkdir(parents=True, exist_ok=True)
    root = out.parent / f".{out.name}.{secrets.token_hex(4)}.partial"
    root.mkdir(mode=0o700)
    began = time.monotonic()
    try:
        parts: list[dict[str, Any]] = []
        steps = len(PARTS) + (loc.influx is not None)
        step = 0
        if loc.influx is not None:
            step += 1
            say(f"[{step}/{steps}] influxdb: influxd backup -portable from {loc.influx.rpc}")
            parts.append(_influx_part(loc.influx, root, say, start=start, end=end, timeout=influx_timeout))
        for p in PARTS:
            step += 1
            say(f"[{step}/{steps}] {p.name}: {p.description}")
            record = _copy_part(p, loc, root, say)
            if record is not None:
                parts.append(record)
        spooled = spool_bytes(loc.state_dir)
        if spooled:
            say(f"  WARNING: {spooled:,} bytes wait in the ingest spools: those points are not in InfluxDB yet, "
                "so not in this backup")
        manifest = {
            "format": FORMAT, "format_version": FORMAT_VERSION,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "created_at_epoch": time.time(),
            "host": socket.gethostname(), "platform_version": platform_version(), "parts": parts,
            "not_included": {"ingest spool": {"bytes": spooled, "why": "batches in flight to InfluxDB, owned by "
                                              "a running worker; they reach InfluxDB (and the next backup)"},
                             "$count cache": {"why": "api observation_counts.sqlite is rebuilt from InfluxDB"}},
        }
        write_atomic(root / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode())
        total = sum(e["size"] for p in parts for e in p["files"])
        if archive:
            _write_tar(root, out)
            shutil.rmtree(root)
        else:
            root.rename(out)
            fsync_dir(out.parent)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    say(f"backup written to {out}: {len(parts)} parts, {total:,} bytes in "
        f"{sum(len(p['files']) for p in parts)} files, {time.monotonic() - began:.1f} s")
    return manifest


def _write_tar(root: Path, out: Path) -> None:
    with atomic_writer(out) as fh, tarfile.open(fileobj=fh, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(root / MANIFEST, arcname=MANIFEST)
        for f in sorted(root.rglob("*")):
            if f.is_file() and f.name != MANIFEST:
                tar.add(f, arcname=f.relative_to(root).as_posix())
