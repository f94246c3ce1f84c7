"""Rules service benchmarks: MQTT payloads in -> commands out on one core, beside a bare subscriber and Node-RED.

Two measurements, in one run, against one private mosquitto (deploy.mosquitto.start_mosquitto, with
set_tcp_nodelay) on a free loopback port:

- throughput ("service path"): one publisher process (core 0, with mosquitto and this script) publishes the
  same pre-encoded stream of SenML packs (default 200 records, 13.2 % of them read by the rules) from N
  gateways at QoS 1 as fast as the broker takes them, to each consumer in turn, pinned to core 1:
  the bare paho subscriber (receive + orjson decode only), ours (`smartcity rules` with the two rules:
  presence dimming and rain hysteresis, version 2), and Node-RED 4.1.8 (mqtt in -> one function node doing
  the same rules -> mqtt out). Each consumer's rate comes from its own counters; its CPU seconds and RSS
  from /proc. The trio is repeated (--repeat) to show the noise.
- latency: a paced stream (default 100 packs/s of 200 = 20k readings/s) with presence readings put in at
  known times; a listener records when the commands arrive; p50/p99 of (first command received - presence
  published), for ours and Node-RED.

Targets (performance.md): ours >= 1.5x Node-RED's sustained readings/s per core, >= 70 % of the bare
subscriber's; p99 reading -> command <= 10 ms at 20k readings/s.

    .venv/bin/python bench/rules_service.py            # 3M readings per phase, 2 repeats, latency 40 s
    .venv/bin/python bench/rules_service.py --quick    # smoke run: a few seconds per phase
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # deploy/ and bench/ are not in the editable install's package map

from bench import rules_service_support as s  # noqa: E402
from bench.progress import log, stop_all  # noqa: E402
from bench.rules_service_clients import Child, PublisherSpec, listener, publisher  # noqa: E402
from bench.rules_service_consumers import Bare, Consumer, NodeRed, Ours, ensure_node_red  # noqa: E402
from bench.rules_service_report import latency_stats, report  # noqa: E402
from deploy.mosquitto import start_mosquitto  # noqa: E402
from deploy.processes import new_password  # noqa: E402


def wait_for_quiet_machine(limit: float) -> None:
    """Wait (bounded) while pytest runs or others keep the machine busy: on 2 cores the figures would be noise."""
    deadline = time.monotonic() + limit
    me = os.getpid()
    while limit > 0:
        busy = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if int(pid) != me and "pytest" in cmd and "rules_service" not in cmd:
                busy.append(pid)
        b0 = s.machine_busy_seconds()
        time.sleep(1)
        load = s.machine_busy_seconds() - b0  # our broker and this process are idle now
        if not busy and load < 0.25:
            return
        why = (f"pytest is running (pid {', '.join(busy[:3])})" if busy
               else f"the machine is busy ({load:.0%} of a core)")
        if time.monotonic() > deadline:
            log(f"  warning: {why}; measuring anyway: see the 'others' CPU column")
            return
        log(f"  {why}; waiting")
        time.sleep(9)


class Bench:
    """The broker, the workload and the phases; close() stops every process it started."""

    def __init__(self, args: argparse.Namespace, state: Path) -> None:
        self.args, self.state = args, state
        self.stoppers: list[Any] = []
        self.cores = (0, 1) if (os.cpu_count() or 1) >= 2 and not args.no_pin else (None, None)
        if self.cores[0] is not None:
            os.sched_setaffinity(0, {self.cores[0]})  # children (publisher, listener, mosquitto) inherit it
        g = args.gateways
        self.passwords = {s.gateway_id(i): new_password() for i in range(g)} | {
            "rules": new_password(), "operator": new_password()}
        self.registry = state / "registry.geojson"
        self.registry.write_text(json.dumps(s.registry_geojson(g)))
        self.nr_registry = state / "node-red-registry.json"
        self.nr_registry.write_text(json.dumps(s.node_red_registry(g)))
        self.rules = state / "rules.toml"
        self.rules.write_text(s.rules_toml(urgent=not args.not_urgent))
        self.latency_rules = state / "rules-latency.toml"
        self.latency_rules.write_text(s.rules_toml(hold=f"{args.hold:g}s", night_only=False))
        packs = -(-args.readings // (args.batch * g))
        self.readings = packs * args.batch * g
        log(f"workload: {g} gateways, {len(s.devices(g))} devices, {g * s.WIJKEN_PER_GATEWAY} wijken, "
            f"{self.readings:,} readings per phase in packs of {args.batch} "
            f"({s.rule_read_fraction(g):.1%} read by the rules)")
        t0 = time.monotonic()
        self.stream = state / "stream.bin"
        s.save_stream(self.stream, [s.gateway_packs(i, g, packs, args.batch) for i in range(g)])
        lat_packs = -(-int(args.latency_rate * args.latency_duration) // g) + 1
        self.latency_stream = state / "stream-latency.bin"
        s.save_stream(self.latency_stream, [s.gateway_packs(i, g, min(lat_packs, 2000), args.batch, presence_p=0.0)
                                            for i in range(g)])
        self.probe_packs = s.gateway_packs(0, g, 50, args.batch, presence_p=0.0)
        log(f"  encoded in {time.monotonic() - t0:.1f} s ({self.stream.stat().st_size / 1e6:.0f} MB)")
        self.broker = start_mosquitto(state / "broker", self.passwords)
        self.stoppers.append(self.broker.stop)
        if self.cores[0] is not None:
            os.sched_setaffinity(self.broker.child.pid, {self.cores[0]})
        self.node_red_version = ensure_node_red(log) if "node-red" in args.consumers else None

    def close(self) -> None:
        stop_all(self.stoppers)

    def consumer(self, kind: str) -> Consumer:
        common = (self.state, self.broker.port, self.passwords["rules"], self.cores[1])
        if kind == "bare":
            return Bare(*common, decoder=self.args.decoder)
        if kind == "node-red":
            return NodeRed(*common, registry_json=self.nr_registry)
        if kind == "ours":
            return Ours(*common, registry=self.registry, rules=self.rules, latency_rules=self.latency_rules,
                        tick=self.args.tick)
        raise SystemExit(f"unknown consumer {kind!r}")

    def listener(self) -> Child:
        child = Child(listener, "127.0.0.1", self.broker.port, self.passwords["operator"], self.args.timeout)
        child.take("ready", 60)
        return child

    def start_consumer(self, c: Consumer, phase: str, latency_hold: float | None) -> dict[str, Any]:
        """Start it, then publish probe packs (no presence) until it counts them: returns its counts then."""
        import paho.mqtt.client as paho  # noqa: PLC0415
        from paho.mqtt.enums import CallbackAPIVersion  # noqa: PLC0415

        c.start(phase, latency_hold)
        self.stoppers.append(c.stop)
        deadline = time.monotonic() + 90
        gw = s.gateway_id(0)
        probe = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-probe-{phase}", protocol=paho.MQTTv5)
        probe.username_pw_set(gw, self.passwords[gw])
        probe.connect("127.0.0.1", self.broker.port)
        probe.loop_start()
        sent = 0
        try:
            # Until the first probe is counted, then a warm-up of the rest; wait until all are counted.
            while time.monotonic() < deadline:
                if not c.running():
                    raise RuntimeError(f"{c.label} exited:\n{c.log_tail()}")
                got = c.counts()
                if got and got["records"] > 0:
                    break
                probe.publish(f"smartcity/v1/gw/{gw}/readings", s.with_base_time(self.probe_packs[0], time.time()),
                              qos=1).wait_for_publish(5)
                sent += 1
                time.sleep(0.3)
            else:
                raise RuntimeError(f"{c.label} did not count a probe pack in 90 s:\n{c.log_tail()}")
            for p in self.probe_packs[1:]:
                probe.publish(f"smartcity/v1/gw/{gw}/readings", s.with_base_time(p, time.time()), qos=1)
                sent += 1
            while time.monotonic() < deadline:
                got = c.counts()
                if got and got["records"] >= len(self.probe_packs) * self.args.batch:
                    time.sleep(0.5)
                    return c.counts() or got
                time.sleep(0.05)
            raise RuntimeError(f"{c.label} counted {got and got['records']} of the probe records")
        finally:
            probe.disconnect()
            probe.loop_stop()

    def throughput(self, kind: str, phase: str) -> dict[str, Any]:  # noqa: PLR0915
        args = self.args
        wait_for_quiet_machine(args.wait_quiet)
        c = self.consumer(kind)
        log(f"phase {phase}: {c.label}, {self.readings:,} readings")
        base = self.start_consumer(c, phase, None)
        lis = self.listener()
        spec = PublisherSpec("127.0.0.1", self.broker.port, {k: v for k, v in self.passwords.items() if
                                                             k.startswith("gw-")}, self.stream, "stream",
                             args.timeout, inflight=args.inflight)
        pub = Child(publisher, spec)
        try:
            pub.take("ready", 120)
            expected = base["records"] + self.readings
            pids = {"consumer": c.pid, "mosquitto": self.broker.child.pid}
            cpu0 = {k: s.cpu_seconds(p) for k, p in pids.items()}
            machine0, self0 = s.machine_busy_seconds(), time.process_time()
            t_go = time.monotonic()
            pub.event.set()
            samples: list[tuple[float, int]] = [(t_go, base["records"])]
            done_pub, t_done, last_change, last_log = None, None, t_go, t_go
            got = base
            while time.monotonic() < t_go + args.timeout:
                done_pub = done_pub or pub.poll("done")
                now = time.monotonic()
                got = c.counts() or got
                if got["records"] != samples[-1][1]:
                    last_change = now
                samples.append((now, got["records"]))
                if got["records"] >= expected:
                    t_done = now
                    break
                if not c.running():
                    log(f"  {c.label} exited:\n{c.log_tail()}")
                    break
                if done_pub and now - last_change > args.stall:
                    log(f"  stalled: no progress for {args.stall:.0f} s")
                    break
                if now - last_log >= 2:
                    last_log = now
                    log(f"  {got['records'] - base['records']:,} / {self.readings:,} after {now - t_go:.1f} s")
                near = got["records"] >= base["records"] + 0.95 * self.readings
                time.sleep(0.02 if near else args.poll)
            cpu = {k: s.cpu_seconds(p) - cpu0[k] for k, p in pids.items()}
            cpu["machine"] = s.machine_busy_seconds() - machine0
            cpu["bench"] = time.process_time() - self0
            rss, hwm = s.rss_mb(c.pid), s.rss_mb(c.pid, "VmHWM")
            done_pub = done_pub or pub.take("done", args.timeout)
            lis.event.set()
            commands = lis.take("done", 30)
        finally:
            pub.close()
            lis.close()
            c.stop()
        t_first = done_pub["t_first"]
        counted = got["records"] - base["records"]
        seconds = (t_done - t_first) if t_done else None
        own_t_last = got.get("t_last")
        sustained = sustained_rate(samples, base["records"], self.readings)
        levels: dict[str, int] = {}
        for _, _, action, value in commands:
            levels[f"{action}={value}"] = levels.get(f"{action}={value}", 0) + 1
        result = {
            "phase": phase, "kind": kind, "label": c.label, "readings": self.readings, "counted": counted,
            "lost": max(0, self.readings - counted), "seconds": seconds,
            "rate": self.readings / seconds if seconds else None, "sustained_rate": sustained,
            "own_seconds": (own_t_last - t_first) if own_t_last and t_done else None,
            "cpu": cpu, "cpu_publisher": done_pub["cpu"],
            "cpu_others": cpu["machine"] - cpu["consumer"] - cpu["mosquitto"] - cpu["bench"] - done_pub["cpu"],
            "per_cpu_second": counted / cpu["consumer"] if cpu["consumer"] else None,
            "utilisation": cpu["consumer"] / (t_done - t_go) if t_done else None,
            "rss_mb": rss, "hwm_mb": hwm,
            "publish_rate": self.readings / max(1e-9, done_pub["t_last"] - t_first),
            "unacked_publishes": done_pub["messages"] - done_pub["acked"],
            "messages": got["messages"] - base["messages"], "commands_received": len(commands),
            "commands_by_kind": levels, "counters": {k: v for k, v in (got.get("raw") or {}).items()
                                                     if not k.startswith(("python_", "process_"))},
        }
        log(f"  {c.label}: {fmt(result['rate'])} readings/s ({fmt(sustained)} sustained), "
            f"{fmt(result['per_cpu_second'])} per CPU-s, {result['utilisation'] or 0:.0%} of core, "
            f"RSS {rss:.0f} MB, lost {result['lost']}, commands {levels}")
        return result

    def latency(self, kind: str, nodelay: bool = False) -> dict[str, Any]:
        args = self.args
        wait_for_quiet_machine(args.wait_quiet)
        c = self.consumer(kind)
        c.nodelay = nodelay
        c.label += " + client TCP_NODELAY" if nodelay else ""
        phase = f"latency-{kind}{'-nodelay' if nodelay else ''}"
        rate = args.latency_rate * args.batch
        log(f"phase {phase}: {c.label}, {rate:,.0f} readings/s for {args.latency_duration:.0f} s, "
            f"presence hold {args.hold:g} s")
        self.start_consumer(c, phase, args.hold)
        lis = self.listener()
        g = args.gateways
        wijken = [(gi, wk) for gi in range(g) for wk in s.gateway_wijken(gi)[1]]
        period = max(2.5, 2 * args.hold + 0.5)
        triggers = []
        for j, (gi, wk) in enumerate(wijken):
            t = 1.0 + j * period / len(wijken)
            while t < args.latency_duration - 1.0:
                triggers.append((t, gi, f"occ-{wk}-00"))
                t += period
        spec = PublisherSpec("127.0.0.1", self.broker.port, {k: v for k, v in self.passwords.items() if
                                                             k.startswith("gw-")}, self.latency_stream, "paced",
                             args.timeout, rate=args.latency_rate, duration=args.latency_duration,
                             triggers=tuple(triggers))
        pub = Child(publisher, spec)
        try:
            pub.take("ready", 120)
            cpu0, machine0 = s.cpu_seconds(c.pid), s.machine_busy_seconds()
            mosq0 = s.cpu_seconds(self.broker.child.pid)
            t_go = time.monotonic()
            pub.event.set()
            done_pub = pub.take("done", args.latency_duration + args.timeout)
            time.sleep(max(1.0, period))
            cpu = s.cpu_seconds(c.pid) - cpu0
            machine = s.machine_busy_seconds() - machine0
            mosq = s.cpu_seconds(self.broker.child.pid) - mosq0
            wall = time.monotonic() - t_go
            lis.event.set()
            commands = lis.take("done", 30)
            hwm = s.rss_mb(c.pid, "VmHWM")
            final = c.counts() or {}
        finally:
            pub.close()
            lis.close()
            c.stop()
        wijk_of = {d.id: d.wijk for d in s.devices(g)}
        lat = latency_stats(done_pub["triggers"], commands, wijk_of, period)
        result = {"phase": phase, "kind": kind, "label": c.label, "readings_per_s": rate,
                  "duration": args.latency_duration, "hold": args.hold, "cpu": cpu, "utilisation": cpu / wall,
                  "hwm_mb": hwm, "machine_cpu": machine, "mosquitto_cpu": mosq, "wall": wall,
                  "others_cpu": machine - cpu - mosq - done_pub["cpu"],
                  "commands_received": len(commands), "publisher_cpu": done_pub["cpu"],
                  "achieved_rate": done_pub["messages"] * args.batch / max(1e-9, done_pub["t_published"]
                                                                            - done_pub["t_first"]),
                  "counters": {k: v for k, v in (final.get("raw") or {}).items()
                               if not k.startswith(("python_", "process_"))}, **lat}
        log(f"  {c.label}: {lat['matched']}/{lat['triggers']} triggers answered; first command p50 "
            f"{fmt_ms(lat['p50_ms'])}, p99 {fmt_ms(lat['p99_ms'])}, max {fmt_ms(lat['max_ms'])}; all 40 lights p99 "
            f"{fmt_ms(lat['all_p99_ms'])}; consumer {result['utilisation']:.0%} of a core")
        return result


def sustained_rate(samples: list[tuple[float, int]], base: int, total: int) -> float | None:
    """Least-squares slope of count over time between 10 % and 90 % of the phase's readings."""
    pts = [(t, n) for t, n in samples if base + 0.1 * total <= n <= base + 0.9 * total]
    if len(pts) < 3:
        return None
    mt = statistics.fmean(t for t, _ in pts)
    mn = statistics.fmean(n for _, n in pts)
    var = sum((t - mt) ** 2 for t, _ in pts)
    return sum((t - mt) * (n - mn) for t, n in pts) / var if var else None


