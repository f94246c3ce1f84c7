"""The node-red phase of bench/ingest.py without Node-RED: its flow files, pins and the checks that judge it.

CI has no node/npm (scripts/bootstrap installs neither; no test runs the rules bench's Node-RED either), so
these tests check what decides whether the peer is comparable: it subscribes as the ingest does and writes at
its precision, every ${...} the flow reads is set by the bench and no secret is in a file, the versions are
pinned, the registry the flow gets yields the ingest's series, and the bench's series and count checks catch
a flow that writes other series or loses a point (against a real influxd).
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench import ingest_node_red as nr
from bench import ingest_support as s
from bench.cpu_window import CpuWindow
from bench.ingest import report
from core.kinds import KINDS
from core.registry import load
from core.topics import Channel, subscription
from ingest.series_table import SeriesTable

FLOW_DIR = Path(nr.__file__).resolve().parent / "node-red-ingest"


def nodes() -> dict[str, dict]:
    return {n["type"]: n for n in json.loads((FLOW_DIR / "flows.json").read_text())}


def test_the_flow_subscribes_as_the_ingest_does_and_writes_at_its_precision():
    by_type = nodes()
    mqtt_in, broker = by_type["mqtt in"], by_type["mqtt-broker"]
    assert mqtt_in["topic"] == subscription(Channel.READINGS, "ingest")
    assert mqtt_in["qos"] == "1" and broker["protocolVersion"] == "5" and mqtt_in["broker"] == broker["id"]
    batch, config = by_type["influxdb batch"], by_type["influxdb"]
    funcs = {n["id"]: n for n in json.loads((FLOW_DIR / "flows.json").read_text()) if n["type"] == "function"}
    (senml_id,) = mqtt_in["wires"][0]
    senml = funcs[senml_id]  # mqtt in -> the SenML function -> influxdb batch
    assert senml["wires"] == [[batch["id"]]]
    assert "268435456" in senml["func"] and "s.gw !== gw" in senml["func"]  # relative t; gateway check
    assert batch["precision"] == "u" and batch["influxdb"] == config["id"]  # ingest/influx_writer.py writes "u"
    assert config["influxdbVersion"] == "1.x" and config["database"] == "${BENCH_INFLUX_DATABASE}"


def test_every_reference_the_flow_reads_is_set_by_the_bench_and_no_secret_is_in_a_file(tmp_path):
    text = (FLOW_DIR / "flows.json").read_text() + (FLOW_DIR / "flows_cred.json").read_text()
    wanted = set(re.findall(r"\$\{(\w+)\}", text)) | set(
        re.findall(r"process\.env\.(\w+)", (FLOW_DIR / "settings.js").read_text()))
    wanted |= set(re.findall(r'env\.get\("(\w+)"\)', text)) - set(nr.TUNABLES)  # these have defaults
    env = nr.flow_env(broker_port=1883, password="pw", influx_url="http://127.0.0.1:8086", database="node_red",
                      registry_json_path=tmp_path / "r.json", stats_port=1880)
    assert wanted and wanted <= set(env), wanted - set(env)
    assert env["BENCH_INFLUX_HOST"] == "127.0.0.1" and env["BENCH_INFLUX_PORT"] == "8086"
    creds = json.loads((FLOW_DIR / "flows_cred.json").read_text())
    assert all(re.fullmatch(r"\$\{\w+\}", v) for c in creds.values() for v in c.values()), creds
    settings = (FLOW_DIR / "settings.js").read_text()
    assert "httpAdminRoot: false" in settings and 'uiHost: "127.0.0.1"' in settings


def test_node_red_and_the_influxdb_nodes_are_pinned_in_package_json_and_the_lock():
    deps = json.loads((FLOW_DIR / "package.json").read_text())["dependencies"]
    assert deps == nr.PACKAGES
    lock = json.loads((FLOW_DIR / "package-lock.json").read_text())["packages"]
    assert {name: lock[f"node_modules/{name}"]["version"] for name in deps} == nr.PACKAGES


def workload_registry(tmp_path):
    w = s.Workload(gateways=2, lights=5, packs_per_gateway=2, t0_us=1_700_000_000_000_000)
    path = tmp_path / "registry.geojson"
    path.write_text(json.dumps(s.registry_geojson(w)))
    return w, load(path)


def test_the_registry_the_flow_gets_yields_the_ingests_series_and_units(tmp_path):
    _, registry = workload_registry(tmp_path)
    reg = nr.registry_json(registry)
    table = SeriesTable(registry)
    for name, spec in table.specs.items():
        device, metric = name.split("/")
        d = reg["devices"][device]
        kind = reg["kinds"][d["kind"]]
        # The flow's tags (device, gateway, gemeente, wijk where set) in InfluxDB's sorted order.
        tags = {"device": device, "gateway": d["gateway"], "gemeente": d["gemeente"], "wijk": d["wijk"]}
        prefix = kind["measurement"] + "".join(f",{k}={v}" for k, v in sorted(tags.items()) if v) + " "
        assert prefix == spec.prefix and d["gateway"] == spec.gateway
        assert kind["metrics"][metric] == {"unit": spec.unit, "boolean": spec.boolean}
    assert set(reg["kinds"]["street_light"]["metrics"]) == set(KINDS["street_light"].metrics)


@pytest.mark.integration
def test_the_bench_checks_catch_other_series_and_a_lost_point(tmp_path, influxd):
    w, _ = workload_registry(tmp_path)
    db = s.Influx(influxd.url)
    lines = [ln for g in range(w.gateways) for ln in s.line_protocol(g, w)]
    try:
        db.statement('CREATE DATABASE "same"')
        db.http.post("/write", params={"db": "same", "precision": "u"}, content="\n".join(lines)).raise_for_status()
        assert nr.series_mismatch(db, w, "same") == {}
        assert db.lost("same", s.expected_counts(w)) == (0, 0)

        # A flow that drops the wijk tag of one gateway's devices and loses one point.
        wrong = [re.sub(r",wijk=\w+", "", ln) if "gw-bench-00" in ln else ln for ln in lines[1:]]
        db.statement('CREATE DATABASE "wrong"')
        db.http.post("/write", params={"db": "wrong", "precision": "u"}, content="\n".join(wrong)).raise_for_status()
        got = nr.series_mismatch(db, w, "wrong")
        assert got["series_missing"] and all("gw-bench-00" in k for k in got["series_extra"]), got
        assert db.lost("wrong", s.expected_counts(w)) == (len(s.FIELDS), 0)
    finally:
        db.close()


def phase_row(phase, label, seconds, cpu, **extra):
    return {"phase": phase, "label": label, "readings": 1_000_000, "seconds": seconds, "rate": 1_000_000 / seconds,
            "publish_rate": None, "lost": 0, "surplus": 0, "cpu": cpu, **extra}


def test_the_report_puts_node_red_beside_the_ceiling_and_ours():
    rows = [phase_row("bare_2c", "bare writer, 2 connections", 0.5, {"writer": 0.1, "influxd": 0.8}),
            phase_row("paho", "bare paho subscriber (ceiling)", 1.0, {"paho_sub": 0.7, "influxd": 0.0}),
            phase_row("ingest_1w", "ours, 1 ingest worker", 2.0, {"ingest": 2.0, "influxd": 1.0}),
            phase_row("node_red", nr.LABEL, 5.0, {"node_red": 4.0, "influxd": 1.0, "others": 3.5},
                      ingest_max_rss_mb=300)]
    out = "\n".join(report(rows))
    assert f"| {nr.LABEL} | 1,000,000 | 5.00 | 200,000 | 10% | 20% | 0 |" in out
    assert "ours, 1 ingest worker: 2.50x readings/s, 2.00x per consumer CPU-second" in out
    assert f"| {nr.LABEL} | - | 4.0 | 0.0 | 1.0 | 0.0 | 3.5 | 300 |" in out


def test_others_is_the_cpu_of_processes_the_phase_does_not_track():
    window = CpuWindow()
    spin = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.5: pass\n"
    subprocess.run([sys.executable, "-c", spin], check=True, timeout=60)
    window.stop()
    untracked, tracked = {"influxd": 0.0}, {"influxd": 0.0, "spinner": 0.5}
    window.close(untracked)
    window.close(tracked)
    assert untracked["others"] >= 0.4, untracked  # the spinner's 0.5 s, less clock-tick rounding
    assert abs(untracked["others"] - tracked["others"] - 0.5) < 1e-9 or tracked["others"] == 0.0
