"""SensorThings API at scale: deep paging, $count, latest-per-wijk and a concurrent query mix, as ratios.

Targets (issue 8), with >= 10 million Observations in InfluxDB, in one run:
- a page at nextLink depth 1,000,000 vs the first page of the same Datastream: <= 2x;
- ``$count=true`` on all Observations vs ``$top=1`` on all Observations: <= 2x;
- the latest Observation of every Datastream of a wijk vs of one Datastream: <= 3x;
- requests/s of a typical open-data query mix at 16 concurrent clients (reported, no target).
Those are where FROST-Server's users suffer (its ``$skip`` is SQL OFFSET, its ``$count`` a full COUNT,
latest-per-datastream one query per Datastream); here they are keyset paging, a per-day count cache
and one ``last()`` statement per measurement.

What it does: starts a private influxd on loopback, loads the city of bench/api_data.py (two writer
threads, 10k-line batches, progress on stderr, bounded by --max-load-seconds), starts the real
``smartcity api`` process on a free loopback port (anonymous rate limit off: the clients are one
address), then measures over HTTP with httpx: each ratio from alternating requests on one keep-alive
connection (bench/api_measure.py), each answer checked against what was loaded (the deep page starts
exactly at row 1,000,000, the count equals the public Observations loaded). The walk to depth follows
the server's own nextLinks, $top=10000 pages; the timed deep page is that last nextLink with $top=100.
``$count`` is timed warm: the first count of a fresh cache (which counts every closed day once) is
reported on its own. ``$skip=1000000`` is timed once for contrast.

    .venv/bin/python bench/api.py --json /tmp/api.json    # 10.2M Observations, ~4 min
    .venv/bin/python bench/api.py --small                 # 180k Observations, smoke run, ~20 s
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # bench/ is not in the editable install's package map

from bench import api_cases as cases  # noqa: E402
from bench import api_data as data  # noqa: E402
from bench import api_measure as m  # noqa: E402
from bench.progress import log  # noqa: E402
from deploy import influxdb as influxdb_deploy  # noqa: E402
from deploy.influxdb import Influxd, start_influxd  # noqa: E402
from deploy.processes import ChildProcess, free_port, spawn  # noqa: E402

DATABASE = "smartcity_bench"
TARGETS = {"deep_page": 2.0, "count": 2.0, "latest_wijk": 3.0}
LATEST = cases.LATEST



def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--small", action="store_true", help="a small city and depth: a smoke run, not for the record")
    p.add_argument("--depth", type=int, default=None, help="nextLink depth (default 1,000,000; --small 10,000)")
    p.add_argument("--points", type=int, default=None, help="points per ordinary device (default 2,600; small 50)")
    p.add_argument("--long-points", type=int, default=None, help="points of the long series (1.2M; small 20k)")
    p.add_argument("--days", type=float, default=365.0, help="history length, ending now")
    p.add_argument("--repeats", type=int, default=None, help="timed pairs per ratio (default 30; small 5)")
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--mix-seconds", type=float, default=None, help="duration of the mix (default 30; small 3)")
    p.add_argument("--max-requests", type=int, default=1_000_000, help="bound on the mix's requests")
    p.add_argument("--max-load-seconds", type=float, default=900.0)
    p.add_argument("--json", type=Path, help="also write every figure here")
    p.add_argument("--keep-state", action="store_true", help="keep the temp dir (logs) and say where")
    args = p.parse_args(argv)
    small = args.small
    args.depth = args.depth or (10_000 if small else 1_000_000)
    args.points = args.points or (50 if small else 2_600)
    args.long_points = args.long_points or (20_000 if small else 1_200_000)
    args.repeats = args.repeats or (5 if small else 30)
    args.mix_seconds = args.mix_seconds or (3.0 if small else 30.0)
    if args.long_points <= args.depth + 100:
        p.error("--long-points must exceed --depth by more than a page")
    return args


_plain_config = influxdb_deploy.influxd_config


def _config_snapshotting_soon(*args: Any, **kwargs: Any) -> str:
    """The deployed influxd config, but shards go from the in-memory cache to TSM files 5 s after the
    last write instead of 10 min: the bench measures a history at rest, as a deployment's is."""
    return _plain_config(*args, **kwargs).replace("[data]\n", '[data]\n  cache-snapshot-write-cold-duration = "5s"\n')


influxdb_deploy.influxd_config = _config_snapshotting_soon


