"""End-to-end ingest benchmark: gateways -> mosquitto -> `smartcity ingest` -> InfluxDB, vs a bare writer.

All phases run in one process against one private influxd, each into a fresh database:

- bare writer (1 and 2 connections): the very points the ingest writes, pre-formatted as line protocol,
  POSTed to /write?precision=u in 10,000-line batches over keep-alive httpx clients;
- ours (1 and 2 ingest workers): N simulated gateways, each its own MQTT account, spread over several
  publisher processes, publish pre-encoded SenML packs of 100 records at QoS 1 to a fresh private
  mosquitto as fast as it acknowledges them; `smartcity ingest` subprocesses write them to InfluxDB;
- bare paho subscriber (`paho`): the same publishers and broker, consumed by bench/ingest_paho_sub.py, a
  minimal paho-mqtt client that only parses, counts and acknowledges each pack: the ceiling of a pure-Python
  MQTT consumer on this stream (it writes nothing; its "lost" is readings sent but not counted);
- Node-RED (`node-red`, the peer): the same publishers and broker, consumed by Node-RED 4.1.8 with
  node-red-contrib-influxdb's batch node (bench/ingest_node_red.py, bench/node-red-ingest/), which writes the
  same points to its own database; installed with `npm ci` on first run.

A reading is one SenML record (one field value). "Until queryable" is the wall time from the first
publish (first POST) until InfluxDB counts every reading (for `paho`: until the subscriber has counted
every record); then each (device, field) count is compared with what was sent. Ratios are against the
better bare writer of the same run (performance.md: one worker >= 60 %, two >= 85 %, zero lost), and for
the ingest phases also against the paho ceiling.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # deploy/ and bench/ are not in the editable install's package map

from bench import ingest_node_red  # noqa: E402
from bench import ingest_support as s  # noqa: E402
from bench.cpu_window import CpuWindow  # noqa: E402
from bench.progress import log, stop_all  # noqa: E402
from deploy.influxdb import start_influxd  # noqa: E402
from deploy.mosquitto import start_mosquitto  # noqa: E402
from deploy.processes import free_port, new_password, spawn  # noqa: E402


class Bench:
    """The servers, the workload and the phases; close() stops every process it started."""

    def __init__(self, args: argparse.Namespace, state: Path) -> None:
        self.args, self.state, self.stoppers = args, state, []
        # Before any server starts: a failed npm ci then leaves nothing running.
        self.node_red = ingest_node_red.ensure(log) if "node-red" in args.phases.split(",") else None
        self.query_seconds: list[float] = []
        packs = -(-args.readings // (100 * args.gateways))  # ceil
        t0_us = (int(time.time()) - 1800) * 1_000_000  # half an hour ago, on a whole second
        self.w = s.Workload(args.gateways, args.lights, packs, t0_us)
        self.expected = s.expected_counts(self.w)
        self.registry = state / "registry.geojson"
        self.registry.write_text(json.dumps(s.registry_geojson(self.w)))
        self.passwords = {s.gateway_id(g): new_password() for g in range(args.gateways)} | {"ingest": new_password()}
        # The ingest's code comes from --ingest-dir alone: PYTHONSAFEPATH keeps the cwd off its sys.path.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SMARTCITY_")} | {
            "PYTHONSAFEPATH": "1", "PYTHONPATH": str(args.ingest_dir.resolve())}
        help_text = subprocess.run([sys.executable, "-m", "smartcity", "ingest", "--help"], env=self.env,
                                   timeout=60, capture_output=True, text=True, check=True).stdout
        if "unavailable on this install" in help_text:
            raise SystemExit(f"`smartcity ingest` cannot start from {args.ingest_dir}:\n{help_text}")
        self.flags = {f for f in ("--worker", "--state-dir", "--metrics-port", "--client-id") if f in help_text}
        log(f"ingest CLI flags present: {sorted(self.flags)}")
        self.influxd = start_influxd(state)
        self.stoppers.append(self.influxd.stop)
        self.db = s.Influx(self.influxd.url)
        self.influx_version = httpx.get(f"{self.influxd.url}/ping").headers.get("X-Influxdb-Version", "?")


    def close(self) -> None:
        stop_all(self.stoppers)

    def bodies(self) -> list[bytes]:
        """The line protocol, gateways interleaved pack by pack as they publish, in batches."""
        per_gw = [s.line_protocol(g, self.w) for g in range(self.w.gateways)]
        n = s.POINTS_PER_PACK
        lines = [ln for k in range(self.w.packs_per_gateway) for gw in per_gw for ln in gw[k * n:(k + 1) * n]]
        b = self.args.batch_lines
        return [("\n".join(lines[i:i + b]) + "\n").encode() for i in range(0, len(lines), b)]

    def bare(self, connections: int, bodies: list[bytes]) -> dict[str, Any]:
        name = f"bare_{connections}c"
        log(f"phase {name}: {len(bodies)} batches over {connections} connection(s)")
        self.db.statement(f'CREATE DATABASE "{name}"')
        params = {"db": name, "precision": "u"}

        def write(part: list[bytes]) -> None:
            with httpx.Client(base_url=self.influxd.url, timeout=60) as client:
                for body in part:
                    client.post("/write", params=params, content=body).raise_for_status()

        influx_cpu, cpu0, t0 = s.cpu_seconds(self.influxd.child.pid), time.process_time(), time.monotonic()
        window = CpuWindow()
        with ThreadPoolExecutor(connections) as pool:
            list(pool.map(write, [bodies[i::connections] for i in range(connections)]))
        seconds = time.monotonic() - t0
        cpu = {"writer": time.process_time() - cpu0, "influxd": s.cpu_seconds(self.influxd.child.pid) - influx_cpu}
        window.close(cpu)
        label = f"bare writer, {connections} connection{'s' * (connections > 1)}"
        return self.finish(name, label, seconds=seconds, publish_rate=None, cpu=cpu, extra={})

    def finish(self, name: str, label: str, *, seconds: float | None, publish_rate: float | None,
               cpu: dict[str, float], extra: dict[str, Any],
               lost_surplus: tuple[int, int] | None = None) -> dict[str, Any]:
        if lost_surplus is None:  # a phase that wrote to InfluxDB: count per device and field
            lost_surplus = self.db.lost(name, self.expected)
            self.db.statement(f'DROP DATABASE "{name}"')
        lost, surplus = lost_surplus
        n = self.w.readings
        log(f"  {label}: {seconds if seconds is None else round(seconds, 2)} s, lost {lost}, surplus {surplus}")
        return {"phase": name, "label": label, "readings": n, "seconds": seconds,
                "rate": n / seconds if seconds else None, "publish_rate": publish_rate, "lost": lost,
                "surplus": surplus, "cpu": cpu, **extra}

    def start_worker(self, phase: str, i: int, broker_port: int) -> tuple[Any, int | None]:
        env = self.env | {
            "SMARTCITY_MQTT_HOST": "127.0.0.1", "SMARTCITY_MQTT_PORT": str(broker_port),
            "SMARTCITY_MQTT_USERNAME": "ingest", "SMARTCITY_MQTT_PASSWORD": self.passwords["ingest"],
            "SMARTCITY_INFLUX_URL": self.influxd.url, "SMARTCITY_INFLUX_DATABASE": phase}
        argv = [sys.executable, "-m", "smartcity", "--log-level", "WARNING", "ingest", "--registry",
                str(self.registry), "--duration", str(self.args.timeout + 300)]
        metrics_port = free_port() if "--metrics-port" in self.flags else None
        opts = {"--worker": f"w{i}", "--client-id": f"bench-{phase}-w{i}",
                "--state-dir": str(self.state / phase / f"w{i}"), "--metrics-port": str(metrics_port)}
        argv += [x for flag, value in opts.items() if flag in self.flags for x in (flag, value)]
        child = spawn(f"ingest-w{i}", argv, self.state / phase / f"ingest-w{i}.log", env)
        self.stoppers.append(child.stop)
        return child, metrics_port

    def wait_ready(self, phase: str, broker: Any, started: list[tuple[Any, int | None]]) -> None:
        """Until each worker's metrics port (if any) answers and a status probe reached InfluxDB.

        The probe proves that a worker has subscribed (status and readings are subscribed together);
        the workers started together, so a second later all have. (mosquitto's log is block-buffered:
        useless for this.)
        """
        import paho.mqtt.client as paho  # noqa: PLC0415
        from paho.mqtt.enums import CallbackAPIVersion  # noqa: PLC0415

        deadline = time.monotonic() + 60

        def alive() -> bool:
            for w, _ in started:
                if not w.running():
                    raise RuntimeError(f"{w.name} exited:\n{w.log_tail()}")
            return time.monotonic() < deadline

        for _, port in started:
            while port and alive() and scrape(port).startswith("unavailable"):
                time.sleep(0.2)
        probe = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-probe", protocol=paho.MQTTv5)
        gw = s.gateway_id(0)
        probe.username_pw_set(gw, self.passwords[gw])
        probe.connect("127.0.0.1", broker.port)
        probe.loop_start()
        birth = json.dumps({"state": "online", "agent": "bench", "since": time.time(), "seq": 0})
        try:
            while alive():
                probe.publish(f"smartcity/v1/gw/{gw}/status", birth, qos=1)
                time.sleep(0.5)
                if self.db.statement("SELECT count(*) FROM gateway_status", phase):
                    break
            else:
                log("  warning: the status probe never reached InfluxDB; publishing anyway")
        finally:
            probe.disconnect()
            probe.loop_stop()
        time.sleep(1)

    def watch(self, phase: str, workers: list[Any], pubs: s.Publishers) -> tuple[float | None, int]:
        """Start publishing; poll InfluxDB until every reading is queryable: (monotonic time then, count).

        Counting is dear (~150 ms per 1M readings), so progress comes from the shard statistics (~1 ms);
        once they show enough points (they include the ingest's other measurements), one field is
        counted each poll, and when that is complete, all five decide.
        """
        args, expected = self.args, self.w.readings
        expected_points = expected // len(s.FIELDS)
        before = self.db.points_written(phase) or 0  # the status probe's points
        t_start, self.query_seconds = pubs.go(), []
        total, last_progress, last_change, last_log = 0, -1, t_start, t_start
        while time.monotonic() < t_start + args.timeout:
            if pubs.poll():
                log(f"  all published and acknowledged after {time.monotonic() - t_start:.2f} s")
            now = time.monotonic()
            written = self.db.points_written(phase)
            progress = written - before if written is not None else -1
            if progress >= expected_points or written is None:
                counted = self.db.total(phase, s.FIELDS[-1:])
                if counted >= expected_points:
                    total = self.db.total(phase)
                    self.query_seconds.append(time.monotonic() - now)
                    if total >= expected:  # all was queryable when this poll began
                        return now, total
                progress = max(progress, counted)
            if progress != last_progress:
                last_progress, last_change = progress, now
            elif pubs.finished and now - last_change > args.stall:
                log(f"  stalled: no progress for {args.stall:.0f} s")
                return None, self.db.total(phase)
            if now - last_log >= 2:
                last_log = now
                log(f"  {progress:,} / {expected_points:,} points written after {now - t_start:.1f} s")
            if any(not w.running() for w in workers):
                log("  an ingest worker exited")
                return None, self.db.total(phase)
            time.sleep(args.poll)
        total = self.db.total(phase)
        log(f"  timeout: {total:,} / {expected:,} readings queryable after {args.timeout:.0f} s")
        return None, total

    def publisher_specs(self, broker_port: int) -> list[s.PublisherSpec]:
        args = self.args
        n_pub = min(args.publishers, self.w.gateways)
        return [s.PublisherSpec(p, tuple(range(p, self.w.gateways, n_pub)),
                                tuple(self.passwords[s.gateway_id(g)] for g in range(p, self.w.gateways, n_pub)),
                                "127.0.0.1", broker_port, self.w, args.inflight, args.timeout)
                for p in range(n_pub)]

    def paho(self) -> dict[str, Any]:
        """The bare paho subscriber (bench/ingest_paho_sub.py) on the same stream: no InfluxDB at all."""
        phase, args = "paho", self.args
        log(f"phase {phase}: {self.w.readings:,} readings from {self.w.gateways} gateways, bare paho subscriber")
        broker = start_mosquitto(self.state / phase, self.passwords)
        self.stoppers.append(broker.stop)
        counter = self.state / phase / "counter.json"
        argv = [sys.executable, str(ROOT / "bench" / "ingest_paho_sub.py"), "--port", str(broker.port),
                "--username", "ingest", "--expected", str(self.w.readings), "--counter", str(counter),
                "--duration", str(args.timeout + 300)]
        # Not the ingest's PYTHONSAFEPATH: the subscriber imports bench/bare_paho_sub.py from its own directory.
        env = {k: v for k, v in self.env.items() if k != "PYTHONSAFEPATH"}
        sub = spawn("paho-sub", argv, self.state / phase / "paho-sub.log",
                    env | {"BENCH_MQTT_PASSWORD": self.passwords["ingest"]})
        self.stoppers.append(sub.stop)
        deadline = time.monotonic() + 60
        while not read_counter(counter).get("subscribed"):
            if not sub.running() or time.monotonic() > deadline:
                raise RuntimeError(f"the paho subscriber did not subscribe:\n{sub.log_tail()}")
            time.sleep(0.1)

        pids = {"mosquitto": [broker.child.pid], "influxd": [self.influxd.child.pid], "paho_sub": [sub.pid]}
        with s.Publishers(self.publisher_specs(broker.port)) as pubs:
            pubs.wait_ready(120)
            cpu0 = {k: sum(map(s.cpu_seconds, v)) for k, v in pids.items()}
            window = CpuWindow()
            t_done, st = self.watch_counter(counter, sub, pubs)
            cpu = {k: sum(map(s.cpu_seconds, v)) - cpu0[k] for k, v in pids.items()}
            window.stop()
            rss = s.max_rss_mb(sub.pid)
            done = pubs.collect(30)
        t_first = min(d["t_first"] for d in done)
        cpu["publishers"] = sum(d["cpu"] for d in done)
        window.close(cpu)
        publish_rate = self.w.readings / (max(d["t_last"] for d in done) - t_first)
        sub.stop(timeout=30)
        broker.stop()
        records = int(st.get("records", 0))
        return self.finish(phase, "bare paho subscriber (ceiling)", seconds=t_done - t_first if t_done else None,
                           publish_rate=publish_rate, cpu=cpu,
                           lost_surplus=(max(0, self.w.readings - records), max(0, records - self.w.readings)),
                           extra={"messages": st.get("messages"), "records": records, "error": st.get("error"),
                                  "ingest_max_rss_mb": rss,
                                  "unacked_publishes": sum(d["messages"] - d["acked"] for d in done)})

    def watch_counter(self, counter: Path, sub: Any, pubs: s.Publishers) -> tuple[float | None, dict[str, Any]]:
        """Start publishing; poll the subscriber's counter file until it has counted every record."""
        args = self.args
        t_start = pubs.go()
        st: dict[str, Any] = {}
        last_records, last_change, last_log = -1, t_start, t_start
        while time.monotonic() < t_start + args.timeout:
            if pubs.poll():
                log(f"  all published and acknowledged after {time.monotonic() - t_start:.2f} s")
            now = time.monotonic()
            st = read_counter(counter) or st
            if st.get("t_done"):
                return float(st["t_done"]), st
            if st.get("error") or not sub.running():
                log(f"  the paho subscriber failed: {st.get('error')}\n{sub.log_tail()}")
                return None, st
            records = int(st.get("records", 0))
            if records != last_records:
                last_records, last_change = records, now
            elif pubs.finished and now - last_change > args.stall:
                log(f"  stalled: no progress for {args.stall:.0f} s")
                return None, st
            if now - last_log >= 2:
                last_log = now
                log(f"  {records:,} / {self.w.readings:,} records counted after {now - t_start:.1f} s")
            time.sleep(args.poll)
        log(f"  timeout: {st.get('records', 0):,} / {self.w.readings:,} records counted after {args.timeout:.0f} s")
        return None, st

    def ours(self, n_workers: int) -> dict[str, Any]:
        phase = f"ingest_{n_workers}w"
        log(f"phase {phase}: {self.w.readings:,} readings from {self.w.gateways} gateways, {n_workers} worker(s)")
        broker = start_mosquitto(self.state / phase, self.passwords)
        self.stoppers.append(broker.stop)
        self.db.statement(f'CREATE DATABASE "{phase}"')
        started = [self.start_worker(phase, i, broker.port) for i in range(n_workers)]
        workers = [w for w, _ in started]
        self.wait_ready(phase, broker, started)

        specs = self.publisher_specs(broker.port)
        pids = {"mosquitto": [broker.child.pid], "influxd": [self.influxd.child.pid],
                "ingest": [w.pid for w in workers]}
        with s.Publishers(specs) as pubs:
            pubs.wait_ready(120)
            cpu0 = {k: sum(map(s.cpu_seconds, v)) for k, v in pids.items()}
            window = CpuWindow()
            t_seen, total = self.watch(phase, workers, pubs)
            cpu = {k: sum(map(s.cpu_seconds, v)) - cpu0[k] for k, v in pids.items()}
            window.stop()
            rss = max(s.max_rss_mb(w.pid) for w in workers)
            metrics = [scrape(port) for _, port in started if port]
            done = pubs.collect(30)
        t_first = min(d["t_first"] for d in done)
        cpu["publishers"] = sum(d["cpu"] for d in done)
        window.close(cpu)
        publish_rate = self.w.readings / (max(d["t_last"] for d in done) - t_first)
        unacked = sum(d["messages"] - d["acked"] for d in done)
        seconds = t_seen - t_first if t_seen else None
        for w in workers:
            w.stop(timeout=30)
        broker.stop()
        problems = [f"{w.name}: exit {w.process.returncode}: {line}" for w in workers
                    for line in w.log_tail(200).splitlines() if re.search(r"ERROR|Traceback|CRITICAL", line)]
        for p in problems[:10]:
            log(f"  {p}")
        label = f"ours, {n_workers} ingest worker{'s' * (n_workers > 1)}"
        return self.finish(phase, label, seconds=seconds, publish_rate=publish_rate, cpu=cpu,
                           extra={"queryable_at_end": total, "counts": len(self.query_seconds),
                                  "count_query_ms_max": max(self.query_seconds, default=0) * 1000,
                                  "ingest_max_rss_mb": rss, "unacked_publishes": unacked,
                                  "worker_exit_codes": [w.process.returncode for w in workers],
                                  "worker_log_problems": problems[:50], "metrics": metrics})


def read_counter(path: Path) -> dict[str, Any]:
    """The paho subscriber's progress file ({} until it exists; it is replaced atomically)."""
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def scrape(port: int) -> str:
    """The non-comment lines of a worker's /metrics (best effort)."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx.HTTPError as exc:
        return f"unavailable: {exc}"
    return "\n".join(ln for ln in text.splitlines() if ln and not ln.startswith("#"))[:20_000]


def report(phases: list[dict[str, Any]]) -> list[str]:
    """The Markdown tables: throughput and ratios, then CPU seconds and memory."""
    bare = [p for p in phases if p["phase"].startswith("bare") and p["rate"] and not p["lost"]]
    best = max(bare, key=lambda p: p["rate"]) if bare else None
    ceiling = next((p for p in phases if p["phase"] == "paho" and p["rate"] and not p["lost"]), None)
    out = [f"ratios against the best bare writer: {best['label']} ({best['rate']:,.0f} readings/s)" if best
           else "no bare writer phase: no ratios",
           f"paho ceiling: {ceiling['rate']:,.0f} readings/s parsed, counted and acknowledged" if ceiling
           else "no paho phase: no ceiling ratios", "",
           "| phase | readings | s until queryable | readings/s | vs bare writer | vs paho ceiling | lost |",
           "|---|---:|---:|---:|---:|---:|---:|"]
    for p in phases:
        ratio = f"{p['rate'] / best['rate']:.0%}" if best and p["rate"] else "-"
        vs_paho = (f"{p['rate'] / ceiling['rate']:.0%}" if ceiling and p["rate"]
                   and p["phase"].startswith(("ingest", "node_red")) else "-")
        secs = f"{p['seconds']:.2f}" if p["seconds"] else "timeout"
        out.append(f"| {p['label']} | {p['readings']:,} | {secs} | {p['rate'] or 0:,.0f} | {ratio} | {vs_paho} "
                   f"| {p['lost']:,} |")
    peer = next((p for p in phases if p["phase"] == "node_red" and p["rate"] and not p["lost"]), None)
    ours = [p for p in phases if p["phase"].startswith("ingest") and p["rate"]]
    if peer and ours:
        def per_cpu(p: dict[str, Any]) -> float:  # readings per CPU-second of the consumer's processes
            cpu = float(p["cpu"].get("ingest", p["cpu"].get("node_red", 0)))
            return float(p["readings"]) / max(cpu, 1e-9)

        out += ["", "ours / Node-RED: " + "; ".join(
            f"{p['label']}: {p['rate'] / peer['rate']:.2f}x readings/s, {per_cpu(p) / per_cpu(peer):.2f}x per "
            "consumer CPU-second" for p in ours)]
    out += ["", "| phase | publish readings/s | CPU s: consumer (ingest / writer / paho / Node-RED) | mosquitto "
            "| influxd "
            "| publishers | others | consumer max RSS MB |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for p in phases:
        c = p["cpu"]
        pub = f"{p['publish_rate']:,.0f}" if p["publish_rate"] else "-"
        consumer = c.get("ingest", c.get("paho_sub", c.get("node_red", c.get("writer", 0))))
        out.append(f"| {p['label']} | {pub} | {consumer:.1f} | {c.get('mosquitto', 0):.1f} "
                   f"| {c['influxd']:.1f} | {c.get('publishers', 0):.1f} | {c.get('others', 0):.1f} "
                   f"| {p.get('ingest_max_rss_mb', 0):.0f} |")
    return out


def run_phase(bench: Bench, phase: str, bodies: list[bytes]) -> dict[str, Any]:
    if phase == "paho":
        return bench.paho()
    if phase == "node-red":
        return ingest_node_red.phase(bench)
    if phase.startswith("bare"):
        return bench.bare(int(phase[-1]), bodies)
    return bench.ours(int(phase[-1]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--readings", type=int, default=1_000_000, help="readings per phase (rounded up to whole packs)")
    p.add_argument("--quick", action="store_true", help="smoke run: 100k readings per phase")
    p.add_argument("--gateways", type=int, default=8, help="simulated gateways, each its own MQTT account")
    p.add_argument("--lights", type=int, default=50, help="street lights per gateway")
    p.add_argument("--publishers", type=int, default=4, help="publisher processes")
    p.add_argument("--inflight", type=int, default=100, help="unacknowledged QoS 1 publishes per gateway")
    p.add_argument("--batch-lines", type=int, default=10_000, help="lines per bare-writer POST")
    p.add_argument("--phases", default="bare1,bare2,paho,ours1,ours2,node-red",
                   help="comma-separated, run in this order: bareN = bare writer over N connections (1-2), "
                        "paho = bare paho subscriber (the pure-Python consumer ceiling), oursN = N ingest workers, "
                        "node-red = Node-RED's InfluxDB batch node (the peer)")
    p.add_argument("--timeout", type=float, default=300, help="max seconds per phase until all is queryable")
    p.add_argument("--stall", type=float, default=30, help="give up after this many seconds without progress")
    p.add_argument("--poll", type=float, default=0.1, help="seconds between progress polls")
    p.add_argument("--ingest-dir", type=Path, default=ROOT,
                   help="source tree to run `smartcity ingest` from (default: this one), e.g. an older commit's export")
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--keep-state", action="store_true", help="keep the temp dir (logs) and print where it is")
    args = p.parse_args(argv)
    if args.quick:
        args.readings = 100_000
    if not all(re.fullmatch(r"(bare[12]|paho|ours[1-9]|node-red)", ph) for ph in args.phases.split(",")):
        p.error(f"--phases: each of bare1, bare2, paho, ours1 .. ours9, node-red, got {args.phases!r}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks
    state = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    bench: Bench | None = None
    phases: list[dict[str, Any]] = []
    try:
        bench = Bench(args, state)
        bodies = bench.bodies() if "bare" in args.phases else []
        phases.extend(run_phase(bench, phase, bodies) for phase in args.phases.split(","))
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        if bench:
            bench.close()
        if args.keep_state:
            log(f"state kept in {state}")
        else:
            shutil.rmtree(state, ignore_errors=True)
    w = bench.w
    print(f"ingest end to end: {w.readings:,} readings per phase ({w.gateways} gateways x {w.lights} street lights, "
          f"packs of 100 records, QoS 1, {args.publishers} publisher processes); python {platform.python_version()}, "
          f"InfluxDB {bench.influx_version}, {os.cpu_count()} cores")
    print("\n".join(report(phases)))
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "readings": w.readings,
                                         "influxdb": bench.influx_version, "python": platform.python_version(),
                                         "ingest_flags": sorted(bench.flags), "node_red": bench.node_red,
                                         "phases": phases}, indent=1))
    ok = all(ph["lost"] == 0 and ph["seconds"] for ph in phases)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
