"""The rules' alarms: list them (viewer) and acknowledge one (operator), as `smartcity alarms` does."""

from __future__ import annotations

import logging
import time
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request

from api.operators.audit import audit
from api.operators.auth import OperatorDep, ViewerDep
from api.operators.control import alarms_path
from core.influx import InfluxClient, InfluxError
from rules.alarm_store import Alarm, AlarmError, AlarmState, AlarmStore, AlarmStoreError
from rules.group_zones import GroupZones
from rules.rule_events import alarm_line

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/operator", tags=["operator"])


def _json(a: Alarm) -> dict[str, Any]:
    return {"id": a.id, "rule": a.rule, "group": a.group, "text": a.text, "severity": a.severity.value,
            "state": a.state.value, "raised_at": a.raised_at, "acknowledged_at": a.acknowledged_at,
            "acknowledged_by": a.acknowledged_by, "cleared_at": a.cleared_at, "values": a.values}


@router.get("/alarms", summary="Open alarms, or with all=true the latest of every state (viewer)")
def list_alarms(request: Request, who: ViewerDep, *, all_: Annotated[bool, Query(alias="all")] = False,
                limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    """Alarms with rule, group, severity, state and who acknowledged them when."""
    path = alarms_path(request)
    alarms: list[Alarm] = []
    if path.exists():
        try:
            with AlarmStore(path) as store:
                alarms = store.history(limit) if all_ else store.open_alarms()[:limit]
        except AlarmStoreError as exc:
            log.error("alarm store: %s", exc)
            raise HTTPException(503, "the alarm store cannot be read") from None
    audit(request, who.name, "alarms.list", "all" if all_ else "open", "ok", f"{len(alarms)} alarms")
    return {"alarms": [_json(a) for a in alarms]}


@router.post("/alarms/{alarm_id}/ack", summary="Acknowledge an alarm (operator)")
def acknowledge(request: Request, who: OperatorDep, alarm_id: int) -> dict[str, Any]:
    """Record who acknowledged the alarm and when; 404 unknown, 409 already acknowledged."""
    path = alarms_path(request)
    if not path.exists():
        audit(request, who.name, "alarm.ack", str(alarm_id), "not found")
        raise HTTPException(404, f"no alarm {alarm_id}")
    at = time.time()
    try:
        with AlarmStore(path) as store:
            if store.get(alarm_id) is None:
                audit(request, who.name, "alarm.ack", str(alarm_id), "not found")
                raise HTTPException(404, f"no alarm {alarm_id}")
            alarm = store.acknowledge(alarm_id, who.name, at)
    except AlarmError as exc:
        audit(request, who.name, "alarm.ack", str(alarm_id), "conflict", str(exc))
        raise HTTPException(409, str(exc)[:200]) from None
    except AlarmStoreError as exc:
        log.error("alarm store: %s", exc)
        audit(request, who.name, "alarm.ack", str(alarm_id), "failed", "alarm store unavailable")
        raise HTTPException(503, "the alarm store cannot be written") from None
    influx: InfluxClient = request.app.state.influx_writer
    try:  # Grafana's annotation; the acknowledgement stands in the store even if this fails
        # The group's zone, as the rules tag the alarm's raised and cleared points (the dashboards filter by it).
        gemeente, wijk = GroupZones(request.app.state.registry.get()).guess(alarm.group)
        influx.write(alarm_line(alarm.rule, alarm.group, alarm.severity, AlarmState.ACKNOWLEDGED, at=at,
                                alarm_id=alarm.id, text=alarm.text, by=who.name, gemeente=gemeente, wijk=wijk),
                     precision="u")
    except InfluxError as exc:
        log.warning("acknowledgement of alarm %d not written to InfluxDB: %s", alarm.id, exc)
    audit(request, who.name, "alarm.ack", str(alarm_id), "ok", f"{alarm.rule} {alarm.group}: {alarm.text}")
    return _json(alarm)
