"""The Voorschoten and Wassenaar city: a registry of about 6,000 street lights over both gemeenten's wijken.

Per wijk: its street lights (about 110 per gateway), a rain gauge (RG-15 on a serial port of the wijk's
first gateway), traffic lights with a bike-priority mode at its cycle crossings, occupancy sensors (one
per 20 lights) and, in the two village centres, parking spots. Every fourth gateway of the city serves
LoRaWAN devices through a network server (ChirpStack); the others have a LoRa modem (RN2483 / RAK3172)
on their serial port. About 60 gateways in all.

The wijk names are neighbourhoods of both villages and their positions are near the real ones, but the
codes follow CBS's scheme (WK + gemeente + two digits) without having been checked against the CBS map
of the year (cbs_map_year): a deployment writes its registry from the municipality's asset register
and the CBS file instead (core/registry.py documents the format). Deterministic: the same scale gives
the same registry, byte for byte.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scenario.script import Script

LIGHTS_PER_GATEWAY = 110
LIGHTS_PER_OCCUPANCY_SENSOR = 20
LORAWAN_EVERY = 4  # every fourth gateway of the city (counted over all wijken) is a network-server one
SEED = 626_629


@dataclass(frozen=True, slots=True)
class Wijk:
    """A wijk of the city: code, name, centre (lon, lat) and its street lights at full scale."""

    code: str
    name: str
    lon: float
    lat: float
    lights: int
    parking: int = 0

    @property
    def gemeente(self) -> str:
        return "GM" + self.code[2:6]


WIJKEN = (
    Wijk("WK062600", "Centrum", 4.4467, 52.1279, 420, parking=12),
    Wijk("WK062601", "Noord-Hofland", 4.4330, 52.1370, 520),
    Wijk("WK062602", "Starrenburg", 4.4400, 52.1330, 360),
    Wijk("WK062603", "Krimwijk", 4.4530, 52.1220, 380),
    Wijk("WK062604", "Bijdorp", 4.4590, 52.1300, 300),
    Wijk("WK062605", "Adegeest", 4.4240, 52.1320, 340),
    Wijk("WK062606", "Ter Wadding", 4.4390, 52.1195, 260),
    Wijk("WK062607", "Buitengebied Voorschoten", 4.4720, 52.1150, 220),
    Wijk("WK062900", "Dorp", 4.4010, 52.1450, 440, parking=12),
    Wijk("WK062901", "Oostdorp", 4.4130, 52.1420, 420),
    Wijk("WK062902", "De Kieviet", 4.3850, 52.1330, 480),
    Wijk("WK062903", "Rijksdorp", 4.3900, 52.1505, 400),
    Wijk("WK062904", "Kerkehout", 4.3780, 52.1390, 380),
    Wijk("WK062905", "Wassenaarse Slag", 4.3650, 52.1650, 320),
    Wijk("WK062906", "Maaldrift", 4.4300, 52.1500, 200),
    Wijk("WK062907", "Wassenaar-Zuid", 4.3700, 52.1300, 560),
)
PREFIX = {"GM0626": "vs", "GM0629": "ws"}
CODES = {"street_light": "sl", "occupancy": "oc", "traffic_light": "tl", "parking_spot": "ps", "rain_gauge": "rg"}
NAMES = {"GM0626": "Voorschoten", "GM0629": "Wassenaar"}


def wijk_names() -> dict[str, str]:
    """Wijk code -> name, for the report's tables."""
    return {w.code: w.name for w in WIJKEN}


class _Ids:
    """Device numbers per gemeente and kind, LoRa addresses and DevEUIs unique in the city."""

    def __init__(self) -> None:
        self.numbers: dict[tuple[str, str], int] = {}
        self.addresses: dict[str, int] = {}

    def device(self, gemeente: str, kind: str) -> str:
        n = self.numbers[(gemeente, kind)] = self.numbers.get((gemeente, kind), 0) + 1
        return f"{PREFIX[gemeente]}-{kind}-{n:04d}"

    def address(self, gemeente: str) -> str:
        n = self.addresses[gemeente] = self.addresses.get(gemeente, 0) + 1
        return f"{gemeente[2:]}{n:04X}"  # 8 hex digits, the gemeente's number first

    def dev_eui(self, gemeente: str) -> str:
        # The simulated radio addresses a LoRaWAN node by its DevEUI's last 8 digits: keep them unique too.
        return "70B3D57E" + self.address(gemeente)


def _feature(lon: float, lat: float, properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [round(lon, 6), round(lat, 6)]},
            "properties": properties}


def _near(rng: random.Random, w: Wijk, metres: float = 450.0) -> tuple[float, float]:
    r, a = metres * math.sqrt(rng.random()), rng.uniform(0, 2 * math.pi)
    return (w.lon + r * math.cos(a) / (111_320 * math.cos(math.radians(w.lat))), w.lat + r * math.sin(a) / 110_540)


