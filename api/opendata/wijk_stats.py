"""Per-wijk statistics: public devices per kind, and the latest value and mean of each metric.

``GET /v1/stats/wijken?kind=&period=``: for each CBS wijk with public devices, per device kind,
how many public devices it has and, over the period, each metric's most recent value (of any of
the wijk's devices) and mean (numbers only; InfluxDB has no mean of booleans, so for a boolean
metric the share of readings that were true is not given, only the latest). One InfluxDB
request per measurement (``last(*), mean(*) ... GROUP BY "wijk"``), restricted to the public
devices, however many wijken and devices there are.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query

from api.deps import InfluxDep, RegistryDep
from api.opendata.public import device_condition, known_kind, public_devices
from core.influx import InfluxClient, InfluxError
from core.kinds import KINDS, Kind
from core.registry import Device

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["open data"])

PERIODS: dict[str, dt.timedelta] = {"1h": dt.timedelta(hours=1), "24h": dt.timedelta(days=1),
                                    "7d": dt.timedelta(days=7), "30d": dt.timedelta(days=30)}
Period = Literal["1h", "24h", "7d", "30d"]
STORE_UNAVAILABLE = "time-series store unavailable; try again later"


def _kind_stats(influx: InfluxClient, kind: Kind, devices: list[Device], period: str) -> dict[str, dict[str, Any]]:
    """wijk -> metric -> {latest, mean} for one kind (one query)."""
    series = influx.query(f'SELECT last(*), mean(*) FROM "{kind.name}" WHERE time > now() - {period} '
                          f'AND {device_condition(devices)} GROUP BY "wijk"', epoch="u")
    out: dict[str, dict[str, Any]] = {}
    for s in series:
        row = dict(zip(s.columns, s.values[0], strict=True)) if s.values else {}
        out[s.tags.get("wijk", "")] = {
            m: {"latest": row.get(f"last_{m}"), "mean": row.get(f"mean_{m}")} for m in kind.metrics}
    return out


@router.get("/stats/wijken")
def wijk_stats(registry: RegistryDep, influx: InfluxDep,
               kind: Annotated[str | None, Query(max_length=64, description="only this device kind",
                                                 json_schema_extra={"enum": sorted(KINDS)})] = None,
               period: Annotated[Period, Query(description="how far back the latest and mean look")] = "24h",
               ) -> dict[str, Any]:
    """Per wijk and device kind: the number of public devices, and each metric's latest value and mean."""
    kinds = [known_kind(kind)] if kind is not None else list(KINDS.values())
    now = dt.datetime.now(dt.UTC)
    wijken: dict[str, dict[str, Any]] = {}
    for k in kinds:
        devices = public_devices(registry, k.name)
        if not devices:
            continue
        try:
            stats = _kind_stats(influx, k, devices, period)
        except InfluxError as exc:
            log.warning("wijk stats: InfluxDB query failed: %s", exc)
            raise HTTPException(503, STORE_UNAVAILABLE) from None
        for wijk_code, n in Counter(d.wijk for d in devices).items():
            gemeente = next(d.gemeente for d in devices if d.wijk == wijk_code)
            entry = wijken.setdefault(wijk_code, {"wijk": wijk_code, "gemeente": gemeente, "kinds": {}})
            values = stats.get(wijk_code, {})
            entry["kinds"][k.name] = {"devices": n, "metrics": {
                m: {"unit": metric.unit, "latest": values.get(m, {}).get("latest"),
                    "mean": values.get(m, {}).get("mean")} for m, metric in k.metrics.items()}}
    return {"period": period, "from": (now - PERIODS[period]).isoformat().replace("+00:00", "Z"),
            "to": now.isoformat().replace("+00:00", "Z"),
            "wijken": [wijken[w] for w in sorted(wijken)]}
