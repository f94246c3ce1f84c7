"""The report's figures, read from InfluxDB with InfluxQL: energy, rain and bike priority, alarms, completeness.

Definitions (also printed in the report):

- Energy (dashboards/energy.py's definition): a lamp at dim level d > 0 drawing P W would draw P * 100 / d
  at full level, so dimming saves P * (100 - d) / d W; off by day saves nothing. Energy used and energy
  saved are the time integrals (trapezoids between a lamp's consecutive readings) over the period, summed
  per wijk; the always-on baseline is used + saved; the saving in per cent is 100 * saved / baseline.
- Rain minutes: minutes of the period in which the wijk's highest gauge reading (the last one, carried
  forward) exceeded the bike-priority rule's threshold (0.5 mm/h in city-rules.toml).
- Bike-priority minutes: minutes the wijk's rain-bike-priority rule slot was active, from the rules'
  rule_event points (activate .. clear), clipped to the period: what the platform decided, which the
  traffic lights then applied (their acks are in the command_ack measurement).
- Alarms: the alarm points of the period per wijk: raised, acknowledged (by an operator), cleared.
- Data completeness of a gateway: minutes of the period with at least one stored batch of its readings
  (ingest_batch) over the minutes of the period; a gateway that is off or cut off loses its minutes.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from core.influx import InfluxClient
from dashboards.energy import SAVED_W

BIKE_RULE = "rain-bike-priority"
RAIN_THRESHOLD = 0.5  # mm/h: the rule's `when = "rain > 0.5"`


@dataclass(slots=True)
class WijkFigures:
    """One wijk's row of the report."""

    gemeente: str
    wijk: str
    used_kwh: float = 0.0
    saved_kwh: float = 0.0
    rain_minutes: int = 0
    bike_priority_minutes: float = 0.0
    alarms: dict[str, int] = field(default_factory=lambda: {"raised": 0, "acknowledged": 0, "cleared": 0})

    @property
    def baseline_kwh(self) -> float:
        return self.used_kwh + self.saved_kwh

    @property
    def saved_pct(self) -> float:
        return 100 * self.saved_kwh / self.baseline_kwh if self.baseline_kwh > 0 else 0.0


@dataclass(slots=True)
class GatewayFigures:
    """One gateway's completeness."""

    gateway: str
    gemeente: str
    minutes_with_data: int
    minutes: int

    @property
    def completeness_pct(self) -> float:
        return 100 * self.minutes_with_data / self.minutes if self.minutes else 0.0


@dataclass(slots=True)
class Figures:
    """Everything the report shows, for the period [start, end)."""

    start: float
    end: float
    wijken: list[WijkFigures]
    gateways: list[GatewayFigures]
    bike_periods: dict[str, list[tuple[float, float]]]  # wijk -> active intervals
    rain: dict[str, list[tuple[float, float]]]  # wijk -> (time, max mm/h) per minute


