"""Command history with the gateways' acks (InfluxDB ``command`` and ``command_ack``, written by the ingest)."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request

from api.operators.audit import audit
from api.operators.auth import ViewerDep
from core.influx import InfluxClient, InfluxError
from core.topics import ID_PATTERN
from ingest.dead_letters import list_dead_letters

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/operator", tags=["operator"])

_TAGS = {"gateway", "device", "action", "origin"}
MAX_ACKS = 10_000


def _quote(value: str) -> str:
    # Only values that passed the id / origin patterns get here; escaped all the same.
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _query(influx: InfluxClient, q: str) -> list[dict[str, Any]]:
    try:
        return [row for series in influx.query(q, epoch="u") for row in series.rows()]
    except InfluxError as exc:
        log.error("command history query failed: %s", exc)
        raise HTTPException(503, "InfluxDB is not reachable") from None


@router.get("/commands", summary="Commands sent (rules and operators) with their acks (viewer)")
def command_history(request: Request, who: ViewerDep, *,
                    device: Annotated[str | None, Query(pattern=ID_PATTERN.pattern)] = None,
                    origin: Annotated[str | None, Query(pattern=r"^(rule|operator):[A-Za-z0-9_.@-]{1,128}$")] = None,
                    since: Annotated[int, Query(ge=1, le=366 * 86400, description="seconds back")] = 86400,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    """Newest first: time, device, gateway, action, params, origin, id, and the acks with their status."""
    where = [f"time > now() - {since}s"]
    if device:
        where.append(f'"device" = {_quote(device)}')
    if origin:
        where.append(f'"origin" = {_quote(origin)}')
    influx: InfluxClient = request.app.state.influx
    rows = _query(influx, f'SELECT * FROM "command" WHERE {" AND ".join(where)} ORDER BY time DESC LIMIT {limit}')
    acks: dict[str, list[dict[str, Any]]] = {}
    if rows:
        oldest = min(int(r["time"]) for r in rows)
        ack_where = [f"time >= {oldest}u"] + ([f'"device" = {_quote(device)}'] if device else [])
        for a in _query(influx, f'SELECT * FROM "command_ack" WHERE {" AND ".join(ack_where)} LIMIT {MAX_ACKS}'):
            acks.setdefault(str(a.get("id")), []).append(
                {"time": a["time"] / 1e6, "status": a.get("status"), "detail": a.get("detail") or ""})
    out = []
    for r in rows:
        params = {k: v for k, v in r.items() if k not in _TAGS | {"time", "id"} and v is not None}
        out.append({"time": r["time"] / 1e6, "id": r.get("id"), "device": r.get("device"),
                    "gateway": r.get("gateway"), "action": r.get("action"), "origin": r.get("origin"),
                    "params": params, "acks": acks.get(str(r.get("id")), [])})
    audit(request, who.name, "commands.history", device or origin or "-", "ok", f"{len(out)} commands")
    return {"commands": out}


@router.get("/dead-letters", summary="What the ingest refused, newest first (viewer)")
def dead_letters(request: Request, who: ViewerDep, *,
                 reason: Annotated[str | None, Query(pattern=r"^[a-z_]{1,64}$")] = None,
                 gateway: Annotated[str | None, Query(pattern=ID_PATTERN.pattern)] = None,
                 since: Annotated[int, Query(ge=1, le=366 * 86400, description="seconds back")] = 86400,
                 limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    """Each dead letter: when, gateway, topic, reason, records refused, detail and the first bytes sent."""
    influx: InfluxClient = request.app.state.influx
    try:
        found = list_dead_letters(influx, since_seconds=since, reason=reason, gateway=gateway, limit=limit)
    except InfluxError as exc:
        log.error("dead letter query failed: %s", exc)
        raise HTTPException(503, "InfluxDB is not reachable") from None
    audit(request, who.name, "dead_letters.list", gateway or reason or "-", "ok", f"{len(found)} dead letters")
    return {"dead_letters": [{"time": d.received, "gateway": d.gateway, "topic": d.topic, "reason": d.reason,
                              "count": d.count, "detail": d.detail, "payload_head": d.payload_head,
                              "worker": d.worker} for d in found]}
