"""Helpers of bench/ingest.py: the synthetic city and its workload, the publisher processes, /proc and InfluxDB.

The workload is a pure function of (gateway index, Workload), so each publisher process encodes its own
SenML packs and the bare writer formats the same points as line protocol, without shipping data between
processes.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

# (metric, unit): the numeric metrics of a street light (core/kinds.py), in the order the ingest writes them.
METRICS = (("dim_level", "%"), ("power", "W"), ("energy", "kWh"), ("voltage", "V"), ("temperature", "Cel"))
FIELDS = tuple(m for m, _ in METRICS)
POINTS_PER_PACK = 20  # x 5 metrics = 100 SenML records per pack
SPACING_US = 1000  # 1 ms between a device's points: distinct at ms precision too (today's ingest writes ms)


@dataclass(frozen=True)
class Workload:
    """What every gateway sends: packs_per_gateway packs of 100 records, from t0_us on."""

    gateways: int
    lights: int
    packs_per_gateway: int
    t0_us: int

    @property
    def readings(self) -> int:
        return self.gateways * self.packs_per_gateway * POINTS_PER_PACK * len(METRICS)


def gateway_id(g: int) -> str:
    return f"gw-bench-{g:02d}"


def device_id(g: int, i: int) -> str:
    return f"bench-sl-{g:02d}-{i:03d}"


def gemeente_wijk(g: int) -> tuple[str, str]:
    gm = "GM0626" if g % 2 == 0 else "GM0629"
    return gm, f"WK{gm[2:]}{g // 2 % 100:02d}"


def registry_geojson(w: Workload) -> dict[str, Any]:
    """N gateways x M street lights in the GeoJSON format of core/registry.py."""
    features: list[dict[str, Any]] = []

    def add(lon: float, lat: float, props: dict[str, Any]) -> None:
        features.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
                         "properties": props})

    for g in range(w.gateways):
        gm, wk = gemeente_wijk(g)
        add(4.44 + g * 0.001, 52.12, {"id": gateway_id(g), "role": "gateway", "gemeente": gm})
        for i in range(w.lights):
            add(4.44 + g * 0.001, 52.12 + i * 0.0001,
                {"id": device_id(g, i), "role": "device", "kind": "street_light", "gateway": gateway_id(g),
                 "gemeente": gm, "wijk": wk, "link": "lora", "address": f"{i + 1:08X}"})
    return {"type": "FeatureCollection", "name": "ingest benchmark city", "cbs_map_year": 2024,
            "features": features}


def points(g: int, w: Workload) -> Iterator[list[tuple[int, int, tuple[float, float, float, float, float]]]]:
    """Per pack: (device index, timestamp in us, values) for each point; (device, ts) unique."""
    for k in range(w.packs_per_gateway):
        pack = []
        for p in range(k * POINTS_PER_PACK, (k + 1) * POINTS_PER_PACK):
            values = (float(p % 101), round(5 + p % 997 * 0.1, 1), round(p * 0.001, 3), 230.0 + p % 7 * 0.5,
                      20.0 + p % 13 * 0.25)
            pack.append((p % w.lights, w.t0_us + p // w.lights * SPACING_US, values))
        yield pack


def senml_packs(g: int, w: Workload) -> list[bytes]:
    """The gateway's packs: bn per device, bt and seq on the first record, t relative seconds."""
    out = []
    for seq, pack in enumerate(points(g, w)):
        bt_us = min(ts for _, ts, _ in pack)
        records: list[dict[str, Any]] = []
        for dev, ts, values in pack:
            for j, ((metric, unit), value) in enumerate(zip(METRICS, values, strict=True)):
                rec: dict[str, Any] = {"n": metric, "u": unit, "v": value, "t": (ts - bt_us) / 1e6}
                if j == 0:
                    rec["bn"] = f"{device_id(g, dev)}/"
                records.append(rec)
        records[0] |= {"bt": bt_us / 1e6, "seq": seq}
        out.append(orjson.dumps(records))
    return out