def wait_for_snapshots(wal: Path, timeout: float) -> float:
    """Seconds until influxd's WAL is (almost) empty: every shard's data is in TSM files."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        size = sum(f.stat().st_size for f in wal.rglob("*.wal") if f.is_file())
        if size < 1_000_000:
            break
        time.sleep(1)
    return time.monotonic() - t0


class Servers:
    """influxd and the API process; close() stops both by PID."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.influxd: Influxd = start_influxd(state / "influx")
        self.api: ChildProcess | None = None
        self.api_url = ""
        httpx.post(f"{self.influxd.url}/query", data={"q": f'CREATE DATABASE "{DATABASE}"'}, timeout=30)

    def start_api(self, registry: Path) -> None:
        """`smartcity api` on a free loopback port; waits for /healthz."""
        port = free_port()
        env = {**os.environ, "SMARTCITY_INFLUX_URL": self.influxd.url, "SMARTCITY_INFLUX_DATABASE": DATABASE,
               "SMARTCITY_API_RATE_LIMIT": "0", "SMARTCITY_API_PUBLIC_URL": "",
               "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
        self.api = spawn("api", [sys.executable, "-m", "smartcity", "api", "--registry", str(registry),
                                 "--host", "127.0.0.1", "--port", str(port), "--state-dir", str(self.state / "api")],
                         self.state / "api.log", env)
        self.api_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.api.process.poll() is not None:
                raise SystemExit(f"the API exited: {self.api.log_tail()}")
            try:
                if httpx.get(f"{self.api_url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise SystemExit("the API did not become healthy in 60 s")

    def close(self) -> None:
        """Stop what was started."""
        if self.api is not None:
            self.api.stop()
        self.influxd.stop()


def measure(args: argparse.Namespace, servers: Servers, plan: data.Plan, devs: list[data.Device]) -> dict[str, Any]:
    """Every figure of the run."""
    with httpx.Client(base_url=servers.api_url, timeout=600) as http:
        out = cases.deep_paging(http, args, plan, log)
        out |= cases.counting(http, args, plan, devs, log)
        out |= cases.latest(http, args, devs, log)
    log(f"query mix at {args.clients} clients for {args.mix_seconds:g} s ...")
    out["mix"] = m.mix(servers.api_url, mix_urls(devs, plan), clients=args.clients, seconds=args.mix_seconds,
                       max_requests=args.max_requests, seed=20261202)
    return out


def mix_urls(devs: list[data.Device], plan: data.Plan) -> list[tuple[str, str, int]]:
    """A typical open-data mix (name, url, weight): browsing, latest values, a day of a series, aggregates."""
    light = next(d for d in devs if d.kind == "street_light" and d.public)
    rain = next(d for d in devs if d.kind == "rain_gauge" and d.id != data.LONG)
    wijk = data.WIJKEN[1]
    day_ago = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(plan.end_us / 1e6 - 86_400))
    return [
        ("service root", "/v1.1", 1),
        ("Things page", "/v1.1/Things?$top=50", 3),
        ("Thing with Datastreams", f"/v1.1/Things('{light.id}')?$expand=Datastreams", 3),
        ("Datastreams of a kind", "/v1.1/Datastreams?$top=100&$filter=properties/kind eq 'rain_gauge'", 2),
        ("latest of a Datastream", f"/v1.1/Datastreams('{light.id}.power')/Observations?$top=1"
                                   "&$orderby=phenomenonTime desc", 6),
        ("last day of a Datastream", f"/v1.1/Datastreams('{rain.id}.accumulation')/Observations"
                                     f"?$filter=phenomenonTime ge {day_ago}&$top=100", 4),
        ("page of the long series", f"/v1.1/Datastreams('{data.LONG}.accumulation')/Observations?$top=100", 2),
        ("latest of a wijk", f"/v1.1/Things?$top=1000&$filter=properties/wijk eq '{wijk}' and properties/kind ne "
                             f"null&$expand=Datastreams($expand={LATEST})", 2),
        ("daily rain of a wijk", f"/v1.1/Datastreams('wijk.{wijk}.rain_gauge.accumulation.daily')/Observations"
                                 "?$top=31&$orderby=phenomenonTime desc", 2),
        ("count of a Datastream", f"/v1.1/Datastreams('{light.id}.energy')/Observations?$top=1&$count=true", 1),
        ("GeoJSON latest", "/v1/latest?kind=rain_gauge", 1),
    ]


def report(meta: dict[str, Any], load: dict[str, float], out: dict[str, Any]) -> str:
    """The README table."""
    rows = [
        ("page at nextLink depth {:,} vs the first page".format(meta["depth"]), out["deep_page"], "deep_page"),
        ("$count=true on all Observations vs $top=1", out["count"], "count"),
        ("latest of every Datastream of a wijk ({:.0f}, {:.0f} of them measured, the rest aggregates) vs of one"
         .format(out["latest_wijk"]["datastreams"], out["latest_wijk"]["measured_datastreams"]),
         out["latest_wijk"], "latest_wijk"),
    ]
    lines = [f"{load['observations']:,.0f} Observations ({load['points']:,.0f} points) loaded in "
             f"{load['seconds']:.1f} s ({load['observations_per_s'] / 1e6:.2f}M Observations/s)", "",
             "| measure | A median (p90) | B median (p90) | A / B | target |", "|---|---:|---:|---:|---:|"]
    for name, r, key in rows:
        ok = "met" if r["ratio"] <= TARGETS[key] else "MISSED"
        lines.append(f"| {name} | {r['a_ms']:.1f} ms ({r['a_p90_ms']:.1f}) | {r['b_ms']:.1f} ms ({r['b_p90_ms']:.1f}) "
                     f"| **{r['ratio']:.2f}x** | <= {TARGETS[key]:g}x ({ok}) |")
    e, t = out["latest_one_entity"], out["latest_wijk_things"]
    lines += ["", f"Same wijk request against `Datastreams('<id>')?$expand=...` (one entity, no collection "
              f"filter): {e['a_ms']:.0f} ms vs {e['b_ms']:.1f} ms, {e['ratio']:.1f}x. As Things with full "
              f"Datastreams (`Things?$filter=properties/wijk eq ...&$expand=Datastreams($expand=Observations(...))`"
              f"): {t['a_ms']:.0f} ms vs {t['b_ms']:.1f} ms, "
              f"{t['ratio']:.1f}x."]
    mix = out["mix"]
    walk = out["walk"]
    lines += ["", f"walk to depth {walk['rows']:,} by nextLink ($top=10000 pages): {walk['seconds']:.1f} s;"
              f" $skip={meta['depth']:,} once: {out['skip_page_ms']:.0f} ms; first $count on a fresh cache: "
              f"{out['count_cold_ms']:.0f} ms", "",
              f"query mix, {mix['clients']} clients, {mix['seconds']:.0f} s: **{mix['requests_per_s']:.0f} requests/s**"
              f" ({mix['requests']:,} requests, errors: {mix['errors'] or 'none'})", "",
              "| query | requests | median | p90 |", "|---|---:|---:|---:|"]
    for name, q in mix["per_query"].items():
        lines.append(f"| {name} | {q['requests']:,} | {q['median_ms']:.1f} ms | {q['p90_ms']:.1f} ms |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Load, serve, measure, report; exit 1 when a target is missed (not in --small runs)."""
    args = parse_args(argv)
    state = Path(tempfile.mkdtemp(prefix="smartcity-api-bench-"))
    devs = data.devices()
    plan = data.Plan(args.long_points, args.points, args.days, int(time.time() * 1e6))
    registry = state / "registry.geojson"
    registry.write_text(json.dumps(data.registry_geojson(devs)))
    servers = Servers(state)
    try:
        log(f"influxd pid {servers.influxd.child.pid} at {servers.influxd.url}; loading "
            f"{plan.observations(devs):,} Observations of {len(devs)} devices ...")
        load = data.load(servers.influxd.url, DATABASE, plan, devs, args.max_load_seconds)
        load["snapshot_wait_s"] = wait_for_snapshots(state / "influx" / "influxdb" / "wal", 120)
        log(f"loaded in {load['seconds']:.1f} s; shards at rest after {load['snapshot_wait_s']:.0f} s more")
        servers.start_api(registry)
        log(f"API at {servers.api_url}")
        out = measure(args, servers, plan, devs)
    finally:
        servers.close()
        if args.keep_state:
            log(f"state kept in {state}")
        else:
            subprocess.run(["rm", "-rf", str(state)], check=False)
    meta = {"depth": args.depth, "small": args.small, "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d"), "repeats": args.repeats, "days": args.days,
            "devices": len(devs), "cpus": os.cpu_count()}
    print(report(meta, load, out))
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "load": load, **out}, indent=2))
    missed = [k for k in TARGETS if out[k]["ratio"] > TARGETS[k]]
    return 1 if missed and not args.small else 0


if __name__ == "__main__":
    sys.exit(main())
