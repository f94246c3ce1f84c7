"""Counts of Observations per series and closed UTC day, kept in SQLite so `$count` stays inexpensive.

A day is *closed* once it ended more than the ingest's settle horizon (``ingest.points.SETTLE_S``, 1 h)
plus a margin ago. The ingest still admits readings up to 7 days late (``DEFAULT_MAX_LATENESS``), but
every batch holding a reading older than the settle horizon carries, in the same write, a
``late_write`` marker per (measurement, day) it touches (and a spooled batch replayed late marks its
days for every measurement). Before each count the markers of the lateness window are read (one small
statement, observation_count.apply_late_markers): a (measurement, day) with markers not seen before
(``late_markers``) is marked dirty in every series and aggregate of that measurement, so it is
counted again. A DELETE of an Observation (and an API write) marks its day dirty the same way
(``invalidate``). Days older than the lateness cannot change except through those.

The cache is keyed by series and *variant*: the InfluxQL WHERE text of the Observation filter (``""``
for none), so ``$count`` with a filter is cached too (up to ``MAX_VARIANTS`` filters; filters on time
are never cached, see observation_count). Per (series, variant) it records the day up to
which every closed day is counted (``coverage.until_day``); days with no points have no row. The file
is shared by every API worker process (WAL mode, one short transaction per call).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

Entry = tuple[str, str, Mapping[int, int], int, Sequence[int]]

DAY_US = 86_400 * 1_000_000
MAX_VARIANTS = 64  # distinct filters whose counts are kept (a filter is a variant per field it reads)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS day_count (
    series TEXT NOT NULL, variant TEXT NOT NULL, day INTEGER NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (series, variant, day)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS coverage (
    variant TEXT NOT NULL, series TEXT NOT NULL, until_day INTEGER NOT NULL, total INTEGER NOT NULL,
    PRIMARY KEY (variant, series)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS coverage_series ON coverage (series);
CREATE TABLE IF NOT EXISTS first_time (series TEXT PRIMARY KEY, time_us INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS late_seen (
    measurement TEXT NOT NULL, day INTEGER NOT NULL, n INTEGER NOT NULL, seen_at REAL NOT NULL,
    PRIMARY KEY (measurement, day)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dirty_day (
    variant TEXT NOT NULL, series TEXT NOT NULL, day INTEGER NOT NULL,
    PRIMARY KEY (variant, series, day)) WITHOUT ROWID;
"""


@dataclass(slots=True)
class Cached:
    """What the cache knows of one (series, variant): the sum over counted closed days, up to which
    day (exclusive) all closed days are counted (None: nothing yet), and days to count again."""

    total: int = 0
    until_day: int | None = None
    dirty: list[int] = field(default_factory=list)


