"""Helpers of bench/rules_service.py: the synthetic city, its readings stream, the rule files, the publisher.

The city: gateways spread over gemeenten (GM0626, GM0629 and more), each gateway serving WIJKEN_PER_GATEWAY
wijken; a wijk has occupancy sensors, street lights, rain gauges and traffic lights. The stream: every
device reports all its metrics once per round, gateway by gateway, cut into SenML packs of `batch` records
(bn per device, bt and seq on the first record, relative t, units), each pack holding only devices of the
gateway it is published for. With the default mix 13.2 % of the records are read by the rules (presence
and rain_intensity); the rest are the street lights' and the other metrics a real gateway sends too.

The packs are encoded once, with a placeholder base time that the publisher replaces per phase
(`with_base_time`), so every consumer gets byte for byte the same stream except for the time.
"""

from __future__ import annotations

import os
import random
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

GEMEENTEN = ("GM0626", "GM0629", "GM0599", "GM0363")
WIJKEN_PER_GATEWAY = 3
# Per wijk: devices of each kind.
OCCUPANCY, LIGHTS, RAIN_GAUGES, TRAFFIC_LIGHTS = 36, 40, 2, 4
# (metric, unit, boolean?) per kind, in the order a device reports them.
METRICS: dict[str, tuple[tuple[str, str | None, bool], ...]] = {
    "occupancy": (("presence", None, True), ("count", "count", False)),
    "street_light": (("dim_level", "%", False), ("power", "W", False), ("energy", "kWh", False),
                     ("voltage", "V", False), ("temperature", "Cel", False)),
    "rain_gauge": (("rain_intensity", "mm/h", False), ("accumulation", "mm", False),
                   ("event_accumulation", "mm", False), ("total_accumulation", "mm", False)),
    "traffic_light": (("bike_priority", None, True), ("cycle_time", "s", False)),
}
RULE_METRICS = {("occupancy", "presence"), ("rain_gauge", "rain_intensity")}
# A placeholder base time: orjson writes it as these bytes, which no value of the stream produces.
BT_PLACEHOLDER = 1111111111.0
BT_BYTES = orjson.dumps(BT_PLACEHOLDER)
SEED = 20261201


def gateway_id(g: int) -> str:
    return f"gw-rules-{g:02d}"


def gateway_wijken(g: int) -> tuple[str, list[str]]:
    """The gemeente of gateway g and its wijk codes (WK + gemeente digits + 2 digits)."""
    gm = GEMEENTEN[g % len(GEMEENTEN)]
    local = g // len(GEMEENTEN)
    return gm, [f"WK{gm[2:]}{local * WIJKEN_PER_GATEWAY + j:02d}" for j in range(WIJKEN_PER_GATEWAY)]


@dataclass(frozen=True)
class DeviceInfo:
    id: str
    kind: str
    gateway: str
    gemeente: str
    wijk: str


def devices(gateways: int) -> list[DeviceInfo]:
    """Every device of the city, gateway by gateway, wijk by wijk, kind by kind."""
    out: list[DeviceInfo] = []
    for g in range(gateways):
        gm, wijken = gateway_wijken(g)
        for wk in wijken:
            for kind, prefix, count in (("occupancy", "occ", OCCUPANCY), ("street_light", "sl", LIGHTS),
                                        ("rain_gauge", "rain", RAIN_GAUGES), ("traffic_light", "tl", TRAFFIC_LIGHTS)):
                out.extend(DeviceInfo(f"{prefix}-{wk}-{i:02d}", kind, gateway_id(g), gm, wk) for i in range(count))
    return out


