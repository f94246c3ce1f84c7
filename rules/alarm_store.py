"""The rules' alarms in SQLite: one row per occurrence, with its lifecycle raised -> acknowledged -> cleared.

An occurrence is raised when a rule with an alarm action activates for a slot and cleared when the
slot clears; an operator acknowledges it (who and when are recorded, and every lifecycle change is
kept in ``alarm_audit``). At most one occurrence per (rule, group) is open (not cleared) at a time,
enforced by a partial unique index: raising again after a restart returns the open one.

SQLite in WAL mode, so the rules service and an operator's ``smartcity alarms`` can use the file at
once: every write takes the write lock up front (BEGIN IMMEDIATE) and waits for it up to ``timeout``
seconds (the busy handler) instead of failing at once. The file is created 0600 in a 0700 directory:
alarm values and operator names are not for every local user (SQLite gives its -wal and -shm files
the database file's mode).
"""

from __future__ import annotations

import logging
import math
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from core import jsonfast
from rules.rule_model import Severity

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS alarm (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    rule TEXT NOT NULL, group_key TEXT NOT NULL, text TEXT NOT NULL, severity TEXT NOT NULL,
    raised_at REAL NOT NULL, acknowledged_at REAL, acknowledged_by TEXT, cleared_at REAL,
    values_json TEXT NOT NULL DEFAULT '{}');
CREATE UNIQUE INDEX IF NOT EXISTS alarm_open ON alarm (rule, group_key) WHERE cleared_at IS NULL;
CREATE INDEX IF NOT EXISTS alarm_raised ON alarm (raised_at);
CREATE TABLE IF NOT EXISTS alarm_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT, alarm_id INTEGER NOT NULL, action TEXT NOT NULL,
    who TEXT NOT NULL, at REAL NOT NULL);
"""
_COLUMNS = ("id, rule, group_key, text, severity, raised_at, acknowledged_at, acknowledged_by, cleared_at, "
            "values_json")
SERVICE = "rules"  # the audit's "who" for changes the rules service makes
DEFAULT_TIMEOUT = 10.0


class AlarmStoreError(RuntimeError):
    """The store could not be read or written (locked past the timeout, disk full, not a database)."""


class AlarmError(ValueError):
    """A request the store refuses: an unknown alarm id, or one already acknowledged."""


class AlarmState(StrEnum):
    """Where an occurrence is in its lifecycle."""

    RAISED = "raised"
    ACKNOWLEDGED = "acknowledged"
    CLEARED = "cleared"


@dataclass(frozen=True, slots=True)
class Alarm:
    """One alarm occurrence; values are the rule's values at raising (None: missing)."""

    id: int
    rule: str
    group: str
    text: str
    severity: Severity
    raised_at: float
    acknowledged_at: float | None
    acknowledged_by: str | None
    cleared_at: float | None
    values: dict[str, float | None]

    @property
    def state(self) -> AlarmState:
        """Cleared once cleared (acknowledged or not), else acknowledged once acknowledged, else raised."""
        if self.cleared_at is not None:
            return AlarmState.CLEARED
        return AlarmState.RAISED if self.acknowledged_at is None else AlarmState.ACKNOWLEDGED


Row = tuple[int, str, str, str, str, float, float | None, str | None, float | None, str]


def _alarm(row: Row) -> Alarm:
    values = jsonfast.loads(row[9])
    return Alarm(row[0], row[1], row[2], row[3], Severity(row[4]), row[5], row[6], row[7], row[8],
                 values if isinstance(values, dict) else {})


def finite_values(values: Mapping[str, float]) -> dict[str, float | None]:
    """Values for JSON: NaN (missing) and infinities become None, as JSON has no such numbers."""
    return {k: (float(v) if math.isfinite(v) else None) for k, v in values.items()}


def default_path(state_dir: str | os.PathLike[str]) -> Path:
    """Where the rules service and the CLI keep the alarms under a state directory."""
    return Path(state_dir) / "rules" / "alarms.sqlite"


