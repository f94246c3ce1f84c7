"""The gateway's durable store-and-forward queue: readings on disk from the moment they are read until the
broker has acknowledged the batch that carries them.

SQLite in WAL mode (the standard library's, nothing to install on a Pi). Two tables:

- ``reading``: accepted readings not yet in a batch; written in one transaction per frame or line, so a
  crash or a SIGKILL of the agent at any moment loses none of them (WAL with synchronous=NORMAL survives
  a process crash; a power cut may lose the last commits before the next checkpoint);
- ``batch``: sealed SenML packs with their ``seq``, kept until the broker's PUBACK. Sealing moves
  readings into a batch and advances the persisted next ``seq`` in one transaction, so numbers never
  repeat across restarts and a batch is never built twice.

Bounds: ``max_readings`` pending plus sealed, and ``max_age`` (how long a reading has waited here). Past
either, the oldest go first: whole sealed batches (the platform sees the gap in ``seq`` and counts it),
then pending readings; every reading that goes is counted in ``dropped``. Newer readings are worth more
to a city than old ones after an outage that long, and the count keeps the loss visible.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from core import senml
from core.senml import Reading

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS reading (id INTEGER PRIMARY KEY, device TEXT, metric TEXT, kind INTEGER,
                                    value REAL, text TEXT, time REAL, unit TEXT, added REAL);
CREATE TABLE IF NOT EXISTS batch (seq INTEGER PRIMARY KEY, created REAL, readings INTEGER, payload BLOB);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER);
CREATE TABLE IF NOT EXISTS fcnt (address TEXT, direction INTEGER, value INTEGER, PRIMARY KEY (address, direction));
"""
_NUMBER, _BOOL, _TEXT = 0, 1, 2
DEFAULT_MAX_READINGS = 1_000_000
DEFAULT_MAX_AGE = 7 * 86400.0  # the ingest refuses readings older than this anyway


@dataclass(frozen=True, slots=True)
class Batch:
    """A sealed SenML pack waiting for its PUBACK."""

    seq: int
    readings: int
    payload: bytes


def _row(r: Reading) -> tuple[str, str, int, float | None, str | None, float, str | None]:
    if isinstance(r.value, bool):
        return r.device, r.metric, _BOOL, float(r.value), None, r.time, r.unit
    if isinstance(r.value, str):
        return r.device, r.metric, _TEXT, None, r.value, r.time, r.unit
    return r.device, r.metric, _NUMBER, float(r.value), None, r.time, r.unit


def _reading(row: tuple[str, str, int, float | None, str | None, float, str | None]) -> Reading:
    device, metric, kind, value, text, when, unit = row
    if kind == _BOOL:
        return Reading(device, metric, bool(value), when, unit)
    if kind == _TEXT:
        return Reading(device, metric, text or "", when, unit)
    return Reading(device, metric, float(value or 0.0), when, unit)


