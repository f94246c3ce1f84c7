"""City scale: the platform with 100,000 devices on this machine, at the city's real cadence and a step ramp.

Per configuration (1 ingest + 1 rules worker; 2 ingest workers on a shared subscription + 2 rules workers
partitioned by wijk), against a fresh private mosquitto and one private influxd on loopback:

1. probe packs until every worker counts readings (all have subscribed);
2. census: every device reports once (the series the registry implies), then InfluxDB's series cardinality;
3. steps: the city at x1 its real cadence (bench/city_scale_city.py), then x k, each `--step-seconds` long,
   with `--trigger-rate` presence triggers/s; per step: offered and sustained readings/s (ingest and rules
   intake counters, InfluxDB counts), lost, lag, sensor-to-action latency (presence published -> first
   dim 100 command of the wijk received, as bench/rules_service.py measures it), % of a core and RSS of
   every process, others' CPU; the ramp stops at the first step that breaks (readings lost, refused or
   left behind, lag not drained, p99 above `--p99-bound`).

    .venv/bin/python bench/city_scale.py --json /tmp/city.json    # 100k devices, both configurations, ~10 min
    .venv/bin/python bench/city_scale.py --quick                  # 10k devices, steps x1 and x30 of 4 s, ~45 s
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # deploy/ and bench/ are not in the editable install's package map

from bench import city_scale_city as cc  # noqa: E402
from bench import city_scale_services as sv  # noqa: E402
from bench import rules_service_support as rs  # noqa: E402
from bench.city_scale_load import Job, Load, LoadSpec  # noqa: E402
from bench.city_scale_report import influx_counts, judge, latency, report  # noqa: E402
from bench.ingest_support import Influx  # noqa: E402
from bench.progress import log, stop_all  # noqa: E402
from bench.rules_service_clients import Child, listener  # noqa: E402
from deploy.influxdb import start_influxd  # noqa: E402
from deploy.mosquitto import start_mosquitto  # noqa: E402
from deploy.processes import new_password  # noqa: E402


class Bench:
    def __init__(self, args: argparse.Namespace, state: Path) -> None:
        self.args, self.state, self.stoppers = args, state, []
        self.city = cc.City(args.gemeenten, args.wijken)
        t0 = time.monotonic()
        self.registry = state / "registry.geojson"
        self.registry.write_text(json.dumps(cc.registry_geojson(self.city)))
        self.rules = state / "city-rules.toml"
        self.rules.write_text(cc.rules_toml(args.hold))
        log(f"city: {self.city.devices:,} devices, {self.city.gateways} gateways / wijken in {args.gemeenten} "
            f"gemeenten; registry {self.registry.stat().st_size / 1e6:.1f} MB written in {time.monotonic() - t0:.1f} s")
        self.wijk_of = {d.id: d.wijk for g in range(self.city.gateways) for d in cc.gateway_devices(self.city, g)
                        if d.kind in ("street_light", "occupancy")}
        self.passwords = {cc.gateway_id(g): new_password() for g in range(self.city.gateways)} | {
            u: new_password() for u in ("ingest", "rules", "operator")}
        self.influxd = start_influxd(state)
        self.stoppers.append(self.influxd.stop)
        self.db = Influx(self.influxd.url)

    def close(self) -> None:
        stop_all(self.stoppers)

    def configuration(self, n_ingest: int, n_rules: int) -> dict[str, Any]:
        args, name = self.args, f"{n_ingest}i{n_rules}r"
        d = self.state / name
        log(f"configuration {name}: {n_ingest} ingest worker(s), {n_rules} rules worker(s)")
        broker = start_mosquitto(d, self.passwords)
        stoppers: list[Any] = [broker.stop]
        db = f"city_{name}"
        self.db.statement(f'CREATE DATABASE "{db}"')
        out: dict[str, Any] = {"name": name, "ingest_workers": n_ingest, "rules_workers": n_rules, "steps": []}
        try:
            life = args.step_seconds * 40 + 1200
            workers = [sv.start_ingest(i, d, self.registry, sv.base_env(
                broker.port, "ingest", self.passwords["ingest"], self.influxd.url, db), life) for i in range(n_ingest)]
            workers += [sv.start_rules(i, n_rules, d, self.registry, self.rules, sv.base_env(
                broker.port, "rules", self.passwords["rules"], self.influxd.url, db), life, args.tick,
                args.rules_args.split()) for i in range(n_rules)]
            stoppers += [w.stop for w in workers]
            t0 = time.monotonic()
            load = Load(LoadSpec("127.0.0.1", broker.port, self.passwords, self.city, 60))
            stoppers.append(load.close)
            self.pids = {w.name: w.pid for w in workers} | {"mosquitto": broker.child.pid,
                                                           "influxd": self.influxd.child.pid, "load": load.pid,
                                                           "bench": os.getpid()}
            self.workers, self.load, self.broker, self.dbname = workers, load, broker, db
            out["startup_s"] = self.wait_subscribed()
            log(f"  all workers counting after {time.monotonic() - t0:.1f} s")
            out["census"] = self.census()
            for scale in args.steps:
                step = self.step(scale)
                out["steps"].append(step)
                if step["broken"] and "first_broken" not in out:
                    out["first_broken"] = {"scale": scale, "why": step["broken"]}
                if step["capacity_broken"]:
                    log(f"  capacity exceeded at x{scale:g}: {'; '.join(step['broken'])}")
                    break
            out["cardinality_end"] = self.cardinality()
            out["rss_end"] = {k: rs.rss_mb(p) for k, p in self.pids.items()}
            out["rss_peak"] = {k: rs.rss_mb(p, "VmHWM") for k, p in self.pids.items()}
            out["worker_logs"] = {w.name: w.child.log_tail(5) for w in workers}
        finally:
            for stop in reversed(stoppers):
                try:
                    stop()
                except Exception as exc:
                    log(f"stopping: {exc}")
            if not args.keep_state:
                self.db.statement(f'DROP DATABASE "{db}"')
        return out

    def totals(self) -> dict[str, float]:
        """Sums over the workers of each kind (a worker not answering is an error: it died)."""
        out = {"ingest_records": 0.0, "ingest_points": 0.0, "pending_lines": 0.0, "spool_bytes": 0.0,
               "dead_letters": 0.0, "rejected": 0.0,
               "rules_records": 0.0, "commands": 0.0, "evaluations": 0.0, "evaluation_seconds": 0.0,
               "snapshots": 0.0}
        for w in self.workers:
            c = w.counts()
            if c is None:
                if not w.child.running():
                    raise RuntimeError(f"{w.name} exited:\n{w.child.log_tail()}")
                raise RuntimeError(f"{w.name}: /metrics did not answer")
            if w.kind == "ingest":
                out["ingest_records"] += c["records"]
                out["ingest_points"] += c["points"]
                out["pending_lines"] += c["pending_lines"]
                for k in ("spool_bytes", "dead_letters", "rejected"):
                    out[k] += c[k]
            else:
                out["rules_records"] += c["records"]
                for k in ("commands", "evaluations", "evaluation_seconds", "snapshots"):
                    out[k] += c[k]
        return out

    def wait_subscribed(self) -> float:
        """Probe packs until every worker has counted some (their subscriptions are in place)."""
        t0 = time.monotonic()
        while time.monotonic() < t0 + 300:
            counts = [w.counts() for w in self.workers]
            for w in self.workers:
                if not w.child.running():
                    raise RuntimeError(f"{w.name} exited:\n{w.child.log_tail()}")
            if all(c and c["records"] > 0 for c in counts):
                time.sleep(1)
                return time.monotonic() - t0
            if all(c is not None for c in counts):
                self.load.submit(Job("probe"))
                self.load.take("done", 60)
            time.sleep(1)
        raise RuntimeError("the workers did not count the probe packs within 300 s")

    def drain(self, base: dict[str, float], records: int, limit: float) -> tuple[float | None, dict[str, float]]:
        """Wait until ingest and rules have taken `records` more and nothing is pending: (seconds, totals)."""
        t0 = time.monotonic()
        while True:
            tot = self.totals()
            if (tot["ingest_records"] - base["ingest_records"] >= records
                    and tot["rules_records"] - base["rules_records"] >= records and tot["pending_lines"] == 0):
                return time.monotonic() - t0, tot
            if time.monotonic() - t0 > limit:
                return None, tot
            time.sleep(0.2)

    def stored(self, res: dict[str, Any]) -> tuple[int, float]:
        """Readings of the job queryable in InfluxDB: counted again (bounded, 30 s) until all are there.

        The drain ends when the ingest has taken every reading and has no lines pending, but a write can
        still be in flight (under load a /write of a large batch takes seconds): without the recount such
        a step would show readings as lost that are only late.
        """
        t0 = time.monotonic()
        time.sleep(1.0)
        while True:
            stored = influx_counts(self.db, self.dbname, res["wall_first"] - 1, res["wall_sent"] + 2)
            if stored >= res["records"] or time.monotonic() - t0 > 30:
                return stored, time.monotonic() - t0
            time.sleep(1.0)

    def census(self) -> dict[str, Any]:
        base = self.totals()
        self.load.submit(Job("census", census_rate=self.args.census_rate))
        res = self.load.take("done", 600)
        drained, _ = self.drain(base, res["records"], 120)
        stored, _ = self.stored(res)
        card = self.cardinality()
        log(f"  census: {res['records']:,} readings of {res['points']:,} devices in "
            f"{res['t_sent'] - res['t_first']:.1f} s, stored {stored:,}, drained {drained}; "
            f"series {card.get('exact_total')}")
        return {"sent": res, "stored": stored, "lost": res["records"] - stored, "drain_s": drained, "cardinality": card,
                "influxd_rss_mb": rs.rss_mb(self.influxd.child.pid),
                "rss": {k: rs.rss_mb(p) for k, p in self.pids.items()}}

    def cardinality(self) -> dict[str, Any]:
        db = self.dbname
        out: dict[str, Any] = {"per_measurement": {}}
        for series in self.db.statement("SHOW SERIES EXACT CARDINALITY", db):
            out["per_measurement"][series.get("name", "?")] = int(series["values"][0][0])
        out["exact_total"] = sum(out["per_measurement"].values())
        est = self.db.statement("SHOW SERIES CARDINALITY", db)
        out["estimated_total"] = sum(int(s["values"][0][0]) for s in est)
        out["readings_series"] = sum(v for k, v in out["per_measurement"].items()
                                     if k in ("street_light", "occupancy", "rain_gauge", "traffic_light"))
        out["expected_readings_series"] = self.city.devices
        return out

    def step(self, scale: float) -> dict[str, Any]:
        args = self.args
        _, offered = cc.offered_per_gateway(scale)
        offered *= self.city.gateways
        log(f"  step x{scale:g}: {offered:,.0f} readings/s offered for {args.step_seconds:.0f} s "
            f"+ {args.trigger_rate:g} triggers/s")
        lst = Child(listener, "127.0.0.1", self.broker.port, self.passwords["operator"], 600)
        lst.take("ready", 60)
        pids = self.pids | {"listener": int(lst.proc.pid or 0)}
        base = self.totals()
        self.load.submit(Job("step", scale=scale, duration=args.step_seconds, trigger_rate=args.trigger_rate,
                           hold=args.hold))
        samples: list[dict[str, Any]] = []
        res = None
        deadline = time.monotonic() + args.step_seconds + 600
        while res is None and time.monotonic() < deadline:
            t = time.monotonic()
            samples.append({"t": t, **self.totals(), **sv.snapshot(pids)})
            res = self.load.poll()
            time.sleep(max(0.0, 0.5 - (time.monotonic() - t)))
        if res is None:
            raise RuntimeError("the load process did not finish its step")
        samples.append({"t": time.monotonic(), **self.totals(), **sv.snapshot(pids)})
        drained, tot = self.drain(base, res["records"], args.drain)
        time.sleep(0.5)  # the commands of the last trigger
        lst.event.set()
        commands = lst.take("done", 60)
        lst.close()
        stored, settle = self.stored(res)
        period = min(60.0, self.city.gateways / args.trigger_rate) if args.trigger_rate else 10.0
        lat = latency(res["triggers"], commands, self.wijk_of, period)
        step = {"scale": scale, "offered_planned": offered, "sent": {k: v for k, v in res.items() if k != "triggers"},
                "stored": stored, "lost": res["records"] - stored, "drain_s": drained, "latency": lat,
                "commands_received": len(commands), "samples": samples, "end_totals": tot,
                "base_totals": base, "settle_s": settle}
        step |= judge(step, args.p99_bound, args.drain_bound)
        log(f"    sent {res['records']:,} ({step['offered']:,.0f}/s), stored {stored:,}, lost {step['lost']:,}; "
            f"ingest {step['ingest_rate']:,.0f}/s, rules {step['rules_rate']:,.0f}/s; backlog at end ingest "
            f"{step['ingest_backlog']:,.0f} rules {step['rules_backlog']:,.0f}; drain {drained}; "
            f"settle {settle:.1f} s; "
            f"dead letters {step['dead_letters']:.0f}, rejected {step['rejected']:.0f}; latency p50 "
            f"{lat['p50_ms']} p99 {lat['p99_ms']} ms ({lat['matched']}/{lat['triggers']}); busiest "
            f"{step['busiest']}; others {step['cpu_pct'].get('others', 0):.0f} %")
        return step


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="10k devices (2 gemeenten), steps x1, x30 of 4 s")
    p.add_argument("--gemeenten", type=int, default=20)
    p.add_argument("--wijken", type=int, default=25, help="wijken (= gateways) per gemeente; 200 devices each")
    p.add_argument("--steps", default="1,10,30,60,100,150,200,300", help="scales of the real cadence, in order")
    p.add_argument("--step-seconds", type=float, default=20)
    p.add_argument("--trigger-rate", type=float, default=4.0, help="presence triggers per second, city-wide")
    p.add_argument("--hold", type=float, default=1.0, help="presence hold (s): a wijk clears before its next trigger")
    p.add_argument("--tick", type=float, default=0.02, help="rules --tick")
    p.add_argument("--census-rate", type=float, default=100_000, help="records/s of the census")
    p.add_argument("--configs", default="1x1,2x2", help="ingest x rules workers, comma-separated")
    p.add_argument("--p99-bound", type=float, default=250.0, help="ms: a step whose p99 latency is above breaks")
    p.add_argument("--drain", type=float, default=60.0, help="max s to wait for the backlog after a step")
    p.add_argument("--drain-bound", type=float, default=5.0, help="s: a step that needs longer to drain breaks")
    p.add_argument("--rules-args", default="", help="extra options for every rules worker (an experiment)")
    p.add_argument("--json", type=Path)
    p.add_argument("--keep-state", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        args.gemeenten, args.wijken = 2, 25
        if args.steps == p.get_default("steps"):
            args.steps = "1,30"
        args.step_seconds = min(args.step_seconds, 4.0)
    args.steps = [float(x) for x in str(args.steps).split(",") if x]
    configs = [tuple(int(n) for n in c.split("x")) for c in args.configs.split(",") if c]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    state = Path(tempfile.mkdtemp(prefix="bench-city-"))
    bench: Bench | None = None
    results: list[dict[str, Any]] = []
    t_start = time.time()
    try:
        bench = Bench(args, state)
        for n_ingest, n_rules in configs:
            results.append(bench.configuration(n_ingest, n_rules))
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
    city = bench.city
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(t_start)), "python": platform.python_version(),
            "nproc": os.cpu_count(), "devices": city.devices, "gateways": city.gateways,
            "real_cadence_readings_s": cc.offered_per_gateway(1)[1] * city.gateways,
            "real_cadence_reports_s": cc.offered_per_gateway(1)[0] * city.gateways,
            "args": {k: str(v) for k, v in vars(args).items()}}
    print("\n".join(report(results, meta)))
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "configurations": results}, indent=1))
    ok = all(c["census"]["lost"] == 0 and c["steps"] and c["steps"][0]["lost"] == 0 for c in results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
