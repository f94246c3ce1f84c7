"""Edge agent footprint: RSS, threads, CPU of `smartcity edge` at 10 and 100 readings/s, beside a bare reader and TB.

Target (performance.md, the edge issue): <= 35 MB RSS and <= 1 % of one core at 10 readings/s, durable
queue on. The peer for context: ThingsBoard IoT Gateway 3.8.5, 63 MB RSS, 16-19 threads, ~4 % of a core
at 10 msg/s (in-memory storage), as quoted in performance.md.

Per rate R (default 10 and 100 readings/s) and per process, one after the other against one private
mosquitto on a free loopback port:

- input: bench/edge_sim.py in a process of its own: a simulated RN2483 on a pty with R * T / 6 street
  lights, each sending one frame of 6 readings every T s (--report-interval, default 3.6: 6 lights at 10/s,
  60 at 100/s), staggered by a seeded random phase; a fresh simulator per phase, same seed, same schedule;
- ours: the real `smartcity edge` (durable SQLite WAL queue, MIC and counter checks, SenML batches at
  QoS 1 every --flush-interval), registry of that gateway and its lights, a fresh --state-dir;
- bare: bench/edge_bare.py (python + paho + pyserial: the agent's modem commands, one QoS 1 message of
  the frame's hex per frame, no decode, no queue);
- tb (the peer): ThingsBoard IoT Gateway 3.8.5 in a venv of its own (bench/edge_tb.py,
  bench/thingsboard/): TB's own custom serial connector and uplink converter, taught the same modem
  commands (rn2483_connector.py), the frame's hex as telemetry to v1/gateway/telemetry, in-memory
  storage as shipped, its own broker account; the bench answers its getSessionLimits RPC;
- a subscriber in this process counts what reaches the broker (SenML records for ours, 6 per frame for
  bare and per frame entry of TB's telemetry): readings delivered/s, so that a process that did not do
  the work cannot look cheap.

After the process delivers its first readings and a warm-up (--warmup, 10 s), the measured window of
--seconds (60; shorter runs are for smoke tests, not for the record) takes CPU = delta of utime + stime
from /proc/PID/stat over the window (schedstat as a cross-check), RSS (median of 1 s samples of VmRSS),
the peak (VmHWM), threads, wakeups/s (voluntary context switches of its threads: the idle cost of timed
waits), and also mosquitto's, the simulator's and the rest of the machine's CPU ('others', so that a
noisy window shows). After the window the simulator stops first, then the process (the agent drains its
queue); every frame the modem put on the serial line must have reached the broker (6 readings each).

    .venv/bin/python bench/edge.py --json /tmp/edge.json      # 2 rates x 3 processes x 60 s, ~8 min
    .venv/bin/python bench/edge.py --seconds 5 --warmup 2     # smoke run, ~1 min
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # bench/ is not in the editable install's package map

from bench import edge_support as s  # noqa: E402
from bench import edge_tb as tb  # noqa: E402
from bench.progress import log  # noqa: E402
from deploy.mosquitto import Broker, start_mosquitto  # noqa: E402
from deploy.processes import ChildProcess, new_password, spawn  # noqa: E402
from edge.lora_keys import KeyRing  # noqa: E402

RECORDABLE_SECONDS = 60.0
TARGET_RSS_MB, TARGET_CPU_PCT, TARGET_RATE = 35.0, 1.0, 10.0
PEER = "ThingsBoard IoT Gateway 3.8.5 (quoted): 63 MB RSS, 16-19 threads, ~4 % of a core at 10 msg/s, in-memory"
KINDS = ("ours", "bare", "tb")
LABELS = {"ours": "ours: smartcity edge", "bare": "bare: python + paho + pyserial",
          "tb": "peer: ThingsBoard IoT Gateway 3.8.5"}



class Bench:
    """The broker, the key file, the counting subscriber and the phases; close() stops what it started."""

    def __init__(self, args: argparse.Namespace, state: Path) -> None:
        self.args, self.state = args, state
        self.python = sys.executable
        self.keys = state / "lora-keys.json"
        KeyRing.generate().save(self.keys)
        self.passwords = {s.GATEWAY: new_password(), s.BARE_USER: new_password(), "operator": new_password(),
                          s.TB_USER: new_password()}
        self.with_tb = "tb" in args.kinds
        if self.with_tb:
            tb.ensure_venv(log)  # first run: pip's progress, tens of seconds
        self.broker: Broker = start_mosquitto(state / "broker", self.passwords)
        if self.with_tb:
            tb.grant(self.broker)
        self.consumer = s.Consumer("127.0.0.1", self.broker.port, self.passwords["operator"], tb=self.with_tb)
        self.consumer.start()
        self.children: list[ChildProcess] = []
        log(f"mosquitto pid {self.broker.child.pid} on 127.0.0.1:{self.broker.port}, "
            f"python {platform.python_version()}")

    def close(self) -> None:
        """Stop every child this bench started, by PID (the broker last)."""
        for child in reversed(self.children):
            child.stop()
        self.children.clear()
        try:
            self.consumer.stop()
        finally:
            self.broker.stop()

    def env(self, user: str) -> dict[str, str]:
        """The environment of a measured process: the broker account in SMARTCITY_MQTT_* (not on argv)."""
        return {**os.environ, "SMARTCITY_MQTT_HOST": "127.0.0.1", "SMARTCITY_MQTT_PORT": str(self.broker.port),
                "SMARTCITY_MQTT_USERNAME": user, "SMARTCITY_MQTT_PASSWORD": self.passwords[user],
                "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> ChildProcess:
        """Spawn a child (own session, log file, SIGTERM if we die) and remember it for close()."""
        child = spawn(name, argv, self.state / "logs" / f"{name}.log", env)
        self.children.append(child)
        return child

    def stop(self, child: ChildProcess) -> int | None:
        """Stop one child by its PID; returns its exit status."""
        child.stop()
        if child in self.children:
            self.children.remove(child)
        return child.process.returncode

    def start_sim(self, phase: str, lights: int) -> tuple[ChildProcess, str, Path]:
        """The simulator of one phase in its own process; returns it, the modem's pty and its stats file."""
        registry = self.state / f"registry-{lights}.geojson"
        registry.write_text(json.dumps(s.registry_geojson(lights)))
        port_map, stats = self.state / f"{phase}-ports.json", self.state / f"{phase}-sim-stats.json"
        sim = self.start(f"{phase}-sim", [
            self.python, str(ROOT / "bench" / "edge_sim.py"), "--registry", str(registry), "--lora-keys",
            str(self.keys), "--report-interval", f"{self.args.report_interval:g}", "--seed", str(self.args.seed),
            "--port-map", str(port_map), "--stats", str(stats), "--duration", str(self.phase_limit())])
        deadline = time.monotonic() + 30
        while (ports := s.read_json(port_map)) is None:
            if not sim.running() or time.monotonic() > deadline:
                raise RuntimeError(f"simulator gave no port map:\n{sim.log_tail()}")
            time.sleep(0.05)
        return sim, ports[s.GATEWAY]["lora"], stats

    def phase_limit(self) -> float:
        """The longest a phase may take (its children are given it as --duration too)."""
        return float(self.args.start_timeout + self.args.warmup + self.args.seconds + 60)

    def subject(self, kind: str, phase: str, lights: int, pty: str) -> tuple[ChildProcess, str]:
        """Start the measured process reading pty; returns it and the broker account it publishes as."""
        if kind == "ours":
            registry = self.state / f"registry-{lights}.geojson"
            argv = [self.python, "-m", "smartcity", "edge", "--registry", str(registry), "--gateway", s.GATEWAY,
                    "--port", f"lora={pty}", "--lora-keys", str(self.keys),
                    "--state-dir", str(self.state / phase), "--flush-interval", f"{self.args.flush_interval:g}",
                    "--duration", str(self.phase_limit())]
            # As on a gateway's base install, which has no orjson (this venv has it for the servers).
            return self.start(phase, argv, {**self.env(s.GATEWAY), "SMARTCITY_JSON": "stdlib"}), s.GATEWAY
        if kind == "tb":
            config = tb.write_config(self.state / phase, broker_port=self.broker.port, modem_pty=pty,
                                     password=self.passwords[s.TB_USER], logs_json=tb.package_logs_json())
            argv, env = tb.argv_env(config)
            return self.start(phase, argv, env), s.TB_USER
        argv = [self.python, str(ROOT / "bench" / "edge_bare.py"), "--port", pty, "--duration", str(self.phase_limit())]
        return self.start(phase, argv, self.env(s.BARE_USER)), s.BARE_USER

    def phase(self, rate: float, kind: str, rep: int) -> dict[str, Any]:  # noqa: PLR0915
        """One process at one rate: start, warm up, measure --seconds, stop; the figures of the window."""
        args = self.args
        lights = s.lights_for(rate, args.report_interval)
        phase = f"{kind}-{rate:g}-{rep}"
        others_before = s.wait_for_quiet(args.wait_quiet, log) if args.wait_quiet > 0 else None
        label = LABELS[kind]
        log(f"phase {phase}: {label}, {rate:g} readings/s ({lights} street lights every {args.report_interval:g} s)")
        sim, pty, sim_stats = self.start_sim(phase, lights)
        proc, user = self.subject(kind, phase, lights, pty)
        self.consumer.reset(user)
        try:
            t_start = time.monotonic()
            while self.consumer.snapshot(user).readings == 0:
                if not proc.running():
                    raise RuntimeError(f"{phase} exited with {proc.process.returncode}:\n{proc.log_tail()}")
                if time.monotonic() - t_start > args.start_timeout:
                    raise RuntimeError(f"{phase}: no readings after {args.start_timeout:.0f} s:\n{proc.log_tail()}")
                time.sleep(0.05)
            log(f"  first readings after {time.monotonic() - t_start:.1f} s; warm-up {args.warmup:g} s")
            time.sleep(args.warmup)
            pids = {"subject": proc.pid, "sim": sim.pid, "mosquitto": self.broker.child.pid}
            sim0 = s.read_json(sim_stats) or {}
            c0 = self.consumer.snapshot(user)
            cpu0 = {k: s.stat_cpu_seconds(p) for k, p in pids.items()}
            sched0, sw0 = s.schedstat_cpu_seconds(proc.pid), s.voluntary_switches(proc.pid)
            machine0, self0, t0 = s.machine_busy_seconds(), time.process_time(), time.monotonic()
            samples: list[dict[str, float]] = []
            next_log = t0 + min(10.0, args.seconds / 2)
            while (now := time.monotonic()) < t0 + args.seconds:
                if not proc.running():
                    raise RuntimeError(f"{phase} exited with {proc.process.returncode}:\n{proc.log_tail()}")
                samples.append(s.status(proc.pid))
                if now >= next_log:
                    next_log += 10.0
                    c = self.consumer.snapshot(user)
                    share = (s.stat_cpu_seconds(proc.pid) - cpu0["subject"]) / max(1e-9, now - t0)
                    log(f"  {now - t0:4.0f} / {args.seconds:g} s: {(c.readings - c0.readings) / (now - t0):6.1f} "
                        f"readings/s delivered, RSS {samples[-1]['VmRSS']:.1f} MB, CPU {share:.2%} of a core, "
                        f"{samples[-1]['Threads']:.0f} threads")
                time.sleep(min(1.0, max(0.0, t0 + args.seconds - time.monotonic())))
            cpu1 = {k: s.stat_cpu_seconds(p) for k, p in pids.items()}
            sched1, sw1 = s.schedstat_cpu_seconds(proc.pid), s.voluntary_switches(proc.pid)
            machine1, self1, t1 = s.machine_busy_seconds(), time.process_time(), time.monotonic()
            c1 = self.consumer.snapshot(user)
            final = s.status(proc.pid)
            time.sleep(1.1)  # the simulator writes its stats every second
            sim1 = s.read_json(sim_stats) or {}
        finally:
            # The simulator first: no more frames; the agent then drains its queue as it stops.
            self.stop(sim)
            if kind == "tb":
                tb.settle(lambda: self.consumer.snapshot(user).readings, proc.running)
            status = self.stop(proc)
        time.sleep(0.5)
        total = self.consumer.snapshot(user).readings
        sim_final = s.read_json(sim_stats) or {}
        frames = int(sim_final.get("delivered", 0))
        wall = t1 - t0
        cpu = {k: cpu1[k] - cpu0[k] for k in pids}
        machine = machine1 - machine0
        others = machine - sum(cpu.values()) - (self1 - self0)
        sim_wall = max(1e-9, sim1.get("t", 0) - sim0.get("t", 0))
        wakeups = sorted(((n - sw0.get(tid, 0)) / wall for tid, n in sw1.items()), reverse=True)
        result = {
            "phase": phase, "kind": kind, "label": label, "rate": rate, "lights": lights, "rep": rep,
            "seconds": wall, "warmup": args.warmup, "pid": proc.pid, "exit_status": status,
            "rss_mb": statistics.median(x["VmRSS"] for x in samples) if samples else final["VmRSS"],
            "rss_max_mb": max((x["VmRSS"] for x in samples), default=final["VmRSS"]),
            "hwm_mb": final["VmHWM"], "pss_mb": final.get("Pss"), "uss_mb": final.get("USS"),
            "threads": max((x["Threads"] for x in samples), default=final["Threads"]),
            "cpu_s": cpu["subject"], "cpu_pct": 100 * cpu["subject"] / wall,
            "cpu_pct_schedstat": 100 * (sched1 - sched0) / wall,
            "wakeups_per_s": sum(wakeups), "wakeups_per_s_by_thread": wakeups,
            "delivered_readings": c1.readings - c0.readings, "delivered_messages": c1.messages - c0.messages,
            "delivered_per_s": (c1.readings - c0.readings) / wall,
            "offered_per_s": (sim1.get("uplinks", 0) - sim0.get("uplinks", 0)) * s.READINGS_PER_LIGHT_FRAME / sim_wall,
            "frames_dropped_at_modem": sim1.get("dropped", 0) - sim0.get("dropped", 0),
            "phase_frames_on_serial": frames, "phase_readings_delivered": total,
            "phase_readings_lost": frames * s.READINGS_PER_LIGHT_FRAME - total,
            "sim_cpu_pct": 100 * cpu["sim"] / wall, "mosquitto_cpu_pct": 100 * cpu["mosquitto"] / wall,
            "others_cpu_pct": 100 * others / wall, "others_before_pct": None if others_before is None
            else 100 * others_before,
        }
        log(f"  {label}: RSS {result['rss_mb']:.1f} MB (peak {result['hwm_mb']:.1f}), {result['threads']:.0f} "
            f"threads, CPU {result['cpu_pct']:.2f} % of a core (schedstat {result['cpu_pct_schedstat']:.2f} %), "
            f"{result['wakeups_per_s']:.0f} wakeups/s, "
            f"{result['delivered_per_s']:.1f} readings/s delivered of {result['offered_per_s']:.1f} offered, "
            f"{result['frames_dropped_at_modem']} frames dropped at the modem; "
            f"others {result['others_cpu_pct']:.0f} %; "
            f"whole phase: {frames} frames on the serial line, {total} readings delivered")
        return result