def _create_private(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    if path.stat().st_mode & 0o077:
        try:
            path.chmod(0o600)
        except OSError as exc:  # someone else's file: usable, but say so
            log.warning("alarm store %s is readable by others and cannot be made private: %s", path, exc)


class AlarmStore:
    """Alarm occurrences in one SQLite file; thread-safe, and safe for several processes at once."""

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            _create_private(self.path)
            # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE below), never implicit.
            self._db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            with self._write():
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except (OSError, sqlite3.Error) as exc:
            raise AlarmStoreError(f"alarm store {self.path}: {exc}") from exc

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> AlarmStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        # Called with self._lock held, or from __init__. IMMEDIATE takes the write lock now, so two
        # processes never both read and then fail to upgrade (SQLITE_BUSY without the busy handler).
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    @contextmanager
    def _guard(self) -> Iterator[None]:
        with self._lock:
            try:
                yield
            except sqlite3.Error as exc:
                raise AlarmStoreError(f"alarm store {self.path}: {exc}") from exc

    def _audit(self, alarm_id: int, action: AlarmState, who: str, at: float) -> None:
        self._db.execute("INSERT INTO alarm_audit (alarm_id, action, who, at) VALUES (?, ?, ?, ?)",
                         (alarm_id, action.value, who, at))

    def raise_or_find(self, rule: str, group: str, text: str, severity: Severity, *, at: float,
                      values: Mapping[str, float]) -> tuple[int, bool]:
        """(id, True) for a new occurrence, or (id, False) for the one already open for (rule, group)."""
        with self._guard(), self._write() as db:
            row = db.execute("SELECT id FROM alarm WHERE rule = ? AND group_key = ? AND cleared_at IS NULL",
                             (rule, group)).fetchone()
            if row is not None:
                return int(row[0]), False
            cur = db.execute("INSERT INTO alarm (rule, group_key, text, severity, raised_at, values_json) "
                             "VALUES (?, ?, ?, ?, ?, ?)",
                             (rule, group, text, Severity(severity).value, at,
                              jsonfast.dumps(finite_values(values)).decode()))
            alarm_id = int(cur.lastrowid or 0)
            self._audit(alarm_id, AlarmState.RAISED, SERVICE, at)
        log.info("alarm %d raised: %s (%s) for rule %s group %s", alarm_id, text, severity, rule, group)
        return alarm_id, True

    def raise_alarm(self, rule: str, group: str, text: str, severity: Severity, *, at: float,
                    values: Mapping[str, float]) -> int:
        """Raise an alarm for the slot and return its id; an open one for (rule, group) is returned as is."""
        return self.raise_or_find(rule, group, text, severity, at=at, values=values)[0]

    def clear(self, rule: str, group: str, at: float) -> int | None:
        """Clear the open occurrence of (rule, group); its id, or None when none was open."""
        with self._guard(), self._write() as db:
            row = db.execute("SELECT id FROM alarm WHERE rule = ? AND group_key = ? AND cleared_at IS NULL",
                             (rule, group)).fetchone()
            if row is None:
                return None
            alarm_id = int(row[0])
            db.execute("UPDATE alarm SET cleared_at = ? WHERE id = ?", (at, alarm_id))
            self._audit(alarm_id, AlarmState.CLEARED, SERVICE, at)
        log.info("alarm %d cleared for rule %s group %s", alarm_id, rule, group)
        return alarm_id

    def acknowledge(self, alarm_id: int, who: str, at: float) -> Alarm:
        """Record that who acknowledged the alarm at at (also after it cleared); AlarmError if unknown or done."""
        who = who.strip()
        if not who:
            raise AlarmError("acknowledging needs the operator's name")
        with self._guard(), self._write() as db:
            row = db.execute(f"SELECT {_COLUMNS} FROM alarm WHERE id = ?", (alarm_id,)).fetchone()
            if row is None:
                raise AlarmError(f"no alarm {alarm_id}")
            found = _alarm(row)
            if found.acknowledged_at is not None:
                raise AlarmError(f"alarm {alarm_id} was already acknowledged by {found.acknowledged_by} "
                                 f"at {found.acknowledged_at:.0f}")
            db.execute("UPDATE alarm SET acknowledged_at = ?, acknowledged_by = ? WHERE id = ?", (at, who, alarm_id))
            self._audit(alarm_id, AlarmState.ACKNOWLEDGED, who, at)
        # The audit line: who did what to which alarm, when.
        log.info("audit: alarm %d (rule %s group %s: %s) acknowledged by %s at %.3f", alarm_id, found.rule,
                 found.group, found.text, who, at)
        return Alarm(found.id, found.rule, found.group, found.text, found.severity, found.raised_at, at, who,
                     found.cleared_at, found.values)

    def get(self, alarm_id: int) -> Alarm | None:
        """One occurrence by id."""
        with self._guard():
            row = self._db.execute(f"SELECT {_COLUMNS} FROM alarm WHERE id = ?", (alarm_id,)).fetchone()
        return None if row is None else _alarm(row)

    def open_alarms(self) -> list[Alarm]:
        """Occurrences not cleared yet, oldest first."""
        with self._guard():
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM alarm WHERE cleared_at IS NULL "
                                    "ORDER BY raised_at, id").fetchall()
        return [_alarm(r) for r in rows]

    def history(self, limit: int = 100) -> list[Alarm]:
        """The latest occurrences, open or cleared, newest first."""
        with self._guard():
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM alarm ORDER BY raised_at DESC, id DESC LIMIT ?",
                                    (max(0, limit),)).fetchall()
        return [_alarm(r) for r in rows]

    def audit_trail(self, alarm_id: int) -> list[tuple[AlarmState, str, float]]:
        """(what, who, when) of every lifecycle change of one occurrence, in order."""
        with self._guard():
            rows = self._db.execute("SELECT action, who, at FROM alarm_audit WHERE alarm_id = ? ORDER BY id",
                                    (alarm_id,)).fetchall()
        return [(AlarmState(a), str(w), float(t)) for a, w, t in rows]
