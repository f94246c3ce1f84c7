"""The append-only audit log: every operator action and every failed login, with who, what, when, where, result.

SQLite at ``state_dir/audit.sqlite`` (mode 0600), so it survives restarts. Two guards:

- Triggers refuse UPDATE and DELETE, so no code path of the API (or a slip at the sqlite3
  prompt) can change history.
- A hash chain: each row's ``hash`` is SHA-256 over the previous row's hash and the row's own
  content. Someone with write access to the file can drop the triggers, but cannot change,
  delete or insert a row without breaking the chain from there on; ``verify()`` finds the first
  broken row. Cutting rows off the end leaves a valid, shorter chain: the service logs the head
  (seq and hash) at start and every ``HEAD_LOG_EVERY`` rows, so the system log (kept elsewhere)
  anchors it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from fastapi import HTTPException, Request

log = logging.getLogger(__name__)

GENESIS = "0" * 64  # the "previous hash" of the first row
HEAD_LOG_EVERY = 100
MAX_FIELD = 200  # longer values are cut: the log must not grow by what a client sends

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    time_us INTEGER NOT NULL,
    who TEXT,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    result TEXT NOT NULL,
    address TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""


class AuditError(RuntimeError):
    """The audit log cannot be opened or written."""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One row of the audit log."""

    seq: int
    time_us: int
    who: str | None
    action: str
    target: str
    result: str
    address: str
    detail: str
    prev_hash: str
    hash: str

    def to_json(self) -> dict[str, object]:
        """The entry as the admin route shows it (time as seconds since the epoch)."""
        return {"seq": self.seq, "time": self.time_us / 1e6, "who": self.who, "action": self.action,
                "target": self.target, "result": self.result, "address": self.address, "detail": self.detail,
                "hash": self.hash}


def row_hash(prev_hash: str, content: tuple[int, int, str | None, str, str, str, str, str]) -> str:
    """SHA-256 (hex) over the previous hash and a row's content (seq, time_us, who, action, target,
    result, address, detail) in a canonical JSON form."""
    text = json.dumps([prev_hash, *content], ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _cut(text: str | None) -> str | None:
    if text is None:
        return None
    # Control characters would let a caller forge line breaks in `smartcity audit list`.
    clean = "".join(ch if ch.isprintable() else "?" for ch in text[:MAX_FIELD])
    return clean


class AuditLog:
    """The audit log file; thread-safe (the API calls it from its worker threads)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
            os.chmod(path, 0o600)
            # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE in append), so two
            # processes appending at once cannot both chain onto the same previous row.
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise AuditError(f"audit log {path}: {exc}") from None
        self._lock = threading.Lock()
        head = self.head()
        log.info("audit log %s opened: head seq %d hash %s", path, head[0], head[1])

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def head(self) -> tuple[int, str]:
        """(seq, hash) of the newest row; (0, GENESIS) when empty."""
        with self._lock:
            row = self._db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        return (0, GENESIS) if row is None else (int(row[0]), str(row[1]))

    def append(self, who: str | None, action: str, target: str, result: str, *, address: str,
               detail: str = "", at: float | None = None) -> AuditEntry:
        """Append one row, chained onto the newest; raises AuditError if it cannot be written."""
        time_us = int((time.time() if at is None else at) * 1_000_000)
        who_c, action_c, target_c, result_c = _cut(who), _cut(action) or "", _cut(target) or "", _cut(result) or ""
        address_c, detail_c = _cut(address) or "", _cut(detail) or ""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    row = self._db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
                    seq, prev = (1, GENESIS) if row is None else (int(row[0]) + 1, str(row[1]))
                    content = (seq, time_us, who_c, action_c, target_c, result_c, address_c, detail_c)
                    digest = row_hash(prev, content)
                    self._db.execute("INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                     (*content, prev, digest))
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise AuditError(f"audit log: cannot append: {exc}") from None
        if seq % HEAD_LOG_EVERY == 0:
            log.info("audit log head: seq %d hash %s", seq, digest)
        return AuditEntry(seq, time_us, who_c, action_c, target_c, result_c, address_c, detail_c, prev, digest)

    def entries(self, limit: int = 100, before: int | None = None, who: str | None = None,
                action: str | None = None) -> list[AuditEntry]:
        """The newest entries first (before: only seq < before), optionally of one operator or action."""
        sql, args = "SELECT * FROM audit WHERE 1=1", list[object]()
        if before is not None:
            sql += " AND seq < ?"
            args.append(before)
        if who is not None:
            sql += " AND who = ?"
            args.append(who)
        if action is not None:
            sql += " AND action = ?"
            args.append(action)
        sql += " ORDER BY seq DESC LIMIT ?"
        args.append(limit)
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [AuditEntry(*row) for row in rows]

    def verify(self) -> tuple[int, int | None]:
        """(rows checked, seq of the first row whose chain is broken or None when intact)."""
        prev, expected_seq, checked = GENESIS, 1, 0
        with self._lock:
            cursor = self._db.execute("SELECT * FROM audit ORDER BY seq")
            for row in cursor:
                entry = AuditEntry(*row)
                digest = row_hash(prev, (entry.seq, entry.time_us, entry.who, entry.action, entry.target,
                                         entry.result, entry.address, entry.detail))
                # A gap in seq is a deleted row; a wrong prev_hash or hash is an edited or inserted one.
                if entry.seq != expected_seq or entry.prev_hash != prev or entry.hash != digest:
                    return checked, entry.seq
                prev, expected_seq, checked = entry.hash, entry.seq + 1, checked + 1
        return checked, None


def client_address(request: Request) -> str:
    """The client's address as the server saw it (a proxy's X-Forwarded-For is not trusted)."""
    return request.client.host if request.client else "-"


def audit(request: Request, who: str | None, action: str, target: str, result: str,  # noqa: PLR0917 (the shared contract's signature)
          detail: str = "") -> None:
    """Append to the app's audit log: who, what (action on target), when (now), from where, result."""
    log_: AuditLog = request.app.state.audit
    try:
        log_.append(who, action, target, result, address=client_address(request), detail=detail)
    except AuditError as exc:
        # Fail closed: what cannot be audited is refused (the message names no file).
        log.error("%s", exc)
        raise HTTPException(503, "the audit log cannot be written; try again later") from None