def _q(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _rows(influx: InfluxClient, q: str) -> list[dict[str, Any]]:
    return [{**s.tags, **row} for s in influx.query(q, epoch="s") for row in s.rows()]


def read_figures(influx: InfluxClient, start: float, end: float, *, gemeente: str | None = None,
                 known_gateways: dict[str, str] | None = None) -> Figures:
    """All the figures of the period (gemeente: only that one's wijken and gateways).

    known_gateways (gateway -> gemeente, from the registry) adds the gateways that sent nothing at all in
    the period, at 0 %: without it the report can only list the gateways it has data of.
    """
    t = f"time >= {round(start)}s AND time < {round(end)}s"
    area = f" AND \"gemeente\" = '{_q(gemeente)}'" if gemeente else ""
    wijken: dict[str, WijkFigures] = {}

    def wijk(g: Any, w: Any) -> WijkFigures:
        key = str(w)
        if key not in wijken:
            wijken[key] = WijkFigures(str(g), key)
        return wijken[key]

    for r in _rows(influx, f'SELECT count("dim_level") FROM "street_light" WHERE {t}{area} GROUP BY "gemeente", '
                           '"wijk"'):
        wijk(r["gemeente"], r["wijk"])
    for r in _rows(influx, f'SELECT integral("saved_w", 1h) / 1000 AS "saved", integral("power", 1h) / 1000 AS "used" '
                           f'FROM (SELECT {SAVED_W} AS "saved_w", "power" FROM "street_light" WHERE {t}{area}) '
                           f'WHERE {t} GROUP BY "device", "gemeente", "wijk"'):
        f = wijk(r["gemeente"], r["wijk"])
        f.saved_kwh += float(r["saved"] or 0.0)
        f.used_kwh += float(r["used"] or 0.0)
    rain: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for r in _rows(influx, f'SELECT max("rain_intensity") AS "rain" FROM "rain_gauge" WHERE {t}{area} '
                           'GROUP BY time(1m), "gemeente", "wijk" fill(previous)'):
        if r["rain"] is None:
            continue
        value = float(r["rain"])
        rain[str(r["wijk"])].append((float(r["time"]), value))
        f = wijk(r["gemeente"], r["wijk"])
        f.rain_minutes += value > RAIN_THRESHOLD
    periods = _bike_periods(influx, t, area, start, end)
    for w, spans in periods.items():
        if w in wijken:
            wijken[w].bike_priority_minutes = sum(b - a for a, b in spans) / 60
    for r in _rows(influx, f'SELECT count("id") FROM "alarm" WHERE {t}{area} GROUP BY "gemeente", "wijk", "state"'):
        state = str(r["state"])
        if r.get("wijk") and state in ("raised", "acknowledged", "cleared"):
            wijk(r["gemeente"], r["wijk"]).alarms[state] += int(r["count"])
    minutes = round((end - start) / 60)
    batches = _rows(influx, f'SELECT count("records") FROM (SELECT sum("records") AS "records" FROM "ingest_batch" '
                            f'WHERE {t}{area} GROUP BY time(1m), "gateway", "gemeente" fill(none)) WHERE {t} '
                            'GROUP BY "gateway", "gemeente"')
    gateways = [GatewayFigures(str(r["gateway"]), str(r.get("gemeente") or ""), int(r["count"]), minutes)
                for r in batches]
    heard = {g.gateway for g in gateways}
    gateways += [GatewayFigures(gw, code, 0, minutes) for gw, code in (known_gateways or {}).items()
                 if gw not in heard and (gemeente is None or code == gemeente)]
    return Figures(start, end, sorted(wijken.values(), key=lambda f: f.wijk),
                   sorted(gateways, key=lambda g: g.gateway), dict(periods), dict(rain))


def _bike_periods(influx: InfluxClient, t: str, area: str, start: float,
                  end: float) -> dict[str, list[tuple[float, float]]]:
    """wijk -> [activate, clear) intervals of the bike-priority rule, clipped to the period.

    A slot active when the period starts (its last event before the start is an activation) counts
    from the start: a report of the evening does not lose the shower that began in the afternoon.
    """
    rule = f"\"rule\" = '{BIKE_RULE}'"
    opened: dict[str, float] = {
        s.tags["group"]: start
        for s in influx.query(f'SELECT last("active") AS "active" FROM "rule_event" WHERE time < {round(start)}s'
                              f'{area} AND {rule} GROUP BY "group"', epoch="s")
        for row in s.rows() if row["active"]}
    out: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for s in influx.query(f'SELECT "active" FROM "rule_event" WHERE {t}{area} AND {rule} GROUP BY "group"',
                          epoch="s"):
        group = s.tags["group"]
        for row in s.rows():
            at, active = float(row["time"]), bool(row["active"])
            if active and group not in opened:
                opened[group] = at
            elif not active and group in opened:
                out[group].append((opened.pop(group), at))
    for group, at in opened.items():
        out[group].append((at, end))
    return out
