"""What a fault run produced and what reached InfluxDB: the figures every fault test checks and reports.

- accepted: per gateway, the agents' own ``readings_read`` (readings taken into the durable queue),
  summed over the agent's runs (its counters start again at each start; a run ends where
  ``uptime_s`` goes down). The last report of a run killed with -9 is up to one status interval old:
  what the agent read after it is not in the count (``Tally.unreported_window_s`` says how long that was).
- stored: per gateway and device, the field values of the device measurements (one reading = one field
  of one point; a reading stored twice under the same series and time would overwrite, so a duplicate
  shows as stored < accepted, never as more).
- gaps: the ingest's own sequence audit (ingest/sequence.py) over the stored ``ingest_batch`` points,
  and the agents' ``lost_frames`` (frame-counter gaps of the LoRa nodes: frames sent while no agent read).
- commands: every ``command`` id against its ``command_ack`` points.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field

from core.kinds import KINDS
from ingest.sequence import audit
from tests.conftest import wait_for
from tests.faults.pipeline import COMMAND_TTL, REPORT_INTERVAL, STATUS_INTERVAL, City, Restart

FINAL_ACKS = {"applied", "rejected", "expired", "failed"}


@dataclass
class AgentRuns:
    """One gateway's health reports, split into the agent's runs."""

    runs: int = 0
    readings_read: int = 0
    lost_frames: int = 0
    readings_dropped: int = 0
    readings_refused: int = 0
    last_queue_depth: int = -1
    last_report_ms: int = 0


def agent_runs(city: City) -> dict[str, AgentRuns]:
    """Per gateway: counters summed over the agent's runs (the last report of each run)."""
    rows = city.query('SELECT "uptime_s", "readings_read", "lost_frames", "readings_dropped", "readings_refused", '
                      '"queue_depth" FROM "gateway_health" GROUP BY "gateway"')
    out: dict[str, AgentRuns] = {}
    by_gw: dict[str, list[dict[str, object]]] = defaultdict(list)
    for r in rows:
        by_gw[str(r["gateway"])].append(r)
    for gw, reports in by_gw.items():
        reports.sort(key=lambda r: int(r["time"]))  # type: ignore[call-overload]
        a = out[gw] = AgentRuns()
        last: dict[str, object] | None = None
        for r in reports:
            if last is not None and float(r["uptime_s"]) < float(last["uptime_s"]):  # type: ignore[arg-type]
                _add_run(a, last)
            last = r
        if last is not None:
            _add_run(a, last)
            a.last_queue_depth = int(last["queue_depth"])  # type: ignore[call-overload]
            a.last_report_ms = int(last["time"])  # type: ignore[call-overload]
    return out


def _add_run(a: AgentRuns, last: dict[str, object]) -> None:
    a.runs += 1
    a.readings_read += int(last["readings_read"])  # type: ignore[call-overload]
    a.lost_frames += int(last["lost_frames"] or 0)  # type: ignore[call-overload]
    a.readings_dropped += int(last["readings_dropped"] or 0)  # type: ignore[call-overload]
    a.readings_refused += int(last["readings_refused"] or 0)  # type: ignore[call-overload]


def stored_readings(city: City) -> dict[str, dict[str, int]]:
    """Per gateway, per device: field values stored in the device measurements."""
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for kind in KINDS:
        for r in city.query(f'SELECT count(*) FROM "{kind}" GROUP BY "gateway", "device"'):
            n = sum(int(v) for k, v in r.items() if k.startswith("count_") and v is not None)  # type: ignore[call-overload]
            out[str(r["gateway"])][str(r["device"])] = n
    return dict(out)


def commands_and_acks(city: City) -> tuple[list[str], dict[str, list[tuple[str, str]]]]:
    """Command ids as stored, and per id the (status, detail) of each of its ack points."""
    ids = [str(r["id"]) for r in city.query('SELECT "id" FROM "command"')]
    acks: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for r in city.query('SELECT "id", "status", "detail" FROM "command_ack"'):
        acks[str(r["id"])].append((str(r["status"]), str(r["detail"])))
    return ids, dict(acks)