def line_protocol(g: int, w: Workload) -> list[str]:
    """The lines the ingest writes for the gateway's packs (tags sorted, one line per device and time)."""
    gm, wk = gemeente_wijk(g)
    lines = []
    for pack in points(g, w):
        for dev, ts, values in pack:
            fields = ",".join(f"{f}={v!r}" for f, v in zip(FIELDS, values, strict=True))
            lines.append(f"street_light,device={device_id(g, dev)},gateway={gateway_id(g)},gemeente={gm},"
                         f"wijk={wk} {fields} {ts}")
    return lines


def expected_counts(w: Workload) -> dict[str, int]:
    """Points per device (each field has this many values)."""
    counts: dict[str, int] = {}
    for g in range(w.gateways):
        for pack in points(g, w):
            for dev, _, _ in pack:
                counts[device_id(g, dev)] = counts.get(device_id(g, dev), 0) + 1
    return counts


@dataclass(frozen=True)
class PublisherSpec:
    """One publisher process: which gateways it plays and where the broker is."""

    index: int
    gateways: tuple[int, ...]
    passwords: tuple[str, ...]
    host: str
    port: int
    workload: Workload
    inflight: int
    timeout: float


def publisher(spec: PublisherSpec, start: Any, results: Any) -> None:
    """Process body: encode, connect one MQTT client per gateway, wait for start, publish all at QoS 1."""
    import paho.mqtt.client as paho  # noqa: PLC0415 (imported in the child only)
    from paho.mqtt.enums import CallbackAPIVersion  # noqa: PLC0415

    try:
        payloads = [senml_packs(g, spec.workload) for g in spec.gateways]
        total = sum(len(p) for p in payloads)
        acked = [0]
        cond = threading.Condition()
        connected = [threading.Event() for _ in spec.gateways]
        clients = []

        def on_publish(*_: Any) -> None:
            with cond:
                acked[0] += 1
                if acked[0] >= total:
                    cond.notify_all()

        for i, (g, password) in enumerate(zip(spec.gateways, spec.passwords, strict=True)):
            c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{gateway_id(g)}",
                            protocol=paho.MQTTv5)
            c.username_pw_set(gateway_id(g), password)
            c.max_inflight_messages_set(spec.inflight)
            c.max_queued_messages_set(0)
            c.on_publish = on_publish
            c.on_connect = _on_connect(connected[i])
            c.connect(spec.host, spec.port, keepalive=60)
            c.loop_start()
            clients.append(c)
        if not all(ev.wait(spec.timeout) for ev in connected):
            raise RuntimeError("a gateway client could not connect")
        results.put(("ready", spec.index, None))
        if not start.wait(spec.timeout):
            raise RuntimeError("no start signal")
        cpu0, t_first = time.process_time(), time.monotonic()
        topics = [f"smartcity/v1/gw/{gateway_id(g)}/readings" for g in spec.gateways]
        for k in range(max(len(p) for p in payloads)):  # round robin: gateways progress alike
            for c, topic, packs in zip(clients, topics, payloads, strict=True):
                if k < len(packs):
                    c.publish(topic, packs[k], qos=1)
        deadline = time.monotonic() + spec.timeout
        with cond:
            while acked[0] < total and time.monotonic() < deadline:
                cond.wait(0.5)
        t_last = time.monotonic()
        results.put(("done", spec.index, {"messages": total, "acked": acked[0], "t_first": t_first,
                                          "t_last": t_last, "cpu": time.process_time() - cpu0}))
        for c in clients:
            c.disconnect()
            c.loop_stop()
    except Exception as exc:
        results.put(("error", spec.index, f"{type(exc).__name__}: {exc}"))


