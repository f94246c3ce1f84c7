"""The ingest's write path: batch lines by size and time, store them, and only then release the acks.

A batch leaves for InfluxDB when it holds `batch_lines` lines or `max_messages` messages, when its first
message has waited `max_latency` seconds, or when no message has come for `idle_flush` seconds. Each
batch carries one `ingest_batch` point per gateway listing the seqs of the packs in it, so the record of
a pack's arrival is stored together with its points, never one without the other.

A batch's messages are acknowledged to the broker once the batch is in InfluxDB, or, when InfluxDB has
failed for `spool_after` seconds, once the batch is fsync'd in the spool. While InfluxDB is down new
batches go straight to the spool; replay attempts (oldest first, with capped exponential backoff) are
the probes that find it back. When the spool is full the batch is held and retried and nothing is
acknowledged: the broker keeps the messages and stops sending once our receive window is used up. One
thread does all of this, so there are no races to reason about.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ingest.dead_letters import DeadLetter, dead_letter_line
from ingest.influx_writer import InfluxWriter, TransientWriteError, WriteResult
from ingest.metrics import IngestMetrics
from ingest.points import UniqueMicros, replay_late_lines
from ingest.sequence import batch_line
from ingest.spool import Spool, SpoolFullError

log = logging.getLogger(__name__)

AckToken = tuple[int, int, int]  # (mid, qos, session generation)


def _no_gemeente(_gateway: str) -> str | None:
    return None
MAX_BACKOFF = 10.0


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    """How the write path batches and when it spools."""

    batch_lines: int = 10_000
    max_messages: int = 5_000
    max_latency: float = 1.0
    spool_after: float = 2.0
    # A batch also leaves once no message has come for this long: a stream that pauses is not held
    # back for max_latency, while a busy one still fills large batches.
    idle_flush: float = 0.05


class WritePipeline:
    """Lines and ack tokens in (from the paho thread), stored batches and released acks out."""

    def __init__(self, writer: InfluxWriter, spool: Spool, metrics: IngestMetrics, *,
                 release: Callable[[list[AckToken]], None], config: PipelineConfig | None = None,
                 worker: str = "", gemeente_of: Callable[[str], str | None] | None = None) -> None:
        self._writer = writer
        self._gemeente_of = gemeente_of or _no_gemeente
        self._spool = spool
        self._metrics = metrics
        self._release = release
        self.config = config or PipelineConfig()
        self._worker = worker
        self._cond = threading.Condition()
        self._lines: list[str] = []
        self._acks: list[AckToken] = []
        self._first_at = 0.0
        self._last_at = 0.0
        self._seqs: dict[str, list[int]] = {}
        self._records: dict[str, int] = {}
        # The reading times of the queued batch as (n, sum, min): its age figures when it is stored.
        self._times_n, self._times_sum, self._times_min = 0, 0.0, float("inf")
        self._clock_us = UniqueMicros()  # the writer thread's own: batch records and refused-line letters
        self._stopping = False
        self._down_since: float | None = None
        self._backoff = 0.25
        self._next_replay = 0.0
        self._full_reason: str | None = None
        self._in_hand = 0  # messages of the batch being stored: taken from the queue, not yet acknowledged
        self.last_error = ""
        self._thread = threading.Thread(target=self._run, name="ingest-writer", daemon=True)
        metrics.spool_batches.set_function(lambda: len(self._spool))
        metrics.spool_bytes.set_function(lambda: self._spool.size_bytes)
        metrics.spool_age.set_function(self._spool.oldest_age)
        metrics.pending_lines.set_function(lambda: len(self._lines))
        metrics.unacked.set_function(lambda: len(self._acks) + self._in_hand)

    # -- the paho side -------------------------------------------------------------------------
    def submit(self, lines: list[str], token: AckToken | None, seq: tuple[str, int, int] | None = None,
               times: tuple[int, float, float] | None = None) -> None:
        """Queue one message's lines (and its pack's (gateway, seq, records), and its reading times as
        (n, sum, min) unix seconds); its ack follows their storage."""
        with self._cond:
            if times is not None:
                self._times_n += times[0]
                self._times_sum += times[1]
                self._times_min = min(self._times_min, times[2])
            self._last_at = time.monotonic()
            if not self._acks and not self._lines:
                self._first_at = self._last_at
            self._lines.extend(lines)
            if seq is not None:
                gateway, number, records = seq
                self._seqs.setdefault(gateway, []).append(number)
                self._records[gateway] = self._records.get(gateway, 0) + records
            if token is not None:
                self._acks.append(token)
            if len(self._lines) >= self.config.batch_lines or len(self._acks) >= self.config.max_messages:
                self._cond.notify()

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        """Start the writer thread."""
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Write (or spool) and release what is queued, then stop; spooled batches stay for the next run."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join(timeout)
        self._spool.close()

    def idle(self) -> bool:
        """True when nothing is queued, in hand or spooled: every message received is stored and acked."""
        return not self._lines and not self._acks and not self._in_hand and not len(self._spool)

    def health(self) -> dict[str, Any]:
        """'ok', 'degraded' (InfluxDB failing or spool in use) or 'failing' (cannot store or spool)."""
        status = "ok"
        if self._down_since is not None or len(self._spool):
            status = "degraded"
        if self._full_reason:
            status = "failing"
        return {"status": status, "influxdb": "down" if self._down_since is not None else "up",
                "spool_batches": len(self._spool), "spool_bytes": self._spool.size_bytes,
                "spool_oldest_seconds": round(self._spool.oldest_age(), 1), "spool_full": self._full_reason,
                "pending_lines": len(self._lines), "unacknowledged": len(self._acks) + self._in_hand,
                "last_error": self.last_error}

    # -- the writer thread ---------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            lines, acks, times, final = self._take()
            if lines or acks:
                self._in_hand = len(acks)
                if self._store(lines, acks) and times[0]:
                    # Stored in InfluxDB now: each reading's age is now - its time (a spooled batch is
                    # left out: the spool keeps lines, not times; spool_batches shows those).
                    n, total, earliest = times
                    now = time.time()
                    self._metrics.age_window.add(n, n * now - total, now - earliest)
                self._in_hand = 0
            self._replay()
            if final:
                return

    def _take(self) -> tuple[list[str], list[AckToken], tuple[int, float, float], bool]:
        with self._cond:
            while not self._stopping:
                pending = bool(self._lines or self._acks)
                if len(self._lines) >= self.config.batch_lines or len(self._acks) >= self.config.max_messages:
                    break
                wait = 0.5
                if pending:
                    now = time.monotonic()
                    wait = min(self._first_at + self.config.max_latency, self._last_at + self.config.idle_flush) - now
                    if wait <= 0:
                        break
                if len(self._spool) and self._down_since is None:
                    break  # InfluxDB is up and the spool has a backlog: go and replay it
                if len(self._spool):
                    wait = min(wait, max(0.0, self._next_replay - time.monotonic()))
                    if wait == 0:
                        break
                self._cond.wait(wait)
            lines, acks = self._lines, self._acks
            self._lines, self._acks = [], []
            times = (self._times_n, self._times_sum, self._times_min)
            self._times_n, self._times_sum, self._times_min = 0, 0.0, float("inf")
            if self._seqs:
                now_us = self._clock_us(time.time())
                lines.extend(batch_line(gw, seqs, self._records[gw], self._worker, now_us,
                                        gemeente=self._gemeente_of(gw))
                             for gw, seqs in self._seqs.items())
                self._seqs, self._records = {}, {}
            if lines or acks:
                self._first_at = time.monotonic()
            # Stop once nothing is queued (what is spooled waits for the next run).
            return lines, acks, times, self._stopping and not self._lines and not self._acks

    def _store(self, lines: list[str], acks: list[AckToken]) -> bool:
        """Store a batch; True if it went to InfluxDB, False if it was spooled (or held until stopping)."""
        if self._down_since is None and not self._full_reason:
            first_failure = time.monotonic()
            while True:
                if self._try_write(lines):
                    self._release(acks)
                    return True
                if time.monotonic() - first_failure >= self.config.spool_after:
                    break
                if self._stopping:
                    break  # no time left to wait for InfluxDB: spool it
                self._sleep_backoff()
        return self._spool_or_hold(lines, acks)

    def _spool_or_hold(self, lines: list[str], acks: list[AckToken]) -> bool:
        body = "\n".join(lines).encode()
        while True:
            try:
                self._spool.append(body)
                self._metrics.spooled.inc()
                self._full_reason = None
                self._release(acks)
                return False
            except SpoolFullError as exc:
                self._metrics.spool_full.inc()
                if self._full_reason is None:
                    log.error("INGEST SPOOL FULL (%s): not acknowledging anything until InfluxDB takes data "
                              "again; the broker keeps the messages", exc)
                self._full_reason = str(exc)
            except OSError as exc:
                self._metrics.spool_errors.inc()
                if self._full_reason is None:
                    log.error("INGEST SPOOL WRITE FAILED (%s): not acknowledging until it can write", exc)
                self._full_reason = f"spool write failed: {exc.strerror}"
            if self._stopping:
                log.error("stopping with %d messages unacknowledged (InfluxDB down, spool unusable): "
                          "the broker redelivers them to this worker's session", len(acks))
                return False
            # Held: try InfluxDB itself (it may be back) and replay to make room, then wait.
            self._replay(force=True)
            if self._try_write(lines):
                self._release(acks)
                return True
            self._sleep_backoff()

    def _try_write(self, lines: list[str]) -> bool:
        started = time.perf_counter()
        try:
            result = self._writer.write(lines)
        except TransientWriteError as exc:
            self._failed(exc)
            return False
        self._observe_write(time.perf_counter() - started)
        self._succeeded(result)
        return True

    def _replay(self, force: bool = False) -> None:
        deadline = time.monotonic() + 0.5  # then look at new batches again
        while len(self._spool) and (force or time.monotonic() >= self._next_replay):
            entry = self._spool.peek()
            if entry is None:
                return
            started = time.perf_counter()
            late = replay_late_lines(entry.created, time.time())  # with the batch, never without it
            body = entry.payload + b"\n" + "\n".join(late).encode() if late else entry.payload
            try:
                result = self._writer.write_body(body)
            except TransientWriteError as exc:
                self._failed(exc)
                self._next_replay = time.monotonic() + self._jittered()
                self._backoff = min(self._backoff * 2, MAX_BACKOFF)
                return
            self._observe_write(time.perf_counter() - started)
            self._spool.pop(entry)
            self._metrics.replayed.inc()
            self._succeeded(result)
            if force or time.monotonic() > deadline:
                return

    def _observe_write(self, seconds: float) -> None:
        self._metrics.write_seconds.observe(seconds)
        self._metrics.write_window.add(1, seconds, seconds)

    def _succeeded(self, result: WriteResult) -> None:
        self._metrics.lines_stored.inc(result.stored)
        if self._full_reason and not self._spool.full():
            log.warning("ingest can store again (%s is over)", self._full_reason)
            self._full_reason = None
        if result.refused:
            self._metrics.refused_lines.inc(result.refused_lines)
            now = time.time()
            dead = []
            for n, message in result.refused:
                log.error("InfluxDB refused %d lines: %s", n, message[:300])
                self._metrics.dead_letters.labels("influx_rejected").inc()
                dl = DeadLetter(now, "unknown", "", "influx_rejected", n, message, "", self._worker)
                dead.append(dead_letter_line(dl, self._clock_us(now)))
            # Written with the next batch; a dead letter is plain text InfluxDB cannot refuse.
            with self._cond:
                self._lines.extend(dead)
        if self._down_since is not None:
            log.warning("InfluxDB takes writes again after %.1f s", time.monotonic() - self._down_since)
        self._down_since = None
        self._backoff = 0.25

    def _failed(self, exc: TransientWriteError) -> None:
        self._metrics.retries.labels(exc.reason).inc()
        self.last_error = f"{exc.reason}: {str(exc)[:200]}"
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.warning("InfluxDB write failed (%s); retrying, spooling after %.1f s", exc, self.config.spool_after)

    def _jittered(self) -> float:
        return self._backoff * (0.5 + random.random())

    def _sleep_backoff(self) -> None:
        delay = self._jittered()
        self._backoff = min(self._backoff * 2, MAX_BACKOFF)
        with self._cond:
            if not self._stopping:
                self._cond.wait(delay)