def tree_state() -> dict[str, Any]:
    """Which agent code ran: the commit, and the files under the agent's packages that differ from it."""
    def git(*argv: str) -> str:
        try:
            return subprocess.run(["git", "-C", str(ROOT), *argv], capture_output=True, text=True, timeout=20,
                                  check=False).stdout.rstrip()
        except (OSError, subprocess.TimeoutExpired):
            return ""

    dirty = git("status", "--porcelain", "--", "edge", "core", "smartcity").splitlines()
    return {"head": git("rev-parse", "--short", "HEAD") or None, "uncommitted": [x[3:] for x in dirty]}


# --- the report ---------------------------------------------------------------------------------------------

def report(phases: list[dict[str, Any]], meta: dict[str, Any]) -> list[str]:
    """The Markdown tables: one row per phase, then agent / bare per rate and repeat, then the targets."""
    out = [f"edge agent footprint, {meta['date']}, python {meta['python']}, {meta['nproc']} cores, "
           f"window {meta['seconds']:g} s after {meta['warmup']:g} s warm-up"
           + ("" if meta["seconds"] >= RECORDABLE_SECONDS else " (shorter than 60 s: a smoke run, not for the record)"),
           f"agent code: commit {meta['tree']['head']} + {len(meta['tree']['uncommitted'])} uncommitted files under "
           "edge/, core/, smartcity/" + (f" ({', '.join(meta['tree']['uncommitted'][:8])}"
                                         f"{', ...' if len(meta['tree']['uncommitted']) > 8 else ''})"
                                         if meta["tree"]["uncommitted"] else ""),
           "", "| rate | process | RSS MB | peak RSS MB | threads | CPU % of a core | (schedstat) | wakeups/s "
           "| readings delivered/s | offered/s | frames dropped at modem | mosquitto CPU % | others CPU % |",
           "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in phases:
        run = "" if meta["repeat"] == 1 else f", run {r['rep'] + 1}"
        out.append(f"| {r['rate']:g}/s | {r['label']}{run} "
                   f"| {r['rss_mb']:.1f} | {r['hwm_mb']:.1f} | {r['threads']:.0f} | {r['cpu_pct']:.2f} "
                   f"| {r['cpu_pct_schedstat']:.2f} | {r['wakeups_per_s']:.0f} "
                   f"| {r['delivered_per_s']:.1f} | {r['offered_per_s']:.1f} "
                   f"| {r['frames_dropped_at_modem']} | {r['mosquitto_cpu_pct']:.2f} | {r['others_cpu_pct']:.1f} |")
    out += ["", "| rate | run | RSS ours / bare | peak RSS ours / bare | threads ours / bare | CPU ours / bare "
            "| delivered ours / bare |", "|---:|---:|---:|---:|---:|---:|---:|"]
    for (rate, rep), pair in sorted(pairs(phases, "bare").items()):
        ours, bare = pair["ours"], pair["bare"]
        out.append(f"| {rate:g}/s | {rep + 1} | {ratio(ours['rss_mb'], bare['rss_mb'])} "
                   f"| {ratio(ours['hwm_mb'], bare['hwm_mb'])} | {ours['threads']:.0f} / {bare['threads']:.0f} "
                   f"| {ratio(ours['cpu_pct'], bare['cpu_pct'])} "
                   f"| {ratio(ours['delivered_per_s'], bare['delivered_per_s'])} |")
    tb_pairs = sorted(pairs(phases, "tb").items())
    if tb_pairs:
        out += ["", "| rate | run | RSS ours / TB | peak RSS ours / TB | threads ours / TB | CPU ours / TB "
                "| wakeups/s ours / TB | delivered ours / TB |", "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for (rate, rep), pair in tb_pairs:
        ours, peer = pair["ours"], pair["tb"]
        out.append(f"| {rate:g}/s | {rep + 1} | {ratio(ours['rss_mb'], peer['rss_mb'])} "
                   f"| {ratio(ours['hwm_mb'], peer['hwm_mb'])} | {ours['threads']:.0f} / {peer['threads']:.0f} "
                   f"| {ratio(ours['cpu_pct'], peer['cpu_pct'])} "
                   f"| {ours['wakeups_per_s']:.0f} / {peer['wakeups_per_s']:.0f} "
                   f"| {ratio(ours['delivered_per_s'], peer['delivered_per_s'])} |")
    out.append("")
    for r in (r for r in phases if r["kind"] == "ours" and r["rate"] == TARGET_RATE):
        ok_rss, ok_cpu = r["hwm_mb"] <= TARGET_RSS_MB, r["cpu_pct"] <= TARGET_CPU_PCT
        out.append(f"- target at {TARGET_RATE:g} readings/s, run {r['rep'] + 1}: RSS <= {TARGET_RSS_MB:g} MB "
                   f"{'met' if ok_rss else 'MISSED'} (peak {r['hwm_mb']:.1f} MB), CPU <= {TARGET_CPU_PCT:g} % "
                   f"{'met' if ok_cpu else 'MISSED'} ({r['cpu_pct']:.2f} %)")
    out.append(f"- for context, from performance.md (other hardware; the TB rows above are this run's): {PEER}")
    return out


def pairs(phases: list[dict[str, Any]], other: str) -> dict[tuple[float, int], dict[str, dict[str, Any]]]:
    """Phases grouped by (rate, repeat), keyed by kind; only those with both ours and `other`."""
    out: dict[tuple[float, int], dict[str, dict[str, Any]]] = {}
    for r in phases:
        out.setdefault((r["rate"], r["rep"]), {})[r["kind"]] = r
    return {k: v for k, v in out.items() if {"ours", other} <= set(v)}


def ratio(a: float, b: float) -> str:
    """a / b as 'N.NNx' ('-' if b is 0)."""
    return f"{a / b:.2f}x" if b else "-"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line, checked."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--rates", default="10,100", help="readings/s, comma-separated")
    p.add_argument("--seconds", type=float, default=60.0, help="measured window per phase (>= 60 for the record)")
    p.add_argument("--warmup", type=float, default=10.0, help="seconds after the first readings before the window")
    p.add_argument("--report-interval", type=float, default=3.6,
                   help="seconds between a street light's frames (lights = rate x this / 6)")
    p.add_argument("--flush-interval", type=float, default=1.0, help="`smartcity edge --flush-interval` (its default)")
    p.add_argument("--kinds", "--readers", default=",".join(KINDS),
                   help="processes per rate among ours,bare,tb, in this order (reversed every other repeat)")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--seed", type=int, default=20261202, help="the simulator's seed (same input in every phase)")
    p.add_argument("--start-timeout", type=float, default=60.0, help="seconds to wait for a process's first readings")
    p.add_argument("--wait-quiet", type=float, default=300.0,
                   help="before each phase, wait at most this long while others keep the machine busy (0: do not)")
    p.add_argument("--json", type=Path, help="also write every figure here")
    p.add_argument("--keep-state", action="store_true", help="keep the temp dir (logs) and say where")
    args = p.parse_args(argv)
    rates = [float(x) for x in args.rates.split(",") if x]
    kinds = [k for k in args.kinds.split(",") if k]
    if not rates or not kinds or set(kinds) - set(KINDS) or args.seconds <= 0 or args.repeat < 1:
        p.error("need rates > 0, kinds among ours,bare,tb, --seconds > 0 and --repeat >= 1")
    for rate in rates:
        s.lights_for(rate, args.report_interval)
    args.rates, args.kinds = rates, kinds
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the phases, print the tables; exit 1 if a phase failed, delivered nothing or lost readings."""
    args = parse_args(argv)
    rates, kinds = args.rates, args.kinds
    if args.seconds < RECORDABLE_SECONDS:
        log(f"note: --seconds {args.seconds:g} < {RECORDABLE_SECONDS:g}: a smoke run, not figures for the record")
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    state = Path(tempfile.mkdtemp(prefix="bench-edge-"))
    tree = tree_state()  # before the phases: the code they run
    phases: list[dict[str, Any]] = []
    failed: list[str] = []
    bench = None
    try:
        bench = Bench(args, state)
        for rep in range(args.repeat):
            for rate in rates:
                for kind in kinds if rep % 2 == 0 else kinds[::-1]:
                    try:
                        phases.append(bench.phase(rate, kind, rep))
                    except RuntimeError as exc:
                        log(f"  failed: {exc}")
                        failed.append(f"{kind}-{rate:g}-{rep}")
    except KeyboardInterrupt:
        log("interrupted")
        failed.append("interrupted")
    finally:
        if bench:
            bench.close()
        if args.keep_state:
            log(f"state kept in {state}")
        else:
            shutil.rmtree(state, ignore_errors=True)
    meta = {"python": platform.python_version(), "nproc": os.cpu_count(), "seconds": args.seconds,
            "warmup": args.warmup, "report_interval": args.report_interval, "flush_interval": args.flush_interval,
            "repeat": args.repeat, "rates": rates, "date": time.strftime("%Y-%m-%d %H:%M"),
            "loadavg": os.getloadavg(), "failed": failed, "peer_quoted": PEER, "tree": tree}
    print("\n".join(report(phases, meta)))
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "phases": phases}, indent=2))
    short = [r["phase"] for r in phases if not r["delivered_readings"] or r["exit_status"] != 0
             or r["phase_readings_lost"] > max(2 * s.READINGS_PER_LIGHT_FRAME, 0.02 * r["phase_readings_delivered"])]
    if short:
        log(f"delivered nothing, exited with a status other than 0, or lost readings (frames the modem put on "
            f"the serial line x 6 - readings that reached the broker): {', '.join(short)}")
    return 1 if failed or short else 0


if __name__ == "__main__":
    sys.exit(main())
