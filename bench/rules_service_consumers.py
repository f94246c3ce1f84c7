"""The three consumers bench/rules_service.py measures, each a process pinned to core 1 and counted by its own counters.

- `bare`: bench/rules_bare_sub.py, a paho subscriber that only receives and decodes (its counter file);
- `ours`: `smartcity rules` (its /metrics: the intake counters of rules/service_metrics.py);
- `node-red`: Node-RED 4.1.8 running bench/node-red/flows.json (its GET /stats route).

Each is started with `taskset -c CORE` so that every thread it makes stays on that core, and stopped by
its PID (deploy.processes.spawn / ChildProcess.stop).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from deploy.processes import ChildProcess, free_port, spawn

ROOT = Path(__file__).resolve().parents[1]
NODE_RED_DIR = ROOT / "bench" / "node-red"
NODE_RED_VERSION = "4.1.8"
# The intake counters of `smartcity rules` whose sum is every record it received (rules/service_metrics.py).
OURS_RECORD_COUNTERS = ("readings_used", "not_used", "wrong_gateway", "too_late", "future", "bad_value",
                        "bad_records")


def pinned(argv: list[str], core: int | None) -> list[str]:
    taskset = shutil.which("taskset")
    return [taskset, "-c", str(core), *argv] if core is not None and taskset else argv


# The latency experiment `--nodelay`: neither paho-mqtt nor MQTT.js sets TCP_NODELAY on its socket, so a
# command written right after a PUBACK waits (Nagle) until the broker ACKs that PUBACK, i.e. until the next
# readings message arrives. These hooks set TCP_NODELAY in the consumer process without changing its code.
PY_NODELAY = """import socket
_create_connection = socket.create_connection
def create_connection(*args, **kwargs):
    sock = _create_connection(*args, **kwargs)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock
socket.create_connection = create_connection
"""
JS_NODELAY = """const net = require("net");
const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) { this.setNoDelay(true); return connect.apply(this, args); };
"""


class Consumer:
    """One consumer process; counts() -> {records, messages, commands, t_last} or None while unreachable."""

    kind = ""
    label = ""

    def __init__(self, state: Path, broker_port: int, password: str, core: int | None) -> None:
        self.state, self.broker_port, self.password, self.core = state, broker_port, password, core
        self.child: ChildProcess | None = None
        self.nodelay = False  # set TCP_NODELAY on the consumer's sockets (hooks above)

    def nodelay_env(self, d: Path, env: dict[str, str]) -> dict[str, str]:
        if not self.nodelay:
            return env
        hook = d / "nodelay-hook"
        hook.mkdir(parents=True, exist_ok=True)
        (hook / "sitecustomize.py").write_text(PY_NODELAY)
        (hook / "nodelay.js").write_text(JS_NODELAY)
        return env | {"PYTHONPATH": ":".join(filter(None, [str(hook), env.get("PYTHONPATH")])),
                      "NODE_OPTIONS": f"--require {hook / 'nodelay.js'}"}

    @property
    def pid(self) -> int:
        assert self.child is not None
        return self.child.pid

    def running(self) -> bool:
        return self.child is not None and self.child.running()

    def log_tail(self) -> str:
        return self.child.log_tail(30) if self.child else ""

    def start(self, phase: str, latency_hold: float | None) -> None:
        raise NotImplementedError

    def counts(self) -> dict[str, Any] | None:
        raise NotImplementedError

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop(timeout=15)


class Bare(Consumer):
    kind, label = "bare", "bare paho subscriber (orjson)"

    def __init__(self, *a: Any, decoder: str = "orjson", **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.decoder = decoder
        self.label = f"bare paho subscriber ({decoder})"
        self.counter = Path()

    def start(self, phase: str, latency_hold: float | None) -> None:
        d = self.state / phase
        d.mkdir(parents=True, exist_ok=True)
        self.counter = d / "bare-counter.json"
        argv = [sys.executable, str(ROOT / "bench" / "rules_bare_sub.py"), "--port", str(self.broker_port),
                "--counter", str(self.counter), "--decoder", self.decoder, "--client-id", f"bench-bare-{phase}"]
        env = dict(os.environ, BENCH_MQTT_PASSWORD=self.password)
        extra = os.environ.get("BENCH_DECODERS_PATH")  # where msgspec is, if not in the venv
        if extra:
            env["PYTHONPATH"] = extra
        self.child = spawn(f"bare-{phase}", pinned(argv, self.core), d / "bare.log", env)

    def counts(self) -> dict[str, Any] | None:
        try:
            st = json.loads(self.counter.read_text())
        except (OSError, ValueError):
            return None
        if not st.get("subscribed"):
            return None
        return {"records": st["records"], "messages": st["messages"], "t_last": st["t_last"], "commands": 0}


class NodeRed(Consumer):
    kind, label = "node-red", f"Node-RED {NODE_RED_VERSION} flow"

    def __init__(self, *a: Any, registry_json: Path, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.registry_json = registry_json
        self.port = 0
        self.http = httpx.Client(timeout=2)

    def start(self, phase: str, latency_hold: float | None) -> None:
        d = self.state / phase / "node-red"
        d.mkdir(parents=True, exist_ok=True)
        for f in ("flows.json", "flows_cred.json"):  # a private copy: Node-RED may write to its user dir
            shutil.copy(NODE_RED_DIR / f, d / f)
        self.port = free_port()
        env = dict(os.environ, BENCH_MQTT_PORT=str(self.broker_port), BENCH_MQTT_USER="rules",
                   BENCH_MQTT_PASSWORD=self.password, BENCH_NODE_RED_REGISTRY=str(self.registry_json),
                   BENCH_NODE_RED_PORT=str(self.port), BENCH_TICK_MS="20",
                   BENCH_HOLD_S=str(latency_hold or 300), BENCH_NIGHT_ONLY="0" if latency_hold else "1")
        argv = [node_binary(), str(NODE_RED_DIR / "node_modules" / "node-red" / "red.js"), "--settings",
                str(NODE_RED_DIR / "settings.js"), "--userDir", str(d), "flows.json"]
        self.child = spawn(f"node-red-{phase}", pinned(argv, self.core), d.parent / "node-red.log",
                           self.nodelay_env(d, env))

    def counts(self) -> dict[str, Any] | None:
        try:
            st = self.http.get(f"http://127.0.0.1:{self.port}/stats").json()
        except (httpx.HTTPError, ValueError):
            return None
        if not st:
            return None
        return {"records": st["records"], "messages": st["messages"], "t_last": st["t_last"],
                "commands": st["commands"], "used": st["used"], "raw": st}

    def stop(self) -> None:
        super().stop()
        self.http.close()


class Ours(Consumer):
    kind, label = "ours", "ours: smartcity rules"

    def __init__(self, *a: Any, registry: Path, rules: Path, latency_rules: Path, tick: float, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.registry, self.rules, self.latency_rules, self.tick = registry, rules, latency_rules, tick
        self.port = 0
        self.client_id = ""
        self.http = httpx.Client(timeout=2)
        self.flags = ours_flags()

    def start(self, phase: str, latency_hold: float | None) -> None:
        d = self.state / phase / "ours"
        d.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.client_id = f"bench-ours-{phase}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SMARTCITY_")} | {
            "SMARTCITY_MQTT_HOST": "127.0.0.1", "SMARTCITY_MQTT_PORT": str(self.broker_port),
            "SMARTCITY_MQTT_USERNAME": "rules", "SMARTCITY_MQTT_PASSWORD": self.password}
        argv = [sys.executable, "-m", "smartcity", "--log-level", "WARNING", "rules", "--rules",
                str(self.latency_rules if latency_hold else self.rules), "--registry", str(self.registry)]
        opts = {"--tick": str(self.tick), "--metrics-host": "127.0.0.1", "--metrics-port": str(self.port),
                "--client-id": self.client_id,
                "--state-dir": str(d / "state"), "--duration": "3600"}
        argv += [x for flag, value in opts.items() if flag in self.flags for x in (flag, value)]
        # No InfluxDB here: rule events off, as the peers write none either.
        argv += [f for f in ("--no-events",) if f in self.flags]
        self.child = spawn(f"ours-{phase}", pinned(argv, self.core), d / "rules.log", self.nodelay_env(d, env))

    def counts(self) -> dict[str, Any] | None:
        try:
            text = self.http.get(f"http://127.0.0.1:{self.port}/metrics").text
        except httpx.HTTPError:
            return None
        m = parse_metrics(text)
        if not m:
            return None
        p = "smartcity_rules_"
        records = sum(m.get(f"{p}{c}_total", 0.0) for c in OURS_RECORD_COUNTERS)
        return {"records": int(records), "messages": int(m.get(f"{p}messages_total", 0)), "t_last": None,
                "commands": int(m.get(f"{p}commands_published_total", 0)),
                "used": int(m.get(f"{p}readings_used_total", 0)), "raw": m}

    def stop(self) -> None:
        super().stop()
        self.http.close()
        end_session(self.broker_port, "rules", self.password, self.client_id)


def end_session(port: int, username: str, password: str, client_id: str) -> None:
    """Discard a persistent session: else the broker queues every later phase's stream for it (and saves it)."""
    import paho.mqtt.client as paho  # noqa: PLC0415
    from paho.mqtt.enums import CallbackAPIVersion  # noqa: PLC0415
    from paho.mqtt.packettypes import PacketTypes  # noqa: PLC0415
    from paho.mqtt.properties import Properties  # noqa: PLC0415

    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
    c.username_pw_set(username, password)
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 0
    c.connect("127.0.0.1", port, clean_start=True, properties=props)
    c.loop_start()
    time.sleep(0.3)
    c.disconnect()
    c.loop_stop()


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text -> {name: value summed over labels} (best effort)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^([A-Za-z_:][A-Za-z0-9_:]*)(\{[^}]*\})?\s+(\S+)", line)
        if m:
            try:
                out[m.group(1)] = out.get(m.group(1), 0.0) + float(m.group(3))
            except ValueError:
                continue
    return out


