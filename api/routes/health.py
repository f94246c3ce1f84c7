"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from pydantic import BaseModel

from api.deps import InfluxDep, RegistryDep

router = APIRouter(tags=["health"])


class Health(BaseModel):
    """What the service depends on, and whether each answers."""

    status: str
    influxdb: bool
    gateways: int
    devices: int


@router.get("/healthz")
def healthz(registry: RegistryDep, influx: InfluxDep, response: Response) -> Health:
    """200 when InfluxDB answers, 503 otherwise; the registry counts say what is being served."""
    ok = influx.ping()
    if not ok:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return Health(status="ok" if ok else "degraded", influxdb=ok, gateways=len(registry.gateways),
                  devices=len(registry.devices))
