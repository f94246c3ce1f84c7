"""Writing a batch of line protocol to InfluxDB, with InfluxDB's answers sorted into the ingest's error tiers.

- 2xx: every line is stored.
- Transient (no connection, timeout, 5xx, 401/403 after a credential change, 404 database not
  found, 408, 429): TransientWriteError; the caller retries and acknowledges nothing. On a 404 the
  writer first tries to create the database, which succeeds where the account is allowed to.
- 400 "partial write: ... dropped=N": InfluxDB 1.x stored the good lines and dropped N (a field type
  conflict with stored data; unparseable lines are reported but not counted in N).
- 400 without "partial write" (e.g. a type conflict inside the batch): InfluxDB stored nothing; the
  batch is bisected so that the good lines are stored and only the bad ones are refused.
- 413: the batch is split in halves.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from core.influx import InfluxClient, InfluxError

log = logging.getLogger(__name__)

_DROPPED = re.compile(r"dropped=(\d+)")
_UNPARSEABLE = "unable to parse"


class TransientWriteError(RuntimeError):
    """InfluxDB could not take the batch now; nothing of it may be acknowledged."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(slots=True)
class WriteResult:
    """What became of a batch: lines stored, and (count, InfluxDB's message) per refused part."""

    stored: int = 0
    refused: list[tuple[int, str]] = field(default_factory=list)
    requests: int = 0

    @property
    def refused_lines(self) -> int:
        """Lines InfluxDB refused."""
        return sum(n for n, _ in self.refused)


class InfluxWriter:
    """Writes batches at microsecond precision over one keep-alive client."""

    def __init__(self, influx: InfluxClient) -> None:
        self.influx = influx

    def write(self, lines: list[str]) -> WriteResult:
        """Write lines; raises TransientWriteError if InfluxDB cannot take them now."""
        result = WriteResult()
        self._write(lines, result)
        return result

    def write_body(self, body: bytes) -> WriteResult:
        """Write an already joined batch (a spooled one); a 400 is resolved line by line as in write()."""
        result = WriteResult()
        try:
            result.requests += 1
            self.influx.write(body, precision="u")
            result.stored += body.count(b"\n") + 1 if body else 0
        except InfluxError as exc:
            self._classify(exc, body.decode().split("\n"), result)
        return result

    def _write(self, lines: list[str], result: WriteResult) -> None:
        if not lines:
            return
        try:
            result.requests += 1
            self.influx.write("\n".join(lines).encode(), precision="u")
            result.stored += len(lines)
        except InfluxError as exc:
            self._classify(exc, lines, result)

    def _classify(self, exc: InfluxError, lines: list[str], result: WriteResult) -> None:
        if exc.retryable:
            if exc.status == 404:
                self._create_database()
            raise TransientWriteError(exc.reason, str(exc)) from exc
        body = exc.body or str(exc)
        if exc.status == 400 and body.startswith("partial write"):
            match = _DROPPED.search(body)
            dropped = int(match.group(1)) if match else 0
            dropped += body.count(_UNPARSEABLE)
            dropped = min(max(dropped, 1), len(lines))
            result.stored += len(lines) - dropped
            result.refused.append((dropped, body))
            return
        if exc.status in (400, 413) and len(lines) > 1:
            half = len(lines) // 2
            self._write(lines[:half], result)
            self._write(lines[half:], result)
            return
        if exc.status == 413:
            # One line larger than InfluxDB's max-body-size can never be stored.
            result.refused.append((1, f"line of {len(lines[0])} bytes larger than InfluxDB accepts"))
            return
        result.refused.append((len(lines), f"{body} (line: {lines[0][:200]})"))

    def _create_database(self) -> None:
        try:
            self.influx.create_database()
            log.warning("InfluxDB had no database %r; created it", self.influx.config.database)
        except InfluxError as exc:
            log.error("InfluxDB has no database %r and this account may not create it (%s); "
                      "retrying until an operator does", self.influx.config.database, exc.reason)