def fmt(x: float | None) -> str:
    return f"{x:,.0f}" if x else "-"


def fmt_ms(x: float | None) -> str:
    return f"{x:.1f} ms" if x is not None else "-"


def main(argv: list[str] | None = None) -> int:  # noqa: PLR0915
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--readings", type=int, default=3_000_000, help="readings per throughput phase")
    p.add_argument("--quick", action="store_true", help="smoke run: 300k readings, 1 repeat, 6 s latency")
    p.add_argument("--gateways", type=int, default=8, help="gateways (3 wijken of 82 devices each)")
    p.add_argument("--batch", type=int, default=200, help="SenML records per MQTT message")
    p.add_argument("--consumers", default="bare,ours,node-red", help="throughput consumers, in this order")
    p.add_argument("--repeat", type=int, default=2, help="how many times the trio runs")
    p.add_argument("--latency", default="ours,node-red", help="latency consumers ('' for none)")
    p.add_argument("--latency-rate", type=float, default=100, help="packs per second in the latency phase")
    p.add_argument("--latency-duration", type=float, default=40)
    p.add_argument("--hold", type=float, default=1.0, help="presence hold in the latency phase (s)")
    p.add_argument("--nodelay", action="store_true",
                   help="repeat the latency phases with TCP_NODELAY set on the consumers' sockets (a hook)")
    p.add_argument("--not-urgent", action="store_true",
                   help="experiment: ours' presence rule without `urgent` in the throughput phases (evaluated "
                        "on the tick only; Node-RED's flow is unchanged)")
    p.add_argument("--tick", type=float, default=0.02, help="`smartcity rules --tick`")
    p.add_argument("--decoder", default="orjson", choices=["orjson", "columns", "msgspec"],
                   help="what the bare subscriber decodes with")
    p.add_argument("--inflight", type=int, default=500, help="unacknowledged publishes per gateway connection")
    p.add_argument("--poll", type=float, default=0.25, help="seconds between counter polls")
    p.add_argument("--timeout", type=float, default=300)
    p.add_argument("--stall", type=float, default=20)
    p.add_argument("--no-pin", action="store_true", help="do not pin to cores")
    p.add_argument("--wait-quiet", type=float, default=900,
                   help="at most this many seconds to wait before each phase while pytest or anything else keeps the "
                        "machine busy (0: do not wait)")
    p.add_argument("--json", type=Path, help="also write every figure here")
    p.add_argument("--keep-state", action="store_true", help="keep the temp dir (logs) and say where")
    args = p.parse_args(argv)
    if args.quick:
        args.readings, args.repeat, args.latency_duration = min(args.readings, 300_000), 1, 6.0
    consumers = [x for x in args.consumers.split(",") if x]
    args.consumers = consumers + [x for x in args.latency.split(",") if x and x not in consumers]
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    state = Path(tempfile.mkdtemp(prefix="bench-rules-service-"))
    bench = None
    results: dict[str, Any] = {"throughput": [], "latency": []}
    try:
        bench = Bench(args, state)
        for rep in range(args.repeat):
            for kind in consumers:
                results["throughput"].append(bench.throughput(kind, f"{kind}-{rep + 1}"))
        for nodelay in (False, True) if args.nodelay else (False,):
            for kind in [x for x in args.latency.split(",") if x]:
                results["latency"].append(bench.latency(kind, nodelay))
    except KeyboardInterrupt:
        log("interrupted")
    finally:
        if bench:
            bench.close()
        if args.keep_state:
            log(f"state kept in {state}")
        else:
            shutil.rmtree(state, ignore_errors=True)
    meta = {"python": platform.python_version(), "nproc": os.cpu_count(), "batch": args.batch,
            "gateways": args.gateways, "readings": bench.readings if bench else None,
            "node_red": bench.node_red_version if bench else None, "tick": args.tick,
            "pinned": bench is not None and bench.cores[0] is not None, "date": time.strftime("%Y-%m-%d %H:%M")}
    print("\n".join(report(results, meta)))
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, **results}, indent=2, default=str))
    bad = any(r["lost"] or not r["seconds"] for r in results["throughput"])
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
