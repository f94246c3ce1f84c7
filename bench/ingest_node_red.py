"""The `node-red` phase of bench/ingest.py: Node-RED 4.1.8 with node-red-contrib-influxdb's batch node as the peer.

The flow (bench/node-red-ingest/flows.json), as a Node-RED user would build this ingest: mqtt in (MQTT 5,
QoS 1, the ingest's shared subscription `$share/ingest/smartcity/v1/gw/+/readings`, logged in as `ingest`:
the deploy ACL grants the readings only to the service accounts) -> one function node that resolves SenML
(bn, bt, bu, relative t; v / vb), checks each record against the registry (a JSON file settings.js loads at
start: device known, metric of its kind, from its registered gateway, value type, unit, 7 days back / 5 min
ahead), folds the records into one point per device and time (the ingest's measurement, tags and fields,
integer microseconds) and batches them (10,000 points, 1 s max wait, 50 ms idle flush: the ingest's
defaults) -> "influxdb batch" (InfluxDB 1.x config, precision u). Its counters are on GET /stats.

The same publishers, broker setup, count poll and per-device count check as the ingest phases
(Bench.watch / Bench.finish), so lost = 0 means every reading reached the same series.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import httpx

from bench import ingest_support as s
from bench import node_red_support as nr
from bench.cpu_window import CpuWindow
from bench.progress import log
from core.kinds import KINDS, ValueType
from core.registry import Registry
from core.registry import load as load_registry
from deploy.mosquitto import start_mosquitto
from deploy.processes import free_port

ROOT = Path(__file__).resolve().parents[1]
DIR = ROOT / "bench" / "node-red-ingest"
PACKAGES = {"node-red": "4.1.8", "node-red-contrib-influxdb": "0.7.0"}
LABEL = "Node-RED 4.1.8 + influxdb batch"
BROKER_USER = "ingest"  # the deploy ACL (deploy/mosquitto.py SERVICE_GRANTS) lets only service accounts read readings


# The flow's batch settings (defaults in flows.json: the ingest's 10,000 lines, 1 s, 50 ms).
TUNABLES = ("BENCH_BATCH_POINTS", "BENCH_MAX_LATENCY_MS", "BENCH_IDLE_FLUSH_MS")



def registry_json(registry: Registry) -> dict[str, Any]:
    """The registry as the flow reads it: kinds (measurement, metrics with unit and type) and devices."""
    kinds = {d.kind for d in registry.devices.values()}
    return {"kinds": {k: {"measurement": KINDS[k].name,
                          "metrics": {m.name: {"unit": m.unit, "boolean": m.type is ValueType.BOOLEAN}
                                      for m in KINDS[k].metrics.values()}} for k in sorted(kinds)},
            "devices": {d.id: {"kind": d.kind, "gateway": d.gateway, "gemeente": d.gemeente, "wijk": d.wijk}
                        for d in registry.devices.values()}}


def expected_series(w: s.Workload) -> set[str]:
    """The series keys the ingest writes for the workload: measurement and sorted tags of every point."""
    return {ln.split(" ", 1)[0] for g in range(w.gateways) for ln in s.line_protocol(g, w)}


def series_mismatch(influx: s.Influx, w: s.Workload, db: str) -> dict[str, Any]:
    """{} if db holds exactly the ingest's series (measurement + tags) and float fields; else what differs."""
    found = {str(v[0]) for x in influx.statement("SHOW SERIES", db) for v in x.get("values", [])}
    want = expected_series(w)
    fields = {(x["name"], str(v[0]), str(v[1])) for x in influx.statement("SHOW FIELD KEYS", db)
              for v in x.get("values", [])}
    want_fields = {("street_light", f, "float") for f in s.FIELDS}
    out: dict[str, Any] = {}
    if found != want:
        out["series_missing"], out["series_extra"] = sorted(want - found)[:5], sorted(found - want)[:5]
    if fields != want_fields:
        out["fields"] = sorted(fields ^ want_fields)
    return out


def ensure(log: Any) -> dict[str, str]:
    """Install the pinned Node-RED and InfluxDB nodes into bench/node-red-ingest/node_modules if needed."""
    return nr.ensure_installed(DIR, PACKAGES, log)


def flow_env(*, broker_port: int, password: str, influx_url: str, database: str, registry_json_path: Path,
             stats_port: int) -> dict[str, str]:
    """The environment Node-RED runs in: every ${BENCH_...} that flows.json, flows_cred.json and settings.js read."""
    influx = httpx.URL(influx_url)
    # The batch settings may come from the caller's environment (an experiment); nothing else of BENCH_*.
    return {k: v for k, v in os.environ.items() if not k.startswith(("SMARTCITY_", "BENCH_")) or k in TUNABLES} | {
        "BENCH_MQTT_PORT": str(broker_port), "BENCH_MQTT_CLIENT_ID": f"bench-{database}",
        "BENCH_MQTT_USER": BROKER_USER, "BENCH_MQTT_PASSWORD": password,
        # The bench's influxd runs without authentication, as for the ingest phases: no account to give.
        "BENCH_INFLUX_HOST": influx.host, "BENCH_INFLUX_PORT": str(influx.port), "BENCH_INFLUX_DATABASE": database,
        "BENCH_INFLUX_USER": "", "BENCH_INFLUX_PASSWORD": "",
        "BENCH_NODE_RED_REGISTRY": str(registry_json_path), "BENCH_NODE_RED_PORT": str(stats_port)}


