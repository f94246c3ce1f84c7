"""The dead-letter store: what the ingest refused, why, from whom, and the first bytes of it.

Dead letters are points of their own measurement in InfluxDB, written through the same path as
readings (so they are spooled during an outage too), which lets every ingest worker share one store
that operators list with `smartcity ingest dead-letters` and dashboards can chart. One point per
message and reason, with the number of records refused for that reason and the first message.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.influx import InfluxClient
from core.line_protocol import line

MEASUREMENT = "dead_letter"
# Enough to see what a device sent, bounded so a flood of large rubbish cannot grow the store fast.
PAYLOAD_HEAD_BYTES = 512
DETAIL_CHARS = 300


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One refused message (or the refused records of one message) for one reason."""

    received: float
    gateway: str
    topic: str
    reason: str
    count: int
    detail: str
    payload_head: str
    worker: str = ""


# Control characters shown as \xNN, so a listing in a terminal shows what was sent and cannot be spoofed.
_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F)}


def payload_head(payload: bytes | bytearray) -> str:
    """The first bytes of a payload as text (control and non-UTF-8 bytes escaped), with the size if cut."""
    head = payload[:PAYLOAD_HEAD_BYTES].decode("utf-8", errors="backslashreplace").translate(_CONTROL)
    if len(payload) > PAYLOAD_HEAD_BYTES:
        head += f"... ({len(payload)} bytes)"
    return head


def dead_letter_line(dl: DeadLetter, time_us: int) -> str:
    """The dead letter as a point of the dead_letter measurement."""
    tags = {"gateway": dl.gateway[:64] or "unknown", "reason": dl.reason, "worker": dl.worker}
    fields: dict[str, float | int | bool | str] = {
        "topic": dl.topic[:200], "count": dl.count, "detail": dl.detail[:DETAIL_CHARS], "payload": dl.payload_head,
    }
    return line(MEASUREMENT, tags, fields, time_us)


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def list_dead_letters(influx: InfluxClient, *, since_seconds: float = 86400.0, reason: str | None = None,
                      gateway: str | None = None, limit: int = 100) -> list[DeadLetter]:
    """The newest dead letters, newest first, optionally of one reason or gateway."""
    where = [f"time > now() - {int(since_seconds)}s"]
    if reason:
        where.append(f'"reason" = {_quote(reason)}')
    if gateway:
        where.append(f'"gateway" = {_quote(gateway)}')
    q = (f'SELECT "topic", "count", "detail", "payload", "gateway", "reason", "worker" FROM "{MEASUREMENT}" '
         f"WHERE {' AND '.join(where)} ORDER BY time DESC LIMIT {int(limit)}")
    out: list[DeadLetter] = []
    for series in influx.query(q, epoch="u"):
        for row in series.rows():
            out.append(DeadLetter(row["time"] / 1e6, row.get("gateway") or "", row.get("topic") or "",
                                  row.get("reason") or "", int(row.get("count") or 0), row.get("detail") or "",
                                  row.get("payload") or "", row.get("worker") or ""))
    return out