class _WijkDevices:
    """Adds the devices of one wijk to the features, on its gateways."""

    def __init__(self, wijk: Wijk, lorawan: set[str], rng: random.Random, ids: _Ids,
                 features: list[dict[str, Any]]) -> None:
        self.wijk, self.lorawan, self.rng, self.ids, self.features = wijk, lorawan, rng, ids, features

    def add(self, kind: str, gateway: str, name: str, port: str | None = None) -> None:
        w = self.wijk
        props: dict[str, Any] = {"id": self.ids.device(w.gemeente, CODES[kind]), "role": "device", "kind": kind,
                                 "name": name, "gateway": gateway, "gemeente": w.gemeente, "wijk": w.code,
                                 "buurt": f"BU{w.code[2:]}00"}
        if port is not None:
            props |= {"link": "serial", "port": port}
        elif gateway in self.lorawan:
            props |= {"link": "lorawan", "dev_eui": self.ids.dev_eui(w.gemeente)}
        else:
            props |= {"link": "lora", "address": self.ids.address(w.gemeente)}
        self.features.append(_feature(*_near(self.rng, w), props))


def city_features(scale: float = 1.0) -> list[dict[str, Any]]:
    """The registry's features: per wijk its gateways, then its devices, at scale (1.0 = about 6,000 lights)."""
    if not 0 < scale <= 1:
        raise ValueError(f"scale must be in (0, 1]: {scale!r}")
    rng, ids = random.Random(SEED), _Ids()
    features: list[dict[str, Any]] = []
    numbered = 0
    for w in WIJKEN:
        lights = max(4, round(w.lights * scale))
        count = math.ceil(lights / LIGHTS_PER_GATEWAY)
        gateways = [f"gw-{PREFIX[w.gemeente]}-{w.code[-2:]}{k + 1}" for k in range(count)]
        lorawan = {g for k, g in enumerate(gateways, numbered) if k % LORAWAN_EVERY == LORAWAN_EVERY - 1}
        numbered += count
        for k, g in enumerate(gateways):
            features.append(_feature(*_near(rng, w, 300), {
                "id": g, "role": "gateway", "gemeente": w.gemeente,
                "name": f"{NAMES[w.gemeente]} {w.name} kast {k + 1}" + (" (LoRaWAN)" if g in lorawan else "")}))
        add = _WijkDevices(w, lorawan, rng, ids, features).add
        add("rain_gauge", gateways[0], f"Regenmeter {w.name}", port="rg15")
        for i in range(lights):
            add("street_light", gateways[i * count // lights], f"Lichtmast {w.name} {i + 1}")
        for i in range(max(1, lights // LIGHTS_PER_OCCUPANCY_SENSOR)):
            add("occupancy", gateways[i % count], f"Aanwezigheidssensor {w.name} {i + 1}")
        for i in range(2 + lights // 200):
            add("traffic_light", gateways[i % count], f"Verkeerslicht {w.name} fietsoversteek {i + 1}")
        for i in range(round(w.parking * scale)):
            add("parking_spot", gateways[0], f"Parkeerplaats {w.name} {i + 1}")
    return features


def write_registry(path: Path, scale: float = 1.0) -> Path:
    """Write the city's registry (core.registry GeoJSON) to path; returns path."""
    doc = {"type": "FeatureCollection", "name": "Voorschoten en Wassenaar (simulated city)",
           "note": ("Simulated: gemeente codes are CBS codes; wijk names are neighbourhoods of both villages, "
                    "positions approximate, wijk codes not checked against the CBS map (scenario/city.py)."),
           "cbs_map_year": 2024, "wijk_names": wijk_names(), "features": city_features(scale)}
    path.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def city_script(features: list[dict[str, Any]]) -> Script:
    """The day of the city: what scenario/day.py injects (chosen from the registry so that any scale works)."""
    devices = [f["properties"] for f in features if f["properties"]["role"] == "device"]

    def first(kind: str, wijk: str, *, skip: int = 0) -> str:
        return str([d["id"] for d in devices if d["kind"] == kind and d["wijk"] == wijk][skip])

    gauges = {d["wijk"]: d["id"] for d in devices if d["kind"] == "rain_gauge"}
    voorschoten = tuple(g for w, g in sorted(gauges.items()) if w.startswith("WK0626"))
    wassenaar_west = tuple(gauges[w] for w in ("WK062902", "WK062904", "WK062905", "WK062907"))
    # A gateway of Wassenaar-Zuid that has no rain gauge (its wijk keeps its rain data) loses its power
    # for an hour in the night; with one gateway in the wijk (small scales) that is the first.
    zuid = sorted({d["gateway"] for d in devices if d["wijk"] == "WK062907"})
    silent_gateway = zuid[-1]
    lamps = (("WK062601", (19, 30)), ("WK062900", (21, 0)), ("WK062603", (22, 45)))
    return Script(
        showers=((voorschoten, (7, 40), (8, 30)), (wassenaar_west, (17, 10), (18, 20))),
        people=((18, 0), (23, 0)),
        failed_lamps=tuple((first("street_light", w, skip=1), hm) for w, hm in lamps),
        silent_devices=((first("occupancy", "WK062602"), (10, 0), (11, 0)),),
        silent_gateways=((silent_gateway, (2, 0), (3, 0)),),
        # The operator on night duty acknowledges the lamp failures raised by 22:00 (not the third) and,
        # in the morning, the silent gateway's alarms (cleared by then: acknowledged after clearing).
        acknowledgements=(("lamp-failure", (22, 0)), ("device-silent", (2, 50))),
        bad_messages=(((4, 17), zuid[0], b'[{"bn":"ws-sl-9999/","n":"dim_level","u":"%","v":20.0,"bt":{t}}]'),
                      ((11, 42), zuid[0], b"\x00\x01 not a pack")))