def _on_connect(event: threading.Event) -> Any:
    def on_connect(_client: Any, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if not reason.is_failure:
            event.set()

    return on_connect


class Publishers:
    """The publisher processes of one phase; terminated on exit if they have not finished."""

    def __init__(self, specs: list[PublisherSpec]) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.start, self.results = ctx.Event(), ctx.Queue()
        self.done: dict[int, dict[str, Any]] = {}
        self.n = len(specs)
        self.procs = [ctx.Process(target=publisher, args=(spec, self.start, self.results), daemon=True)
                      for spec in specs]
        for proc in self.procs:
            proc.start()

    def __enter__(self) -> Publishers:
        return self

    def __exit__(self, *_: object) -> None:
        for proc in self.procs:
            proc.join(5)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)

    def _take(self, timeout: float | None) -> str:
        try:
            kind, idx, info = self.results.get(timeout=timeout) if timeout else self.results.get_nowait()
        except queue.Empty:
            return ""
        if kind == "error":
            raise RuntimeError(f"publisher {idx}: {info}")
        if kind == "done":
            self.done[idx] = info
        return str(kind)

    def wait_ready(self, timeout: float) -> None:
        deadline, ready = time.monotonic() + timeout, 0
        while ready < self.n and time.monotonic() < deadline:
            ready += self._take(max(0.1, deadline - time.monotonic())) == "ready"
        if ready < self.n:
            raise RuntimeError(f"only {ready} of {self.n} publisher processes ready after {timeout} s")

    def go(self) -> float:
        self.start.set()
        return time.monotonic()

    @property
    def finished(self) -> bool:
        return len(self.done) == self.n

    def poll(self) -> bool:
        """Take the reports that arrived; True when the last one just came in."""
        before = self.finished
        while self._take(None):
            pass
        return self.finished and not before

    def collect(self, timeout: float) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while not self.finished and time.monotonic() < deadline:
            self._take(max(0.1, deadline - time.monotonic()))
        if not self.finished:
            raise RuntimeError(f"only {len(self.done)} of {self.n} publishers reported after {timeout} s")
        return list(self.done.values())


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def max_rss_mb(pid: int) -> float:
    """Peak resident set size (VmHWM) in MB."""
    try:
        for row in Path(f"/proc/{pid}/status").read_text().splitlines():
            if row.startswith("VmHWM:"):
                return int(row.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Influx:
    """The few InfluxQL calls the benchmark needs, over one keep-alive connection."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=30)

    def statement(self, q: str, db: str | None = None) -> list[dict[str, Any]]:
        params = {"q": q, **({"db": db} if db else {})}
        resp = self.http.post("/query", params=params)
        resp.raise_for_status()
        results: list[dict[str, Any]] = resp.json().get("results", [])
        errors = [r["error"] for r in results if "error" in r]
        if errors:
            raise RuntimeError(f"InfluxQL {q!r}: {errors}")
        return [s for r in results for s in r.get("series", [])]

    def total(self, db: str, fields: tuple[str, ...] = FIELDS) -> int:
        """Readings queryable now: the sum of the field counts (~150 ms per 1M readings for all five)."""
        what = ",".join(f"count({f})" for f in fields)
        series = self.statement(f"SELECT {what} FROM street_light", db)
        return sum(int(v) for v in series[0]["values"][0][1:]) if series else 0

    def points_written(self, db: str) -> int | None:
        """Points InfluxDB 1.x acknowledged into db's shards, of any measurement (SHOW STATS: ~1 ms)."""
        try:
            shards = [x for x in self.statement("SHOW STATS FOR 'shard'") if x["tags"].get("database") == db]
        except (httpx.HTTPError, RuntimeError):
            return None
        return sum(int(dict(zip(x["columns"], x["values"][0], strict=True)).get("writePointsOk", 0))
                   for x in shards)

    def lost(self, db: str, expected: dict[str, int]) -> tuple[int, int]:
        """(readings missing, readings beyond those sent), per device and field."""
        fields = ",".join(f'count({f}) AS "{f}"' for f in FIELDS)
        found = {s["tags"]["device"]: s["values"][0][1:]
                 for s in self.statement(f"SELECT {fields} FROM street_light GROUP BY device", db)}
        missing = extra = 0
        for device, n in expected.items():
            for got in found.get(device, [0] * len(FIELDS)):
                missing += max(0, n - int(got or 0))
                extra += max(0, int(got or 0) - n)
        extra += sum(int(v or 0) for d, vs in found.items() if d not in expected for v in vs)
        return missing, extra

    def close(self) -> None:
        self.http.close()