class CountCache:
    """Per-day Observation counts of closed days in an SQLite file (0600)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)
        self.path = path
        # check_same_thread=False: FastAPI runs sync handlers on a thread pool; the lock serialises use.
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10.0)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def admits(self, variant: str) -> bool:
        """True if counts of this variant may be cached: no filter, a variant already cached, or room
        for one more (``MAX_VARIANTS``: clients cannot grow the file without bound with new filters)."""
        if not variant:
            return True
        with self._lock:
            if self._db.execute("SELECT 1 FROM coverage WHERE variant=? LIMIT 1", (variant,)).fetchone():
                return True
            n = self._db.execute("SELECT COUNT(DISTINCT variant) FROM coverage").fetchone()[0]
        return int(n) < MAX_VARIANTS

    def lookup(self, variant: str, series: Iterable[str]) -> dict[str, Cached]:
        """The cached state of each series for one variant (a default Cached when unknown).

        Three queries whatever the number of series: coverage rows carry the running total, so a
        $count over thousands of series does not sum day rows."""
        wanted = set(series)
        out = {s: Cached() for s in wanted}
        with self._lock:
            for name, until_day, total in self._db.execute(
                    "SELECT series, until_day, total FROM coverage WHERE variant=?", (variant,)):
                if name in wanted:
                    out[name].until_day, out[name].total = int(until_day), int(total)
            for name, day in self._db.execute(
                    "SELECT series, day FROM dirty_day WHERE variant=? ORDER BY day", (variant,)):
                if name in wanted:
                    out[name].dirty.append(int(day))
        return out

    def record(self, entries: Sequence[Entry]) -> None:
        """Store newly counted closed days, in one transaction. Per entry: (variant, series, {day start
        µs: n}, until_day, recounted): all closed days before until_day are then counted, and the days in
        recounted (dirty days counted again) lose their dirty mark."""
        if not entries:
            return
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for variant, series, counts, until_day, recounted in entries:
                    added = 0
                    for day, n in counts.items():
                        if n and day < until_day:
                            cur = self._db.execute(
                                "INSERT INTO day_count (series, variant, day, n) VALUES (?, ?, ?, ?) "
                                "ON CONFLICT (series, variant, day) DO NOTHING", (series, variant, day, n))
                            # another worker may have counted the same day: count it once
                            added += n if cur.rowcount == 1 else 0
                    self._db.executemany("DELETE FROM dirty_day WHERE variant=? AND series=? AND day=?",
                                         [(variant, series, day) for day in recounted])
                    self._db.execute(
                        "INSERT INTO coverage (variant, series, until_day, total) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT (variant, series) DO UPDATE SET "
                        "until_day=MAX(until_day, excluded.until_day), total=total+excluded.total",
                        (variant, series, until_day, added))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def late_markers(self, found: Mapping[tuple[str, int], int], now: float, settle: float,
                     oldest_day: int) -> list[tuple[str, int]]:
        """The (measurement, day) pairs to count again given the late-write markers found (how many per
        pair): those with markers not seen before, and those first seen less than settle seconds ago
        (a marker may be visible a moment before the points of its batch). Forgets days before oldest_day."""
        out = []
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                seen = {(m, int(d)): (int(n), float(at)) for m, d, n, at in
                        self._db.execute("SELECT measurement, day, n, seen_at FROM late_seen")}
                for key, n in found.items():
                    old = seen.get(key)
                    if old is None or n > old[0]:
                        self._db.execute("INSERT OR REPLACE INTO late_seen (measurement, day, n, seen_at) "
                                         "VALUES (?, ?, ?, ?)", (*key, n, now))
                        out.append(key)
                    elif old[1] > now - settle:
                        out.append(key)
                self._db.execute("DELETE FROM late_seen WHERE day<?", (oldest_day,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return out

    def first_times(self, series: Iterable[str]) -> dict[str, int]:
        """The cached time of the first point of each series that has one cached."""
        wanted = set(series)
        with self._lock:
            rows = self._db.execute("SELECT series, time_us FROM first_time").fetchall()
        return {name: int(t) for name, t in rows if name in wanted}

    def record_first_times(self, items: Mapping[str, int]) -> None:
        """Remember first-point times (only ones that can no longer move earlier: see observation_bounds)."""
        if items:
            with self._lock:
                self._db.executemany("INSERT OR REPLACE INTO first_time (series, time_us) VALUES (?, ?)",
                                     list(items.items()))

    def lower_first_time(self, series: str, time_us: int) -> None:
        """A point was written at time_us: the series' cached first-point bound must not be later."""
        with self._lock:
            self._db.execute("UPDATE first_time SET time_us=MIN(time_us, ?) WHERE series=?", (time_us, series))

    def invalidate(self, series: str, time_us: int) -> None:
        """A point of series at time_us was deleted (or written late): count its day again."""
        self._invalidate("series=?", (series,), time_us)

    def invalidate_prefix(self, prefix: str, time_us: int) -> None:
        """Like invalidate, for every series whose name starts with prefix."""
        self._invalidate("substr(series, 1, ?)=?", (len(prefix), prefix), time_us)

    def _invalidate(self, match: str, args: tuple[object, ...], time_us: int) -> None:
        day = time_us - time_us % DAY_US
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                found = self._db.execute(
                    f"SELECT variant, series FROM coverage WHERE {match} AND until_day>?", (*args, day)).fetchall()
                for variant, series in found:
                    row = self._db.execute("SELECT n FROM day_count WHERE series=? AND variant=? AND day=?",
                                           (series, variant, day)).fetchone()
                    if row is not None:
                        self._db.execute("DELETE FROM day_count WHERE series=? AND variant=? AND day=?",
                                         (series, variant, day))
                        self._db.execute("UPDATE coverage SET total=total-? WHERE variant=? AND series=?",
                                         (row[0], variant, series))
                    self._db.execute("INSERT OR IGNORE INTO dirty_day (variant, series, day) VALUES (?, ?, ?)",
                                     (variant, series, day))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