def ours_flags() -> set[str]:
    """The options `smartcity rules --help` lists (the service is being rewritten: pass only those)."""
    help_text = subprocess.run([sys.executable, "-m", "smartcity", "rules", "--help"], timeout=60,
                               capture_output=True, text=True, check=False).stdout
    return set(re.findall(r"--[a-z][a-z-]+", help_text))


def node_binary() -> str:
    node = shutil.which("node")
    if not node:
        raise SystemExit("node not found: apt-get install nodejs npm")
    return node


def ensure_node_red(log: Any) -> str:
    """Install Node-RED into bench/node-red/node_modules with npm (progress shown) unless it is there."""
    pkg = NODE_RED_DIR / "node_modules" / "node-red" / "package.json"
    if pkg.exists() and json.loads(pkg.read_text()).get("version") == NODE_RED_VERSION:
        return NODE_RED_VERSION
    npm = shutil.which("npm")
    if not npm:
        raise SystemExit("npm not found: apt-get install npm (Node-RED is installed from the npm registry)")
    cmd = [npm, "ci" if (NODE_RED_DIR / "package-lock.json").exists() else "install", "--no-audit", "--no-fund",
           "--loglevel=http"]
    log(f"installing Node-RED {NODE_RED_VERSION} into {NODE_RED_DIR / 'node_modules'}: {' '.join(cmd[1:])}")
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=NODE_RED_DIR, timeout=900, check=False)  # npm's own progress on the terminal
    if proc.returncode != 0 or not pkg.exists():
        raise SystemExit(f"npm failed ({proc.returncode}); see its output above")
    log(f"  installed in {time.monotonic() - t0:.0f} s")
    return str(json.loads(pkg.read_text()).get("version"))
