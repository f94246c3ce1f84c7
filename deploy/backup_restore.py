"""`smartcity restore`: a backup of `smartcity backup` back into (fresh) services, checked before and after.

Order, so that a bad backup changes nothing: unpack (an archive) into a private temporary directory,
check every file against the manifest's size and SHA-256 (naming each mismatch, and any file the
manifest does not list), refuse to overwrite existing state unless --force, and only then restore
part by part. Afterwards the audit log's hash chain is verified and its head compared with the
manifest's, each restored database passes SQLite's quick_check, and InfluxDB's retention policies
and measurements are compared with what was backed up.

SQLite files go back through SQLite's backup API into the target path, never by replacing the file:
a leftover -wal beside a replaced file would be replayed into it. The services must be stopped (a
running rules worker would overwrite its snapshot at stop; the restore refuses while one holds its lock).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from deploy import backup_influx
from deploy.backup import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    BackupError,
    Locations,
    Say,
    part,
    read_only,
    sha256_file,
    write_atomic,
)


@contextmanager
def opened(source: Path, work_dir: Path | None = None) -> Iterator[Path]:
    """The backup's directory: source itself, or an archive unpacked into a private temporary directory."""
    if source.is_dir():
        yield source
        return
    if not source.is_file():
        raise BackupError(f"{source}: no such backup")
    tmp = Path(tempfile.mkdtemp(prefix="smartcity-restore-", dir=work_dir))  # 0700
    try:
        try:
            with tarfile.open(source, mode="r:") as tar:
                # The "data" filter refuses absolute names, .., links and devices: an archive cannot
                # write outside tmp.
                tar.extractall(tmp, filter="data")
        except (tarfile.TarError, OSError) as exc:
            raise BackupError(f"{source}: not a readable backup archive: {exc}") from None
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_manifest(root: Path) -> dict[str, Any]:
    """The manifest, checked to be one this code can restore."""
    try:
        manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupError(f"{root} has no {MANIFEST}: not a smartcity backup") from None
    except ValueError as exc:
        raise BackupError(f"{MANIFEST} is not valid JSON (damaged?): {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{MANIFEST} is not a {FORMAT} manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError(f"backup format version {manifest.get('format_version')} is not {FORMAT_VERSION}: "
                          "restore it with the platform version that wrote it")
    return manifest


def verify(root: Path, manifest: dict[str, Any], say: Say) -> list[str]:
    """Every file against its size and checksum; the problems found (empty: the backup is intact)."""
    problems: list[str] = []
    listed: set[str] = {MANIFEST}
    for p in manifest["parts"]:
        size = 0
        for entry in p["files"]:
            rel = entry["path"]
            listed.add(rel)
            path = root / rel
            if not path.is_file():
                problems.append(f"{rel}: missing")
                continue
            actual = sha256_file(path)
            if path.stat().st_size != entry["size"] or actual != entry["sha256"]:
                problems.append(f"{rel}: checksum mismatch (sha256 {actual}, manifest says {entry['sha256']}; "
                                f"{path.stat().st_size} bytes, manifest says {entry['size']})")
            size += entry["size"]
        say(f"  checked {p['name']}: {len(p['files'])} file(s), {size:,} bytes")
    extra = sorted(f.relative_to(root).as_posix() for f in root.rglob("*")
                   if f.is_file() and f.relative_to(root).as_posix() not in listed)
    problems += [f"{rel}: not listed in the manifest" for rel in extra]
    return problems


def target_of(name: str, entry: dict[str, Any], loc: Locations) -> Path | None:
    """Where a backed-up file of part name goes under loc (None: loc has no place for it)."""
    p = part(name)
    home = p.home(loc)
    if home is None:
        return None
    return home / Path(entry["path"]).name if p.kind == "files" else home


