"""Open data: the latest readings of every public device, as GeoJSON.

Only devices classified `openbaar` are ever served here (architecture.md, "Classification
and privacy"); occupancy is counts per interval, never identities.
"""

from __future__ import annotations

import datetime as dt
import logging
from email.utils import format_datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request, Response

from api.deps import InfluxDep, RegistryDep
from core.influx import InfluxError
from core.kinds import KINDS, Classification

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["open data"])

# The 503 says what is wrong without saying where InfluxDB is (the address is an internal detail).
STORE_UNAVAILABLE = "time-series store unavailable; try again later"


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat().replace("+00:00", "Z")


@router.get("/latest")
def latest(request: Request, response: Response, registry: RegistryDep, influx: InfluxDep, *,
           kind: str | None = Query(None, description="only this device kind", max_length=64),
           gemeente: str | None = Query(None, description="only this gemeente (CBS code)",
                                        pattern=r"^GM\d{4}$")) -> dict[str, Any]:
    """A GeoJSON FeatureCollection: one Point per public device with its most recent values and units.

    Last-Modified is the newest reading's time, so pollers can ask If-Modified-Since.
    """
    if kind is not None and kind not in KINDS:
        raise HTTPException(422, f"unknown kind {kind!r}; known: {', '.join(sorted(KINDS))}")
    public = {d.id: d for d in registry.devices.values()
              if d.classification is Classification.OPENBAAR and (kind is None or d.kind == kind)
              and (gemeente is None or d.gemeente == gemeente)}
    kinds = sorted({d.kind for d in public.values()})
    latest_by_device: dict[str, tuple[int, dict[str, Any]]] = {}
    if kinds:
        window = request.app.state.settings.latest_window
        measurements = ",".join(f'"{k}"' for k in kinds)
        try:
            series = influx.query(f"SELECT * FROM {measurements} WHERE time > now() - {window} "
                                  'GROUP BY "device" ORDER BY time DESC LIMIT 1')
        except InfluxError as exc:
            log.warning("latest: InfluxDB query failed: %s", exc)
            raise HTTPException(503, STORE_UNAVAILABLE) from None
        for s in series:
            device = public.get(s.tags.get("device", ""))
            if device is None or s.name != device.kind:
                continue
            for row in s.rows():
                metrics = KINDS[device.kind].metrics
                values = {m: {"value": row[m], "unit": metrics[m].unit}
                          for m in metrics if row.get(m) is not None}
                latest_by_device[device.id] = (int(row["time"]), values)
    features = []
    for device in sorted(public.values(), key=lambda d: d.id):
        time_ms, values = latest_by_device.get(device.id, (None, {}))
        features.append({
            "type": "Feature",
            "id": device.id,
            "geometry": {"type": "Point", "coordinates": [device.lon, device.lat]},
            "properties": {
                "name": device.name, "kind": device.kind, "gemeente": device.gemeente, "wijk": device.wijk,
                "buurt": device.buurt, "time": _iso(time_ms) if time_ms is not None else None, "readings": values,
            },
        })
    if latest_by_device:
        newest = max(t for t, _ in latest_by_device.values())
        response.headers["Last-Modified"] = format_datetime(dt.datetime.fromtimestamp(newest // 1000, dt.UTC),
                                                            usegmt=True)
    return {"type": "FeatureCollection", "cbs_map_year": registry.map_year, "features": features}
