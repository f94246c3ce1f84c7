"""The API benchmark's city and its history: a generated registry and >= 10M Observations in InfluxDB.

The city: one gemeente (GM0626) of 10 wijken, each with 30 street lights, 3 rain gauges, 5 occupancy
counters and 2 traffic lights on 4 gateways (400 devices, 1,780 Datastreams), all public but one
classified light per wijk (so the privacy filter is on the measured path), plus one rain gauge,
``rg-long``, with one long series: a reading every ~26 s for a year (1.2M points per metric at full
scale), for paging a million rows deep into one Datastream.

The history ends now and spans --days (365): every other device reports every ``span / points`` with
a per-device phase (no artificial ties). Points are line protocol made with f-strings, posted in
10,000-line batches by two writer threads (InfluxDB parses while Python formats the next batch).
"""

from __future__ import annotations

import queue
import random
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

GEMEENTE = "GM0626"
WIJKEN = [f"WK0626{i:02d}" for i in range(1, 11)]
PER_WIJK = {"street_light": 30, "rain_gauge": 3, "occupancy": 5, "traffic_light": 2}
LONG = "rg-long"
BATCH = 10_000
WRITERS = 2


def device_id(kind: str, wijk: str, i: int) -> str:
    """Stable ids: ``sl-01-007`` is the 8th street light of the first wijk."""
    short = {"street_light": "sl", "rain_gauge": "rg", "occupancy": "oc", "traffic_light": "tl"}[kind]
    return f"{short}-{wijk[-2:]}-{i:03d}"


@dataclass(frozen=True, slots=True)
class Device:
    """What the loader needs of a device."""

    id: str
    kind: str
    wijk: str
    gateway: str
    public: bool


def devices() -> list[Device]:
    """The city's devices, the long rain gauge first."""
    out = [Device(LONG, "rain_gauge", WIJKEN[0], "gw-b-01", True)]
    for w, wijk in enumerate(WIJKEN):
        gateway = f"gw-b-{w % 4 + 1:02d}"
        for kind, n in PER_WIJK.items():
            for i in range(n):
                public = not (kind == "street_light" and i == 0)
                out.append(Device(device_id(kind, wijk, i), kind, wijk, gateway, public))
    return out