def _rules_worker_running(loc: Locations) -> list[str]:
    held = []
    for lock in sorted(loc.rules_dir.glob("state-*.lock")) if loc.rules_dir.is_dir() else []:
        fd = os.open(lock, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            held.append(str(lock))
        finally:
            os.close(fd)
    return held


def existing_state(manifest: dict[str, Any], loc: Locations, only: set[str]) -> list[str]:
    """What a restore of the chosen parts would overwrite (an empty file or database is nothing)."""
    found = []
    for p in manifest["parts"]:
        if p["name"] not in only:
            continue
        if p["name"] == "influxdb":
            if loc.influx is not None and loc.influx.database_exists() and loc.influx.describe()["measurements"]:
                found.append(f"InfluxDB database {loc.influx.database} at {loc.influx.url} has data")
            continue
        for entry in p["files"]:
            target = target_of(p["name"], entry, loc)
            if target is not None and target.exists() and target.stat().st_size > 0:
                found.append(str(target))
    return found


def _restore_sqlite(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.close(os.open(dst, os.O_WRONLY | os.O_CREAT, 0o600))
    os.chmod(dst, 0o600)
    source, target = read_only(src), sqlite3.connect(dst, timeout=30)
    try:
        source.backup(target)
        check = target.execute("PRAGMA quick_check").fetchone()[0]
    finally:
        source.close()
        target.close()
    if check != "ok":
        raise BackupError(f"restored {dst} fails SQLite's quick_check: {check}")


def _restore_part(p: dict[str, Any], root: Path, loc: Locations, say: Say, influx_timeout: float) -> list[str]:
    name = p["name"]
    if name == "influxdb":
        if loc.influx is None:
            say("  influxdb: no InfluxDB given (--no-influx), skipped")
            return []
        if loc.influx.database_exists():
            say(f"  influxdb: dropping the existing database {loc.influx.database}")
            loc.influx.drop_database()
        backup_influx.restore(loc.influx, root / "influxdb", p["database"], say, timeout=influx_timeout)
        problems = backup_influx.check_restored(loc.influx, p)
        say(f"  influxdb: database {loc.influx.database} restored ({len(p['measurements'])} measurements, "
            f"{sum(e['size'] for e in p['files']):,} bytes of backup)")
        return problems
    done = 0
    for entry in p["files"]:
        target = target_of(name, entry, loc)
        if target is None:
            say(f"  {name}: no place for {entry['path']} (its option is not set), skipped")
            continue
        if p["kind"] == "sqlite":
            _restore_sqlite(root / entry["path"], target)
        else:
            mode = int(entry.get("mode", "0600"), 8)
            write_atomic(target, (root / entry["path"]).read_bytes(), mode & 0o777)
        done += entry["size"]
        say(f"  {name}: {target} ({entry['size']:,} bytes)")
    if name == "audit" and p["files"]:
        return _check_audit(target_of(name, p["files"][0], loc), p.get("chain", {}), say)
    return []


def _check_audit(path: Path | None, chain: dict[str, Any], say: Say) -> list[str]:
    if path is None:
        return []
    from api.operators.audit import AuditLog  # noqa: PLC0415 (the API's code only when an audit log is restored)

    log = AuditLog(path)
    try:
        checked, broken = log.verify()
        head = log.head()
    finally:
        log.close()
    if broken is not None:
        return [f"audit log {path}: hash chain broken at seq {broken} (entries 1-{checked} intact)"]
    if chain and (head[0], head[1]) != (chain.get("head_seq"), chain.get("head_hash")):
        return [f"audit log {path}: head is seq {head[0]} {head[1]}, the backup recorded "
                f"seq {chain.get('head_seq')} {chain.get('head_hash')}"]
    say(f"  audit: hash chain intact, {checked} entries, head seq {head[0]}")
    return []


def restore(source: Path, loc: Locations, say: Say, *, force: bool = False, only: set[str] | None = None,
            work_dir: Path | None = None, influx_timeout: float = 3600.0) -> int:
    """Restore a backup into loc; 0 when done and verified, 1 when refused or a check failed afterwards."""
    with opened(source, work_dir) as root:
        manifest = load_manifest(root)
        say(f"backup of {manifest['host']} at {manifest['created_at']} (platform {manifest['platform_version']}): "
            f"{', '.join(p['name'] for p in manifest['parts'])}")
        say("[1/3] checking every file against the manifest")
        problems = verify(root, manifest, say)
        if problems:
            for problem in problems:
                say(f"  REFUSED: {problem}")
            say("restore refused: the backup is damaged or was changed; nothing was restored")
            return 1
        chosen = {p["name"] for p in manifest["parts"]} if only is None else only
        running = _rules_worker_running(loc)
        if running:
            say(f"restore refused: a rules worker is running (it holds {', '.join(running)}); stop the services")
            return 1
        existing = existing_state(manifest, loc, chosen)
        if existing and not force:
            for what in existing:
                say(f"  exists: {what}")
            say("restore refused: it would overwrite the state above; stop the services and use --force "
                "to replace it")
            return 1
        say("[2/3] restoring")
        problems = []
        parts = [p for p in manifest["parts"] if p["name"] in chosen]
        for n, p in enumerate(parts, start=1):
            say(f" ({n}/{len(parts)}) {p['name']}: {p['description']}")
            problems += _restore_part(p, root, loc, say, influx_timeout)
        say("[3/3] checks after the restore")
        for problem in problems:
            say(f"  FAILED: {problem}")
        if problems:
            return 1
        say(f"restore complete: {len(parts)} parts from {source}")
        return 0