def probe_until_counted(bench: Any, broker_port: int, stats: nr.Stats, child: Any, timeout: float = 60) -> None:
    """Publish a pack of an unregistered device until the flow has counted one: its subscription is live.

    (The pack is refused as unknown_series, so it writes nothing that the count check would see.)
    """
    import paho.mqtt.client as paho  # noqa: PLC0415
    from paho.mqtt.enums import CallbackAPIVersion  # noqa: PLC0415

    gw = s.gateway_id(0)
    probe = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-probe-node-red", protocol=paho.MQTTv5)
    probe.username_pw_set(gw, bench.passwords[gw])
    probe.connect("127.0.0.1", broker_port)
    probe.loop_start()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not child.running():
                raise RuntimeError(f"Node-RED exited:\n{child.log_tail(40)}")
            pack = json.dumps([{"bn": "bench-probe/", "n": "power", "v": 1.0}])
            probe.publish(f"smartcity/v1/gw/{gw}/readings", pack, qos=1)
            time.sleep(0.5)
            if (stats.get() or {}).get("messages"):
                return
        raise RuntimeError(f"the Node-RED flow counted no probe after {timeout:.0f} s:\n{child.log_tail(40)}")
    finally:
        probe.disconnect()
        probe.loop_stop()


def phase(bench: Any) -> dict[str, Any]:
    """One phase: a fresh broker and database, Node-RED consuming the same publishers as the ingest phases."""
    name = "node_red"
    log(f"phase {name}: {bench.w.readings:,} readings from {bench.w.gateways} gateways, {LABEL}")
    broker = start_mosquitto(bench.state / name, bench.passwords)
    bench.stoppers.append(broker.stop)
    bench.db.statement(f'CREATE DATABASE "{name}"')
    reg = bench.state / "node-red-registry.json"
    reg.write_text(json.dumps(registry_json(load_registry(bench.registry))))
    port = free_port()
    env = flow_env(broker_port=broker.port, password=bench.passwords[BROKER_USER], influx_url=bench.influxd.url,
                   database=name, registry_json_path=reg, stats_port=port)
    child = nr.start_node_red(DIR, bench.state / name / "node-red", env, bench.state / name / "node-red.log")
    bench.stoppers.append(child.stop)
    stats = nr.Stats(port)
    try:
        stats.wait(child, 60)
        probe_until_counted(bench, broker.port, stats, child)
        pids = {"mosquitto": [broker.child.pid], "influxd": [bench.influxd.child.pid], "node_red": [child.pid]}
        with s.Publishers(bench.publisher_specs(broker.port)) as pubs:
            pubs.wait_ready(120)
            cpu0 = {k: sum(map(s.cpu_seconds, v)) for k, v in pids.items()}
            window = CpuWindow()
            t_seen, total = bench.watch(name, [child], pubs)
            cpu = {k: sum(map(s.cpu_seconds, v)) - cpu0[k] for k, v in pids.items()}
            window.stop()
            rss = s.max_rss_mb(child.pid)
            flow_stats = stats.get() or {}
            done = pubs.collect(30)
    finally:
        stats.close()
    t_first = min(d["t_first"] for d in done)
    cpu["publishers"] = sum(d["cpu"] for d in done)
    window.close(cpu)
    publish_rate = bench.w.readings / (max(d["t_last"] for d in done) - t_first)
    problems = [ln for ln in child.log_tail(200).splitlines() if "[error]" in ln or "Error" in ln]
    child.stop(timeout=15)
    broker.stop()
    for p in problems[:10]:
        log(f"  {p}")
    series = series_mismatch(bench.db, bench.w, name)
    if series:
        log(f"  series differ from the ingest's: {series}")
    extra = {"queryable_at_end": total, "ingest_max_rss_mb": rss,
             "unacked_publishes": sum(d["messages"] - d["acked"] for d in done), "flow_stats": flow_stats,
             "node_red_log_problems": problems[:50], "series_mismatch": series,
             "node_red_packages": nr.installed_versions(DIR, PACKAGES)}
    result: dict[str, Any] = bench.finish(name, LABEL, seconds=t_seen - t_first if t_seen else None,
                                          publish_rate=publish_rate, cpu=cpu, extra=extra)
    return result