def registry_geojson(gateways: int) -> dict[str, Any]:
    """The city in the GeoJSON format of core/registry.py (LoRa addresses unique per gateway)."""
    features: list[dict[str, Any]] = []

    def add(lon: float, lat: float, props: dict[str, Any]) -> None:
        features.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
                         "properties": props})

    coords = {"GM0626": (4.46, 52.13), "GM0629": (4.40, 52.14), "GM0599": (4.48, 51.92), "GM0363": (4.90, 52.37)}
    for g in range(gateways):
        gm, _ = gateway_wijken(g)
        lon, lat = coords[gm]
        add(lon, lat, {"id": gateway_id(g), "role": "gateway", "gemeente": gm})
    addresses: dict[str, int] = {}
    for i, d in enumerate(devices(gateways)):
        lon, lat = coords[d.gemeente]
        props: dict[str, Any] = {"id": d.id, "role": "device", "kind": d.kind, "gateway": d.gateway,
                                 "gemeente": d.gemeente, "wijk": d.wijk}
        if d.kind == "rain_gauge":
            props |= {"link": "serial", "port": f"rg15-{d.id[-2:]}-{d.wijk[-2:]}"}
        else:
            addresses[d.gateway] = addresses.get(d.gateway, 0) + 1
            props |= {"link": "lora", "address": f"{addresses[d.gateway]:08X}"}
        add(lon + (i % 50) * 0.0002, lat + (i // 50 % 50) * 0.0002, props)
    return {"type": "FeatureCollection", "name": "rules service benchmark city", "cbs_map_year": 2024,
            "features": features}


def node_red_registry(gateways: int) -> dict[str, Any]:
    """The registry as the Node-RED flow reads it: device -> [kind, gateway, wijk, gemeente], wijk lights."""
    devs = devices(gateways)
    wijken: dict[str, dict[str, Any]] = {}
    for d in devs:
        w = wijken.setdefault(d.wijk, {"gemeente": d.gemeente, "lights": [], "traffic_lights": []})
        if d.kind == "street_light":
            w["lights"].append([d.id, d.gateway])
        elif d.kind == "traffic_light":
            w["traffic_lights"].append([d.id, d.gateway])
    coords = {"GM0626": (4.46, 52.13), "GM0629": (4.40, 52.14), "GM0599": (4.48, 51.92), "GM0363": (4.90, 52.37)}
    return {"devices": {d.id: [d.kind, d.gateway, d.wijk, d.gemeente] for d in devs}, "wijken": wijken,
            "gemeenten": {gm: {"lon": c[0], "lat": c[1]} for gm, c in coords.items()}}


# --- the rule files ---------------------------------------------------------------------------------------

def rules_toml(*, hold: str = "5m", night_only: bool = True, rain_for: str = "2m", rain_clear_for: str = "10m",
               urgent: bool = True) -> str:
    """The two rules as a version-2 rule file (rules/README.md): presence dimming and rain hysteresis.

    Throughput runs use the real durations; the latency run shortens the presence hold (and drops
    `night`) so that each wijk can be triggered again every few seconds.
    """
    clear = "night and presence == 0" if night_only else "presence == 0"
    return f'''version = 2
timezone = "Europe/Amsterdam"

[[rules]]
name = "presence-dimming"
description = "Street lights of a wijk to 100 % on presence; to 20 % after {hold} without presence at night"
kind = "occupancy"
group_by = "wijk"
values.presence = {{ metric = "presence", fn = "max", over = "{hold}" }}
when = "presence > 0"
clear_when = "{clear}"
urgent = {"true" if urgent else "false"}
on_activate = [{{ command = "dim", params = {{ level = 100 }}, targets = {{ kind = "street_light" }} }}]
on_clear = [{{ command = "dim", params = {{ level = 20 }}, targets = {{ kind = "street_light" }} }}]

[[rules]]
name = "rain-bike-priority"
description = "Bike priority at the traffic lights of a wijk while it rains there"
kind = "rain_gauge"
group_by = "wijk"
values.rain = {{ metric = "rain_intensity", reduce = "max" }}
when = "rain > 0.5"
for = "{rain_for}"
clear_when = "rain < 0.1"
clear_for = "{rain_clear_for}"
on_activate = [{{ command = "bike_priority", targets = {{ kind = "traffic_light" }}, params = {{ enabled = true }} }}]
on_clear = [{{ command = "bike_priority", targets = {{ kind = "traffic_light" }}, params = {{ enabled = false }} }}]
'''


# --- the stream -------------------------------------------------------------------------------------------

def device_records(d: DeviceInfo, rnd: random.Random, presence_p: float) -> list[tuple[str, str | None, Any]]:
    """One report of a device: (metric, unit, value) for each metric; values seeded."""
    out: list[tuple[str, str | None, Any]] = []
    for metric, unit, boolean in METRICS[d.kind]:
        if metric == "presence":
            value: Any = rnd.random() < presence_p
        elif boolean:
            value = rnd.random() < 0.3
        elif metric == "rain_intensity":
            value = round(rnd.uniform(0.0, 2.0), 2)
        else:
            value = round(rnd.uniform(0.0, 250.0), 1)
        out.append((metric, unit, value))
    return out


def record_dicts(reports: list[tuple[str, float, list[tuple[str, str | None, Any]]]]) -> list[dict[str, Any]]:
    """SenML records for (device, t offset, metrics): bn on a device's first record, relative t."""
    records: list[dict[str, Any]] = []
    last_device = None
    for device, t, metrics in reports:
        for metric, unit, value in metrics:
            rec: dict[str, Any] = {"n": metric}
            if device != last_device:
                rec = {"bn": f"{device}/", "n": metric}
                last_device = device
            if unit:
                rec["u"] = unit
            rec["vb" if isinstance(value, bool) else "v"] = value
            rec["t"] = t
            records.append(rec)
    return records


def gateway_packs(g: int, gateways: int, packs: int, batch: int, presence_p: float = 0.1) -> list[bytes]:
    """Gateway g's first `packs` packs of `batch` records, bt = BT_PLACEHOLDER, seq from 0."""
    devs = interleaved([d for d in devices(gateways) if d.gateway == gateway_id(g)])
    rnd = random.Random(SEED + g)
    out: list[bytes] = []
    pending: list[tuple[str, str | None, Any, str]] = []  # (metric, unit, value, device)
    i = 0
    while len(out) < packs:
        while len(pending) < batch:
            d = devs[i % len(devs)]
            i += 1
            pending.extend((m, u, v, d.id) for m, u, v in device_records(d, rnd, presence_p))
        chunk, pending = pending[:batch], pending[batch:]
        reports: list[tuple[str, float, list[tuple[str, str | None, Any]]]] = []
        for m, u, v, dev in chunk:
            if not reports or reports[-1][0] != dev:
                reports.append((dev, round(len(reports) * 0.001, 3), []))
            reports[-1][2].append((m, u, v))
        records = record_dicts(reports)
        records[0] = {"bn": records[0].pop("bn"), "bt": BT_PLACEHOLDER, "seq": len(out), **records[0]}
        out.append(orjson.dumps(records))
    return out


def interleaved(devs: list[DeviceInfo]) -> list[DeviceInfo]:
    """The devices in an order that spreads each kind evenly (so every pack has about the same mix)."""
    by_kind: dict[str, list[DeviceInfo]] = {}
    for d in devs:
        by_kind.setdefault(d.kind, []).append(d)
    keyed = [((i + 0.5) / len(ds), k, d) for k, ds in by_kind.items() for i, d in enumerate(ds)]
    return [d for _, _, d in sorted(keyed, key=lambda x: (x[0], x[1]))]


def rule_read_fraction(gateways: int) -> float:
    """The share of records that the rules read (presence and rain_intensity)."""
    devs = devices(gateways)
    total = sum(len(METRICS[d.kind]) for d in devs)
    used = sum(1 for d in devs for m, _, _ in METRICS[d.kind] if (d.kind, m) in RULE_METRICS)
    return used / total


def with_base_time(pack: bytes, bt: float) -> bytes:
    """The pack with its placeholder base time replaced (ms precision; the t offsets keep theirs)."""
    return pack.replace(BT_BYTES, b"%.3f" % bt, 1)


def save_stream(path: Path, per_gateway: list[list[bytes]]) -> None:
    """Write the packs as length-prefixed records: gateways, then per gateway its count and packs."""
    with path.open("wb") as f:
        f.write(struct.pack("<I", len(per_gateway)))
        for packs in per_gateway:
            f.write(struct.pack("<I", len(packs)))
            for p in packs:
                f.write(struct.pack("<I", len(p)))
                f.write(p)


def load_stream(path: Path) -> list[list[bytes]]:
    data = memoryview(path.read_bytes())
    pos = 4
    out: list[list[bytes]] = []
    (n,) = struct.unpack_from("<I", data, 0)
    for _ in range(n):
        (k,) = struct.unpack_from("<I", data, pos)
        pos += 4
        packs = []
        for _ in range(k):
            (size,) = struct.unpack_from("<I", data, pos)
            pos += 4
            packs.append(bytes(data[pos:pos + size]))
            pos += size
        out.append(packs)
    return out


# --- /proc ------------------------------------------------------------------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU seconds of a process and its threads so far (0 if it is gone).

    From each thread's schedstat (nanoseconds on a CPU): /proc/<pid>/stat counts in clock ticks, which
    over a phase of a few seconds was off by up to 15 % here. Falls back to stat without schedstat.
    """
    try:
        total = 0
        for tid in os.listdir(f"/proc/{pid}/task"):
            total += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
        return total / 1e9
    except (OSError, ValueError, IndexError):
        pass
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy_seconds() -> float:
    """CPU seconds all cores have spent busy since boot (/proc/stat: everything but idle and iowait)."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(f[:8]) - f[3] - f[4]) / CLK_TCK


def rss_mb(pid: int, key: str = "VmRSS") -> float:
    """Resident set size (VmRSS, or VmHWM for the peak) in MB."""
    try:
        for row in Path(f"/proc/{pid}/status").read_text().splitlines():
            if row.startswith(key + ":"):
                return int(row.split()[1]) / 1024
    except OSError:
        pass
    return 0.0