def registry_geojson(devs: list[Device]) -> dict[str, Any]:
    """The registry file (core/registry.py's GeoJSON) of the city."""
    lon, lat = 4.4467, 52.1279
    features: list[dict[str, Any]] = [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat + g * 0.001]},
         "properties": {"id": f"gw-b-{g:02d}", "role": "gateway", "name": f"bench gateway {g}", "gemeente": GEMEENTE}}
        for g in range(1, 5)]
    for n, d in enumerate(devs):
        props: dict[str, Any] = {
            "id": d.id, "role": "device", "kind": d.kind, "name": f"bench {d.kind} {d.id}", "gateway": d.gateway,
            "gemeente": GEMEENTE, "wijk": d.wijk, "buurt": f"BU{d.wijk[2:]}{n % 7:02d}", "link": "lora",
            "address": f"{0x06260000 + n + 1:08X}"}
        if not d.public:
            props["classification"] = "vertrouwelijk"
        features.append({"type": "Feature", "properties": props, "geometry": {
            "type": "Point", "coordinates": [lon + (n % 40) * 0.0004, lat + (n // 40) * 0.0004]}})
    return {"type": "FeatureCollection", "name": "API benchmark city", "cbs_map_year": 2024, "features": features}


def _fields(kind: str, i: int, rnd: float) -> str:
    """One point's fields; every metric of the kind (values vary, types as the ingest writes them)."""
    if kind == "street_light":
        dim = float((i * 7) % 101)
        return (f"dim_level={dim!r},power={dim * 0.4 + rnd!r},energy={i * 0.01!r},voltage={229.0 + rnd!r},"
                f"temperature={12.0 + (i % 30) * 0.5!r},lamp_failure={'true' if i % 997 == 0 else 'false'}")
    if kind == "rain_gauge":
        acc = float(i % 5) * 0.2
        return (f"rain_intensity={acc * 12!r},accumulation={acc!r},event_accumulation={acc * 3!r},"
                f"total_accumulation={i * 0.2!r}")
    if kind == "occupancy":
        return f"presence={'true' if i % 3 else 'false'},count={float(i % 17)!r}"
    return f"bike_priority={'true' if i % 4 == 0 else 'false'},cycle_time={60.0 + i % 30!r}"


METRICS = {"street_light": 6, "rain_gauge": 4, "occupancy": 2, "traffic_light": 2}


@dataclass(frozen=True, slots=True)
class Plan:
    """How many points each device gets over the history."""

    long_points: int
    points: int
    days: float
    end_us: int

    @property
    def start_us(self) -> int:
        """The history's first microsecond."""
        return self.end_us - int(self.days * 86_400e6)

    def observations(self, devs: list[Device]) -> int:
        """Observations (metric values) the plan writes."""
        return sum(METRICS[d.kind] * (self.long_points if d.id == LONG else self.points) for d in devs)

    def times(self, d: Device, n: int) -> Iterator[tuple[int, int]]:
        """(index, time µs) of device d's points: evenly spaced, phase from the id, the last before the end."""
        span = self.end_us - self.start_us
        step = span // n
        phase = random.Random(d.id).randrange(step)
        for i in range(n):
            yield i, self.start_us + i * step + phase

    def long_times(self) -> list[int]:
        """The long series' times in order (the benchmark computes depths from them)."""
        return [t for _, t in self.times(devs_long(), self.long_points)]


def devs_long() -> Device:
    """The long rain gauge."""
    return Device(LONG, "rain_gauge", WIJKEN[0], "gw-b-01", True)


def lines(plan: Plan, devs: list[Device]) -> Iterator[list[str]]:
    """Batches of line protocol: interleaved across devices in time (as the ingest writes them)."""
    rnd = random.Random(20261202)
    batch: list[str] = []
    for d in devs:
        n = plan.long_points if d.id == LONG else plan.points
        prefix = f"{d.kind},device={d.id},gateway={d.gateway},gemeente={GEMEENTE},wijk={d.wijk} "
        for i, t in plan.times(d, n):
            batch.append(f"{prefix}{_fields(d.kind, i, round(rnd.random(), 3))} {t}")
            if len(batch) >= BATCH:
                yield batch
                batch = []
    if batch:
        yield batch


def load(url: str, database: str, plan: Plan, devs: list[Device], max_seconds: float) -> dict[str, float]:
    """Write the plan's points with WRITERS threads; progress on stderr; stop (SystemExit) past max_seconds."""
    total_obs = plan.observations(devs)
    work: queue.Queue[bytes | None] = queue.Queue(maxsize=WRITERS * 2)
    errors: list[str] = []
    written = [0]
    lock = threading.Lock()

    def writer() -> None:
        with httpx.Client(base_url=url, timeout=120) as http:
            while (body := work.get()) is not None:
                resp = http.post("/write", params={"db": database, "precision": "u"}, content=body)
                if resp.status_code != 204:
                    errors.append(f"{resp.status_code} {resp.text[:200]}")
                with lock:
                    written[0] += body.count(b"\n") + 1

    threads = [threading.Thread(target=writer, daemon=True) for _ in range(WRITERS)]
    for th in threads:
        th.start()
    t0 = time.monotonic()
    last = t0
    try:
        for batch in lines(plan, devs):
            work.put("\n".join(batch).encode())
            if errors:
                raise SystemExit(f"InfluxDB refused a batch: {errors[0]}")
            now = time.monotonic()
            if now - t0 > max_seconds:
                raise SystemExit(f"loading took more than --max-load-seconds={max_seconds:g}")
            if now - last > 2:
                last = now
                print(f"  loaded {written[0]:,} points ({now - t0:.0f} s)", file=sys.stderr, flush=True)
    finally:
        for _ in threads:
            work.put(None)
        for th in threads:
            th.join()
    if errors:
        raise SystemExit(f"InfluxDB refused a batch: {errors[0]}")
    seconds = time.monotonic() - t0
    return {"points": float(written[0]), "observations": float(total_obs), "seconds": seconds,
            "observations_per_s": total_obs / seconds}