def first_reading_after(city: City, since: float, gateway: str | None = None) -> bool:
    """True once a street-light reading read at or after since (wall clock) is stored."""
    where = f"time >= {int(since * 1000)}ms" + (f" AND \"gateway\" = '{gateway}'" if gateway else "")
    return bool(city.query(f'SELECT "power" FROM "street_light" WHERE {where} LIMIT 1'))


def first_command_after(city: City, since: float) -> bool:
    """True once a command issued at or after since (wall clock) is stored."""
    return bool(city.query(f'SELECT "id" FROM "command" WHERE time >= {int(since * 1000)}ms LIMIT 1'))


def time_to_recover(city: City, restart: Restart, timeout: float = 60.0, gateway: str | None = None) -> float:
    """Seconds from a part's restart to the first new reading (a command, for the rules) stored."""
    if gateway is None and restart.part.startswith("edge-"):
        gateway = restart.part.removeprefix("edge-")

    def recovered() -> bool:
        if restart.part == "rules":
            return first_command_after(city, restart.restarted_at)
        return first_reading_after(city, restart.restarted_at, gateway)

    wait_for(recovered, timeout, interval=0.05, what=f"a new reading stored after {restart.part} restarted")
    return round(time.time() - restart.restarted_at, 2)


PERIODIC_KINDS = ("street_light", "occupancy", "traffic_light")  # the simulator's LoRa nodes that report every interval


def missing_frames(city: City, gateway: str, interval: float) -> int:
    """Frames of the periodic LoRa nodes of a gateway missing from the stored timeline (from its gaps).

    The simulator's nodes report every ``interval``: a gap of k intervals between two stored points of
    a device is k - 1 frames that never reached InfluxDB, whoever lost them (the air, the agent).
    """
    missing = 0
    for kind in PERIODIC_KINDS:
        metric = next(iter(KINDS[kind].metrics))
        rows = city.query(f'SELECT "{metric}" FROM "{kind}" WHERE "gateway" = \'{gateway}\' GROUP BY "device"')
        times: dict[str, list[int]] = defaultdict(list)
        for r in rows:
            times[str(r["device"])].append(int(r["time"]))  # type: ignore[call-overload]
        for ts in times.values():
            ts.sort()
            for a, b in itertools.pairwise(ts):
                gap = (b - a) / 1000 / interval
                if gap > 1.5:
                    missing += round(gap) - 1
    return missing


