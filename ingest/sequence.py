"""Per-gateway batch sequence numbers, counted so that the figures are right whatever worker got which
batch.

Every worker stores the seqs of the packs in each of its writes as one point of ``ingest_batch`` per
gateway (``seqs`` lists them in arrival order; a redelivered pack appears twice). Gaps and duplicates
are then derived from what is stored, by every worker alike: within one agent run the distinct seqs seen
between the lowest and the highest leave the gaps, and a seq seen twice is a duplicate. A birth message
whose seq is not above the highest seen says the agent restarted and counts from there again (until the
edge keeps its seq across restarts, see the edge issue). Batches lost after the last one received cannot
be seen until a later batch arrives.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass

from core.influx import InfluxClient
from core.line_protocol import line

log = logging.getLogger(__name__)

MEASUREMENT = "ingest_batch"


def batch_line(gateway: str, seqs: list[int], records: int, worker: str, time_us: int, *,
               gemeente: str | None = None) -> str:
    """The point recording which packs of a gateway one write carried (gemeente: the gateway's, if known)."""
    fields: dict[str, float | int | bool | str] = {"seqs": ",".join(map(str, seqs)), "batches": len(seqs),
                                                   "records": records}
    tags = {"gateway": gateway, "worker": worker}
    if gemeente:
        tags["gemeente"] = gemeente
    return line(MEASUREMENT, tags, fields, time_us)


@dataclass(frozen=True, slots=True)
class SequenceCounts:
    """Gaps and duplicates of one gateway in the audit window."""

    batches: int
    gaps: int
    duplicates: int


def count_sequences(events: list[tuple[float, str, int]]) -> SequenceCounts:
    """Gaps and duplicates from (time, 'batch' | 'birth', seq) events of one gateway."""
    seen: set[int] = set()
    low = high = None
    gaps = duplicates = batches = 0
    for _, kind, seq in sorted(events):
        if kind == "birth":
            if high is not None and seq <= high:
                # The agent restarted: close this run of numbers and start another.
                assert low is not None
                gaps += high - low + 1 - len(seen)
                seen, low, high = set(), None, None
            continue
        batches += 1
        if seq in seen:
            duplicates += 1
            continue
        seen.add(seq)
        low = seq if low is None else min(low, seq)
        high = seq if high is None else max(high, seq)
    if low is not None and high is not None:
        gaps += high - low + 1 - len(seen)
    return SequenceCounts(batches, gaps, duplicates)


def audit(influx: InfluxClient, window_seconds: float) -> dict[str, SequenceCounts]:
    """Gaps and duplicates per gateway over the last window_seconds, from what every worker stored."""
    since = f"time > now() - {int(window_seconds)}s"
    events: dict[str, list[tuple[float, str, int]]] = defaultdict(list)
    for s in influx.query(f'SELECT "seqs" FROM "{MEASUREMENT}" WHERE {since} GROUP BY "gateway"', epoch="u"):
        gateway_events = events[s.tags.get("gateway", "")]
        for t, seqs in s.values:
            # Sub-microsecond offsets keep the packs of one write in their arrival order.
            gateway_events.extend((t + i / 1000, "batch", int(q)) for i, q in enumerate(str(seqs).split(",")) if q)
    births = (f'SELECT "seq" FROM "gateway_status" WHERE {since} AND "state" = \'online\' '
              'GROUP BY "gateway"')
    for s in influx.query(births, epoch="u"):
        gateway = s.tags.get("gateway", "")
        if gateway in events:
            events[gateway].extend((t, "birth", int(q)) for t, q in s.values if q is not None)
    return {gw: count_sequences(ev) for gw, ev in events.items()}
