"""The whole data path for fault tests, each service in its own process as in production.

firmware simulator -> ptys -> one edge agent per demo gateway -> mosquitto -> ingest -> InfluxDB, and
rules -> commands -> edge. Every part can be killed (SIGKILL) and started again on the same ports and
state directory; one gateway's agent (and optionally the ingest's InfluxDB link) can go through a
TcpProxy, the network that a test cuts; the agent's and the ingest's state directories can be given.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from core.influx import InfluxClient, InfluxConfig, InfluxError
from core.registry import Registry
from core.settings import InfluxSettings, MqttSettings, influx_to_env, mqtt_to_env
from deploy import influxdb, mosquitto
from deploy.influxdb import Influxd, start_influxd
from deploy.mosquitto import Broker, start_mosquitto
from deploy.processes import ChildProcess, new_password, spawn
from deploy.supervisor import start_once
from edge.lora_keys import KeyRing
from tests.conftest import wait_for
from tests.e2e.test_pipeline import FAST_RULES  # the same presence rule: commands every few seconds
from tests.faults.tap import Tap
from tests.faults.tcp_proxy import TcpProxy

SERVICE_USERS = ("ingest", "rules", "operator")
DATABASE = "smartcity_faults"
INGEST_WORKER = "faults"
STATUS_INTERVAL = 0.5  # the agents' health reports: the accepted counts the tests compare with
COMMAND_TTL = 5.0  # commands the lights never confirm expire (and are acked) within a run
REPORT_INTERVAL = float(os.environ.get("SMARTCITY_FAULT_REPORT_INTERVAL", "0.5"))


@dataclass
class Restart:
    """One kill -9 and start again of a part, as the recovery measurement needs it."""

    part: str
    killed_at: float  # wall clock
    restarted_at: float  # wall clock, once the new process was spawned (servers: once ready)


@dataclass
class City:
    """The running pipeline; stop() ends every process it started, by PID."""

    base: Path
    registry: Registry
    proxied_user: str | None = None
    edge_state: dict[str, Path] = field(default_factory=dict)  # per gateway, default base/state
    ingest_state: Path | None = None
    proxy_influx: bool = False
    # The ingest's subscription: "" plain (the demo's and the units' single worker), "ingest" the share group
    # of scaled-out workers, which mosquitto 2.0 does not restore after a restart (test_mosquitto_shared_session).
    share_group: str = ""
    broker: Broker = field(init=False)
    influxd: Influxd = field(init=False)
    influx: InfluxClient = field(init=False)
    proxy: TcpProxy | None = field(init=False, default=None)
    influx_proxy: TcpProxy | None = field(init=False, default=None)
    children: dict[str, ChildProcess] = field(init=False, default_factory=dict)
    restarts: list[Restart] = field(init=False, default_factory=list)
    exits: dict[str, list[int]] = field(init=False, default_factory=dict)  # return codes of stopped processes
    started_at: float = field(init=False, default=0.0)
    tap: Tap | None = field(init=False, default=None)

    # -- start ------------------------------------------------------------------------------------------
    def start(self) -> None:
        self.started_at = time.time()
        users = {u: new_password() for u in (*self.registry.gateways, *SERVICE_USERS)}
        self.broker = start_mosquitto(self.base / "broker", users)
        self.influxd = start_influxd(self.base / "influx")
        self.influx = InfluxClient(InfluxConfig(self.influxd.url, DATABASE))
        self.influx.create_database()
        self.tap = Tap(MqttSettings(self.broker.host, self.broker.port, "operator", self.broker.users["operator"]))
        if self.proxied_user:
            self.proxy = TcpProxy(self.broker.port)
        if self.proxy_influx:
            self.influx_proxy = TcpProxy(self.influxd.http_port)
        self.keys = self.base / "lora-keys.json"
        KeyRing.generate().save(self.keys)
        self.port_map = self.base / "ports.json"
        self.rules_file = self.base / "rules.toml"
        self.rules_file.write_text(FAST_RULES)
        # The consumers first, as in production (their persistent sessions exist before any gateway
        # publishes): a batch published before the ingest's subscription exists has no taker.
        self.start_part("ingest")
        self.start_part("rules")
        wait_for(self.ingest_connected, 30, what="the ingest connected to the broker")
        self.start_part("sim")
        wait_for(self.port_map.exists, 15, what="the simulator's port map")
        for gw in self.registry.gateways:
            self.start_part(f"edge-{gw}")

    def ingest_connected(self) -> bool:
        """True once the ingest's /healthz says it is connected to the broker (it subscribes on connect)."""
        status = (self.ingest_state or self.base / "state") / "ingest" / INGEST_WORKER / "status.json"
        try:
            url = json.loads(status.read_text())["url"]
            health = httpx.get(f"{url}/healthz", timeout=1).json()
        except (OSError, ValueError, KeyError, httpx.HTTPError):
            return False
        if health.get("mqtt") != "connected":
            return False
        time.sleep(0.5)  # its SUBSCRIBE follows the CONNACK
        return True

    def _env(self, user: str | None) -> dict[str, str]:
        env = dict(os.environ)
        env["SMARTCITY_LORA_KEYS"] = str(self.keys)
        if user:
            port = self.proxy.port if self.proxy and user == self.proxied_user else self.broker.port
            env.update(mqtt_to_env(MqttSettings(self.broker.host, port, user, self.broker.users[user])))
        url = f"http://127.0.0.1:{self.influx_proxy.port}" if self.influx_proxy else self.influxd.url
        env.update(influx_to_env(InfluxSettings(url, DATABASE)))
        return env

    def argv(self, part: str) -> tuple[list[str], str | None]:
        """The command line of a service (as smartcity/demo.py runs it) and its broker account."""
        state = self.base / "state"
        if part == "sim":
            return (["sim", "--port-map", str(self.port_map), "--report-interval", str(REPORT_INTERVAL),
                     "--busy-seconds", "3", "--quiet-seconds", "5", "--seed", "7"], None)
        if part.startswith("edge-"):
            gw = part.removeprefix("edge-")
            return (["edge", "--gateway", gw, "--port-map", str(self.port_map), "--flush-interval", "0.2",
                     "--rg15-poll-interval", "0.5", "--status-interval", str(STATUS_INTERVAL),
                     "--state-dir", str(self.edge_state.get(gw, state))], gw)
        if part == "ingest":
            return (["ingest", "--worker", INGEST_WORKER, "--state-dir", str(self.ingest_state or state),
                     "--max-latency", "0.1", "--audit-interval", "1", "--health-interval", "2",
                     "--share-group", self.share_group], "ingest")
        if part == "rules":
            return (["rules", "--rules", str(self.rules_file), "--client-id", "faults-rules", "--tick", "0.05",
                     "--command-ttl", str(COMMAND_TTL), "--snapshot-interval", "2", "--state-dir", str(state)],
                    "rules")
        raise ValueError(part)

    def start_part(self, part: str) -> ChildProcess:
        args, user = self.argv(part)
        child = spawn(part, [sys.executable, "-m", "smartcity", "--log-level", "INFO", *args],
                      self.base / "logs" / f"{part}.log", self._env(user))
        self.children[part] = child
        return child

    # -- faults -----------------------------------------------------------------------------------------
    def kill(self, part: str) -> float:
        """SIGKILL a part (a service, "mosquitto" or "influxd"); returns the wall time of the kill."""
        killed = time.time()
        if part == "mosquitto":
            self.broker.kill()
        elif part == "influxd":
            self.influxd.kill()
        else:
            child = self.children[part]
            child.process.kill()
            child.process.wait(10)
            self.exits.setdefault(part, []).append(child.process.returncode)
        return killed

    def restart(self, part: str, killed_at: float) -> Restart:
        """Start a killed part again: same ports, same config, same state directory."""
        if part == "mosquitto":
            spec = mosquitto.restart_spec(self.broker)
        elif part == "influxd":
            spec = influxdb.restart_spec(self.influxd)
        else:
            self.start_part(part)
            r = Restart(part, killed_at, time.time())
            self.restarts.append(r)
            return r
        start_once(spec)
        r = Restart(part, killed_at, time.time())
        self.restarts.append(r)
        return r

    # -- end --------------------------------------------------------------------------------------------
    def stop_part(self, part: str) -> None:
        child = self.children.get(part)
        if child is not None and child.running():
            child.stop(timeout=15)
            self.exits.setdefault(part, []).append(child.process.returncode)

    def stop(self) -> None:
        """Every service (SIGTERM, then SIGKILL), then the proxies and servers; safe to call twice."""
        for part in ("sim", "rules", *(f"edge-{gw}" for gw in self.registry.gateways), "ingest"):
            self.stop_part(part)
        if self.tap is not None:
            self.tap.stop()
            self.tap = None
        for proxy in (self.proxy, self.influx_proxy):
            if proxy is not None:
                proxy.stop()
        for server in (getattr(self, "broker", None), getattr(self, "influxd", None)):
            if server is not None:
                server.stop()
        if getattr(self, "influx", None) is not None:
            self.influx.close()

    def logs_with_tracebacks(self) -> dict[str, str]:
        """Each service log that shows a Python traceback: its last lines."""
        return logs_with_tracebacks(self.children)

    def query(self, q: str, epoch: str | None = "ms") -> list[dict[str, object]]:
        """Rows of a query, with each series' tags merged in; [] while InfluxDB does not answer."""
        try:
            return [{**s.tags, **row} for s in self.influx.query(q, epoch=epoch) for row in s.rows()]
        except InfluxError:
            return []


def read_json(path: Path) -> object:
    return json.loads(path.read_text())


def logs_with_tracebacks(children: dict[str, ChildProcess], lines: int = 30) -> dict[str, str]:
    """Each child whose log shows a Python traceback: its last lines (also tests/scale/sites.py's check)."""
    out = {}
    for name, child in children.items():
        text = child.log_path.read_text(errors="replace") if child.log_path.exists() else ""
        if "Traceback" in text:
            out[name] = "\n".join(text.splitlines()[-lines:])
    return out
