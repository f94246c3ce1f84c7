"""What the demo reads back from InfluxDB: the gateways online (before the rules start), the progress line, the summary.

Only this run's points count (time >= the demo's start): a reused state directory keeps earlier runs'.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable

from core.influx import InfluxClient, InfluxError
from core.kinds import KINDS
from core.registry import Registry

log = logging.getLogger(__name__)


def counts(influx: InfluxClient, since_ms: int, measurement: str, field: str, where: str = "", *,
           group: str = "") -> dict[str, int]:
    """count(field) of measurement since since_ms, per value of the group tag ("" without one)."""
    q = f'SELECT count("{field}") FROM "{measurement}" WHERE time >= {since_ms}ms {where}'
    if group:
        q += f' GROUP BY "{group}"'
    return {s.tags.get(group, ""): int(s.values[0][1]) for s in influx.query(q) if s.values}


def gateways_online(influx: InfluxClient, since_ms: int) -> set[str]:
    """The gateways that announced themselves online since since_ms (their birth status, stored by the ingest)."""
    return set(counts(influx, since_ms, "gateway_status", "online", "AND \"online\" = true", group="gateway"))


def wait_gateways_online(connect: Callable[[], InfluxClient], since_ms: int, gateways: set[str],
                         timeout: float) -> set[str]:
    """Poll (bounded by timeout) until every gateway is online; returns those that were not, logged."""
    deadline, missing = time.monotonic() + timeout, set(gateways)
    with connect() as influx:
        while missing and time.monotonic() < deadline:
            with contextlib.suppress(InfluxError):  # the ingest or influxd is still starting: ask again
                missing = gateways - gateways_online(influx, since_ms)
            if missing:
                time.sleep(0.2)
    if missing:
        log.warning("gateways not online after %g s: %s; the rules start anyway", timeout, ", ".join(sorted(missing)))
    return missing


def progress_line(influx: InfluxClient, since_ms: int) -> str:
    """Reports stored per kind and commands sent so far."""
    stored = {k: sum(counts(influx, since_ms, k, next(iter(spec.metrics))).values()) for k, spec in KINDS.items()}
    commands = sum(counts(influx, since_ms, "command", "id").values())
    return "stored " + ", ".join(f"{v} {k}" for k, v in stored.items()) + f" reports; {commands} commands"


def summary_lines(influx: InfluxClient, since_ms: int, registry: Registry, network_server: str) -> list[str]:
    """Reports per kind, through the network server, commands and acks, light levels now, dead letters."""
    out = []
    for kind, spec in KINDS.items():
        per_device = counts(influx, since_ms, kind, next(iter(spec.metrics)), group="device")
        out.append(f"  {kind:<13} {sum(per_device.values()):>6} reports from {len(per_device)} devices")
    out.extend(_lorawan_lines(influx, since_ms, registry, network_server))
    sent = sum(counts(influx, since_ms, "command", "id").values())
    acks = counts(influx, since_ms, "command_ack", "id", group="status")
    out.append(f"  commands sent {sent}, acknowledged: "
               + (", ".join(f"{k} {v}" for k, v in sorted(acks.items())) or "none"))
    dimmed = sum(counts(influx, since_ms, "street_light", "dim_level", 'AND "dim_level" < 100').values())
    levels = {s.tags["wijk"]: int(s.values[0][1]) for s in influx.query(
        f'SELECT last("dim_level") FROM "street_light" WHERE time >= {since_ms}ms GROUP BY "wijk"')}
    out.append(f"  street-light reports below 100 %: {dimmed}; latest level per wijk: "
               + ", ".join(f"{w} {v} %" for w, v in sorted(levels.items())))
    dead = counts(influx, since_ms, "dead_letter", "count", group="reason")
    out.append("  dead letters: " + (", ".join(f"{k} {v}" for k, v in sorted(dead.items())) or "none")
               + "   (smartcity dead-letters lists them)")
    return out


def _lorawan_lines(influx: InfluxClient, since_ms: int, registry: Registry, network_server: str) -> list[str]:
    """How many of the reports came through the network server, and from how many devices."""
    by_kind: dict[str, list[str]] = {}
    for d in registry.devices.values():
        if d.link == "lorawan":
            by_kind.setdefault(d.kind, []).append(d.id)
    if not by_kind:
        return []
    reports = reporting = 0
    for kind, ids in sorted(by_kind.items()):
        where = "AND (" + " OR ".join(f"\"device\" = '{i}'" for i in sorted(ids)) + ")"
        per_device = counts(influx, since_ms, kind, next(iter(KINDS[kind].metrics)), where, group="device")
        reports += sum(per_device.values())
        reporting += len(per_device)
    total = sum(len(ids) for ids in by_kind.values())
    return [f"  through the network server ({network_server}): {reports} reports from "
            f"{reporting} of {total} lorawan devices"]
