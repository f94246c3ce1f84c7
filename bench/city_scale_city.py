"""The city of bench/city_scale.py: 100,000 devices, their real report cadence, the rule file, the packs.

A large city: GEMEENTEN gemeenten of WIJKEN wijken, one gateway (street cabinet) per wijk serving its
200 devices: 140 street lights, 40 occupancy sensors, 4 rain gauges (serial RG-15) and 16 traffic lights.
With 20 x 25 that is 500 wijken, 500 gateways and 100,000 devices.

The cadence is firmware-sim's and the edge's defaults (firmware_sim/scenario_file.py, edge/gateway_config.py):
a LoRa node (street light, occupancy sensor, traffic light) reports all its metrics every 10 minutes
(`report_interval = "10m"`), a rain gauge is polled every 10 s (`poll_interval = "10s"`), and a gateway
sends one SenML pack per second with whatever arrived (`smartcity edge --flush-interval 1`).

The per-device records reuse bench/rules_service_support.py (metrics, units, SenML shape); values here are a
dry, empty day (no rain, no presence) so that the only rule transitions are the latency triggers.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import orjson

from bench import rules_service_support as rs

KINDS = (("street_light", "sl", 140), ("occupancy", "occ", 40), ("rain_gauge", "rain", 4), ("traffic_light", "tl", 16))
DEVICES_PER_WIJK = sum(n for _, _, n in KINDS)
# Seconds between two reports of a device of each kind, at the real cadence (see the module docstring).
INTERVAL = {"street_light": 600.0, "occupancy": 600.0, "traffic_light": 600.0, "rain_gauge": 10.0}
# Placeholders the publisher replaces per pack (orjson writes them as these bytes; no value produces them).
SEQ_PLACEHOLDER = 987654321
SEQ_BYTES = b"987654321"
SEED = 20261202


@dataclass(frozen=True)
class City:
    gemeenten: int
    wijken: int  # per gemeente

    @property
    def gateways(self) -> int:
        return self.gemeenten * self.wijken

    @property
    def devices(self) -> int:
        return self.gateways * DEVICES_PER_WIJK


def gemeente_code(i: int) -> str:
    return f"GM{1600 + i:04d}"


def wijk_code(i: int, j: int) -> str:
    return f"WK{1600 + i:04d}{j:02d}"


def gateway_id(g: int) -> str:
    return f"gw-city-{g:04d}"


def trigger_device(city: City, g: int) -> str:
    """The occupancy sensor of wijk g that sends the latency triggers (it sends nothing else in the steps)."""
    return f"occ-{wijk_of_gateway(city, g)}-00"


def wijk_of_gateway(city: City, g: int) -> str:
    return wijk_code(g // city.wijken, g % city.wijken)


def gateway_devices(city: City, g: int) -> list[rs.DeviceInfo]:
    gm, wk = gemeente_code(g // city.wijken), wijk_of_gateway(city, g)
    return [rs.DeviceInfo(f"{prefix}-{wk}-{i:02d}", kind, gateway_id(g), gm, wk)
            for kind, prefix, n in KINDS for i in range(n)]


def registry_geojson(city: City) -> dict[str, Any]:
    """The city in core.registry's GeoJSON (LoRa addresses unique per gateway, RG-15s on serial ports)."""
    features: list[dict[str, Any]] = []

    def add(lon: float, lat: float, props: dict[str, Any]) -> None:
        features.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
                         "properties": props})

    for g in range(city.gateways):
        lon, lat = 4.0 + (g // city.wijken) * 0.05, 52.0 + (g % city.wijken) * 0.01
        add(lon, lat, {"id": gateway_id(g), "role": "gateway", "gemeente": gemeente_code(g // city.wijken)})
        for k, d in enumerate(gateway_devices(city, g)):
            props: dict[str, Any] = {"id": d.id, "role": "device", "kind": d.kind, "gateway": d.gateway,
                                     "gemeente": d.gemeente, "wijk": d.wijk}
            if d.kind == "rain_gauge":
                props |= {"link": "serial", "port": f"rg15-{d.id[-2:]}"}
            else:
                props |= {"link": "lora", "address": f"{k + 1:08X}"}
            add(lon + (k % 20) * 0.0002, lat + (k // 20) * 0.0002, props)
    return {"type": "FeatureCollection", "name": f"city scale benchmark: {city.devices:,} devices",
            "cbs_map_year": 2024, "features": features}


LAMP_FAILURE = '''
[[rules]]
name = "lamp-failure"
description = "A street light dimmed above 0 % that draws under 5 W for ten minutes"
kind = "street_light"
group_by = "device"
values.level = { metric = "dim_level" }
values.power = { metric = "power" }
when = "level > 0 and power < 5"
for = "10m"
on_activate = [{ alarm = "Lamp failure", severity = "major" }]
'''


def rules_toml(hold: float) -> str:
    """Presence dimming (urgent; hold shortened so a wijk clears between triggers), rain bike priority
    (bench/rules_service_support.rules_toml) and the lamp failure alarm of rules/examples/city-rules.toml:
    group_by wijk (lamp failure per device), so partitions by wijk hold whole slots."""
    return rs.rules_toml(hold=f"{hold:g}s", night_only=False) + LAMP_FAILURE


def offered_per_gateway(scale: float) -> tuple[float, float]:
    """(device reports/s, readings/s) of one gateway at `scale` x the real cadence."""
    reports = sum(n / INTERVAL[kind] for kind, _, n in KINDS)
    readings = sum(n * len(rs.METRICS[kind]) / INTERVAL[kind] for kind, _, n in KINDS)
    return reports * scale, readings * scale


def report_cycle(city: City, g: int) -> list[rs.DeviceInfo]:
    """One 600 s cycle of a gateway's device reports, spread evenly: each device as often as it reports."""
    cycle = max(INTERVAL.values())
    keyed = []
    devs = [d for d in gateway_devices(city, g) if d.id != trigger_device(city, g)]
    by_kind: dict[str, list[rs.DeviceInfo]] = {}
    for d in devs:
        by_kind.setdefault(d.kind, []).append(d)
    for kind, ds in by_kind.items():
        times = int(cycle / INTERVAL[kind])
        slots = len(ds) * times
        keyed += [((i + 0.5) / slots, kind, ds[i % len(ds)].id, ds[i % len(ds)]) for i in range(slots)]
    return [d for *_, d in sorted(keyed, key=lambda x: x[:3])]


def values(d: rs.DeviceInfo, rnd: random.Random) -> list[tuple[str, str | None, Any]]:
    """One report: a dry, empty, working city (no rain, no presence, lights drawing power)."""
    out: list[tuple[str, str | None, Any]] = []
    for metric, unit, boolean in rs.METRICS[d.kind]:
        value: Any
        if boolean:
            value = False
        elif metric == "rain_intensity":
            value = 0.0
        elif metric == "power":
            value = round(rnd.uniform(20.0, 40.0), 1)
        else:
            value = round(rnd.uniform(0.0, 100.0), 1)
        out.append((metric, unit, value))
    return out


def encode(reports: list[rs.DeviceInfo], rnd: random.Random) -> bytes:
    """A SenML pack of these reports: bt and seq placeholders on the first record, t 1 ms apart."""
    recs = rs.record_dicts([(d.id, round(i * 0.001, 3), values(d, rnd)) for i, d in enumerate(reports)])
    first = recs[0]
    recs[0] = {"bn": first.pop("bn"), "bt": rs.BT_PLACEHOLDER, "seq": SEQ_PLACEHOLDER, **first}
    return orjson.dumps(recs)


def records_of(reports: list[rs.DeviceInfo]) -> int:
    return sum(len(rs.METRICS[d.kind]) for d in reports)


@dataclass(frozen=True)
class Pack:
    payload: bytes  # with placeholders
    records: int
    points: int  # device reports (one InfluxDB point each)


def gateway_packs(city: City, g: int, per_pack: int, distinct: int) -> list[Pack]:
    """Up to `distinct` packs of `per_pack` reports taken in turn from the gateway's cycle (replayed with a
    new base time each second, so every (device, time) is new)."""
    cycle = report_cycle(city, g)
    rnd = random.Random(SEED + g)
    out, pos = [], 0
    for _ in range(distinct):
        reports = [cycle[(pos + i) % len(cycle)] for i in range(per_pack)]
        pos += per_pack
        out.append(Pack(encode(reports, rnd), records_of(reports), len(reports)))
    return out


def census_packs(city: City, g: int, per_pack: int = 40) -> list[Pack]:
    """Every device of the gateway once (the trigger sensor too): the series the registry implies."""
    devs = gateway_devices(city, g)
    rnd = random.Random(SEED - g)
    return [Pack(encode(devs[i:i + per_pack], rnd), records_of(devs[i:i + per_pack]), len(devs[i:i + per_pack]))
            for i in range(0, len(devs), per_pack)]


def trigger_pack(device: str, bt: float, seq: int, present: bool = True) -> bytes:
    """A presence sensor's event uplink: someone there (the trigger), or gone again (so the wijk can clear)."""
    return orjson.dumps([{"bn": f"{device}/", "bt": round(bt, 3), "seq": seq, "n": "presence", "vb": present,
                          "t": 0.0}])


def finish(payload: bytes, bt: float, seq: int) -> bytes:
    """The pack with its base time (ms) and sequence number filled in."""
    return rs.with_base_time(payload, bt).replace(SEQ_BYTES, str(seq).encode(), 1)