@dataclass
class Tally:
    """One run's figures: the report table's row, and what the assertions read."""

    fault: str
    run: int
    accepted: dict[str, int] = field(default_factory=dict)  # per gateway
    stored: dict[str, int] = field(default_factory=dict)  # per gateway
    stored_per_device: dict[str, dict[str, int]] = field(default_factory=dict)
    published: dict[str, int] = field(default_factory=dict)  # distinct readings the tap saw, per gateway
    published_not_stored: dict[str, int] = field(default_factory=dict)  # per device, where published > stored
    dead_letters: int = 0
    missing_frames: dict[str, int] = field(default_factory=dict)  # from the stored timeline, per gateway
    agent_runs: dict[str, int] = field(default_factory=dict)
    lost_frames: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)  # the queue's own drops (full, too old)
    seq_gaps: dict[str, int] = field(default_factory=dict)
    seq_duplicates: dict[str, int] = field(default_factory=dict)
    commands: int = 0
    final_acks: dict[str, int] = field(default_factory=dict)  # status -> count
    commands_without_ack: list[str] = field(default_factory=list)
    commands_with_several_acks: dict[str, list[str]] = field(default_factory=dict)  # different outcomes
    acks_stored_twice: dict[str, int] = field(default_factory=dict)  # the same ack message, stored n times
    recover_s: float | None = None
    unreported_window_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def drain_and_tally(city: City, fault: str, run: int, *, drain_timeout: float = 45.0) -> Tally:
    """Stop the readings at their source, let everything queued arrive, stop the services, count."""
    city.stop_part("sim")
    city.stop_part("rules")
    stopped_ms = int(time.time() * 1000)

    def drained() -> bool:
        runs = agent_runs(city)
        # A report taken after the source stopped (plus a flush), with nothing left in the queue.
        return len(runs) == len(city.registry.gateways) and all(
            a.last_queue_depth == 0 and a.last_report_ms > stopped_ms + 1000 for a in runs.values())

    wait_for(drained, drain_timeout, what="every agent's queue empty after the simulator stopped")
    ids: list[str] = []
    acks: dict[str, list[tuple[str, str]]] = {}

    def all_acked() -> bool:
        nonlocal ids, acks
        ids, acks = commands_and_acks(city)
        return all(i in acks for i in ids)

    with contextlib.suppress(AssertionError):  # reported (commands_without_ack) and asserted by the test
        wait_for(all_acked, COMMAND_TTL + 20, what="an ack for every command")
    # The last health reports and readings are through the ingest once two looks agree.
    previous: object = None

    def stable() -> bool:
        nonlocal previous
        now = (stored_readings(city), {gw: a.readings_read for gw, a in agent_runs(city).items()})
        same, previous = now == previous, now
        return same

    wait_for(stable, 15, interval=1.0, what="stored counts stable")
    for gw in city.registry.gateways:
        city.stop_part(f"edge-{gw}")
    city.stop_part("ingest")
    return tally(city, fault, run, ids, acks)


def tally(city: City, fault: str, run: int, ids: list[str], acks: dict[str, list[tuple[str, str]]]) -> Tally:
    t = Tally(fault, run)
    runs = agent_runs(city)
    per_device = stored_readings(city)
    for gw in city.registry.gateways:
        a = runs.get(gw, AgentRuns())
        t.accepted[gw] = a.readings_read
        t.agent_runs[gw] = a.runs
        t.lost_frames[gw] = a.lost_frames
        t.dropped[gw] = a.readings_dropped
        t.stored[gw] = sum(per_device.get(gw, {}).values())
    t.stored_per_device = per_device
    for gw in city.registry.gateways:
        t.missing_frames[gw] = missing_frames(city, gw, REPORT_INTERVAL)
    if city.tap is not None:
        published = city.tap.per_device()
        for gw in city.registry.gateways:
            t.published[gw] = sum(published.get(gw, {}).values())
            for device, n in published.get(gw, {}).items():
                if n != per_device.get(gw, {}).get(device, 0):
                    t.published_not_stored[device] = n - per_device.get(gw, {}).get(device, 0)
    t.dead_letters = sum(int(r["sum"]) for r in city.query('SELECT sum("count") FROM "dead_letter"'))  # type: ignore[call-overload]
    for gw, counts in audit(city.influx, 3600).items():
        t.seq_gaps[gw] = counts.gaps
        t.seq_duplicates[gw] = counts.duplicates
    t.commands = len(ids)
    statuses: dict[str, int] = defaultdict(int)
    for i in ids:
        finals = [a for a in acks.get(i, []) if a[0] in FINAL_ACKS]
        if not finals:
            t.commands_without_ack.append(i)
        elif len(set(finals)) > 1:
            t.commands_with_several_acks[i] = [f"{status}: {detail}" for status, detail in finals]
        elif len(finals) > 1:
            t.acks_stored_twice[i] = len(finals)  # one outcome, its message delivered (and stored) again
        for status, _ in finals[:1]:
            statuses[status] += 1
    t.final_acks = dict(statuses)
    if any(r.part.startswith("edge-") for r in city.restarts):
        t.unreported_window_s = STATUS_INTERVAL
    return t