class DurableQueue:
    """Thread-safe: ports add readings from their threads, the uplink seals and acknowledges from its own."""

    def __init__(self, path: str | Path, *, max_readings: int = DEFAULT_MAX_READINGS,
                 max_age: float = DEFAULT_MAX_AGE) -> None:
        self.path = str(path)
        self.max_readings = max_readings
        self.max_age = max_age
        self.dropped = 0
        self.refused = 0  # readings with a non-finite value, never queued
        self._lock = threading.Lock()
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        # The queue is read and written at its ends, so a small page cache does: SQLite's default of
        # 2 MB would be a twentieth of the agent's memory on a gateway (bench/README.md, edge agent).
        self._db.execute("PRAGMA cache_size=-256")
        self._db.executescript(_SCHEMA)
        self._pending = self._scalar("SELECT count(*) FROM reading")
        self._sealed = self._scalar("SELECT coalesce(sum(readings), 0) FROM batch")
        if self._pending or self._sealed:
            log.warning("edge queue %s: %d readings and %d batches from an earlier run will be sent",
                        self.path, self._pending, self._scalar("SELECT count(*) FROM batch"))

    def _scalar(self, sql: str) -> int:
        return int(self._db.execute(sql).fetchone()[0])

    # -- state ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        """Readings not yet acknowledged by the broker (pending and sealed)."""
        return self._pending + self._sealed

    @property
    def next_seq(self) -> int:
        """The seq the next batch will get (persisted: it carries on after a restart)."""
        with self._lock:
            return self._next_seq_locked()

    def oldest_age(self, now: float | None = None) -> float:
        """Seconds the oldest unacknowledged reading has waited (0 when empty)."""
        with self._lock:
            row = self._db.execute("SELECT min(t) FROM (SELECT min(added) AS t FROM reading "
                                   "UNION ALL SELECT min(created) FROM batch)").fetchone()
        return 0.0 if row[0] is None else max(0.0, (time.time() if now is None else now) - float(row[0]))

    # -- the ports' side -------------------------------------------------------------------------
    def extend(self, readings: Iterable[Reading], *, fcnt: tuple[str, int] | None = None) -> None:
        """Accept readings durably (one transaction); the oldest go (counted) beyond the bound.

        fcnt = (address, counter) records, in the same transaction, the frame counter of the LoRa frame
        the readings came from: after a crash the counter is never behind the readings (a replay of
        that frame would duplicate them) nor ahead of them (its readings would be lost).
        """
        added = time.time()
        given = list(readings)
        # A non-finite value can never be encoded as JSON: it would fail every seal of its batch.
        good = [r for r in given if not (isinstance(r.value, float) and not math.isfinite(r.value))]
        self.refused += len(given) - len(good)
        rows = [(*_row(r), added) for r in good]
        if not rows and fcnt is None:
            return
        with self._lock:
            with self._db:
                self._db.execute("BEGIN")
                self._db.executemany("INSERT INTO reading (device, metric, kind, value, text, time, unit, added) "
                                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
                if fcnt is not None:
                    self._set_counter(fcnt[0], 0, fcnt[1])
            self._pending += len(rows)
            if len(self) > self.max_readings:
                self._drop_oldest(len(self) - self.max_readings)

    # -- frame counters (replay protection) -----------------------------------------------------
    def _set_counter(self, address: str, direction: int, value: int) -> None:
        self._db.execute("INSERT INTO fcnt (address, direction, value) VALUES (?, ?, ?) ON CONFLICT(address, "
                         "direction) DO UPDATE SET value = excluded.value", (address, direction, value))

    def counters(self, direction: int = 0) -> dict[str, int]:
        """The last accepted (0, uplink) or sent (1, downlink) frame counter per node address."""
        with self._lock:
            rows = self._db.execute("SELECT address, value FROM fcnt WHERE direction = ?", (direction,)).fetchall()
        return {str(a): int(v) for a, v in rows}

    def next_downlink_counter(self, address: str) -> int:
        """Reserve the next downlink frame counter of a node (persisted before the frame is sent)."""
        with self._lock, self._db:
            self._db.execute("BEGIN")
            row = self._db.execute("SELECT value FROM fcnt WHERE address = ? AND direction = 1", (address,)).fetchone()
            # A fresh gateway starts from the clock, so a reinstalled one is still ahead of what nodes saw.
            value = int(row[0]) + 1 if row else int(time.time())
            self._set_counter(address, 1, value)
        return value

    # -- the uplink's side ---------------------------------------------------------------------
    def seal(self, batch_size: int) -> Batch | None:
        """Move up to batch_size pending readings into a new numbered batch; None if nothing is pending."""
        with self._lock:
            rows = self._db.execute("SELECT id, device, metric, kind, value, text, time, unit, added FROM reading "
                                    "ORDER BY id LIMIT ?", (batch_size,)).fetchall()
            if not rows:
                return None
            seq = self._next_seq_locked()
            payload = senml.encode([_reading(r[1:8]) for r in rows], seq)
            with self._db:
                self._db.execute("BEGIN")
                self._db.execute("DELETE FROM reading WHERE id <= ?", (rows[-1][0],))
                self._db.execute("INSERT INTO batch (seq, created, readings, payload) VALUES (?, ?, ?, ?)",
                                 (seq, min(r[8] for r in rows), len(rows), payload))
                self._db.execute("INSERT INTO meta (key, value) VALUES ('next_seq', ?) "
                                 "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (seq + 1,))
            self._pending -= len(rows)
            self._sealed += len(rows)
            return Batch(seq, len(rows), payload)

    def _next_seq_locked(self) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'next_seq'").fetchone()
        return int(row[0]) if row else 0

    def sealed(self, after: int = -1, limit: int = 100) -> list[Batch]:
        """Sealed batches with seq > after, oldest first (to send, or to send again after a restart)."""
        with self._lock:
            rows = self._db.execute("SELECT seq, readings, payload FROM batch WHERE seq > ? ORDER BY seq LIMIT ?",
                                    (after, limit)).fetchall()
        return [Batch(int(s), int(n), bytes(p)) for s, n, p in rows]

    def acknowledged(self, seqs: Iterable[int]) -> int:
        """Forget the batches the broker has acknowledged; returns how many readings they held."""
        seqs = list(seqs)
        if not seqs:
            return 0
        with self._lock, self._db:
            self._db.execute("BEGIN")
            marks = ",".join("?" * len(seqs))
            n = int(self._db.execute(f"SELECT coalesce(sum(readings), 0) FROM batch WHERE seq IN ({marks})",
                                     seqs).fetchone()[0])
            self._db.execute(f"DELETE FROM batch WHERE seq IN ({marks})", seqs)
        self._sealed -= n
        return n

    def expire(self, now: float | None = None) -> int:
        """Drop (and count) what is older than max_age; returns the readings dropped."""
        cutoff = (time.time() if now is None else now) - self.max_age
        with self._lock, self._db:
            self._db.execute("BEGIN")
            old_batches = int(self._db.execute("SELECT coalesce(sum(readings), 0) FROM batch WHERE created < ?",
                                               (cutoff,)).fetchone()[0])
            self._db.execute("DELETE FROM batch WHERE created < ?", (cutoff,))
            old_readings = self._db.execute("DELETE FROM reading WHERE added < ?", (cutoff,)).rowcount
        self._sealed -= old_batches
        self._pending -= old_readings
        dropped = old_batches + old_readings
        if dropped:
            self.dropped += dropped
            log.warning("edge queue: %d readings older than %.0f s dropped", dropped, self.max_age)
        return dropped

    def _drop_oldest(self, n: int) -> None:
        # Whole batches first (oldest seq), then pending readings: a batch is the unit the platform counts.
        dropped = 0
        with self._db:
            self._db.execute("BEGIN")
            while dropped < n:
                row = self._db.execute("SELECT seq, readings FROM batch ORDER BY seq LIMIT 1").fetchone()
                if row is None:
                    break
                self._db.execute("DELETE FROM batch WHERE seq = ?", (row[0],))
                self._sealed -= int(row[1])
                dropped += int(row[1])
            if dropped < n:
                cur = self._db.execute("DELETE FROM reading WHERE id IN (SELECT id FROM reading ORDER BY id "
                                       "LIMIT ?)", (n - dropped,))
                self._pending -= cur.rowcount
                dropped += cur.rowcount
        self.dropped += dropped
        log.warning("edge queue full (%d readings): dropped the oldest %d", self.max_readings, dropped)

    def close(self) -> None:
        """Checkpoint and close the database (what it holds stays for the next start)."""
        with self._lock:
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                self._db.close()
