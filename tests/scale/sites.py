"""The multi-site topology for tests: a central broker, a site broker per gemeente bridged to it through a
cuttable TcpProxy, ingest workers on a shared subscription and rules workers on zone partitions, all real
`smartcity` subprocesses writing to a real influxd; and gateway publishers with a per-gateway seq.

The publishers stand in for edge agents (tests/faults/pipeline.py runs the real ones; here the point is the
site <-> central link): each pack carries seq, and its readings' time is derived from it, so what InfluxDB
holds can be audited against what each site broker acknowledged (PUBACK).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as paho

from core.influx import InfluxClient, InfluxConfig, InfluxError
from core.registry import Registry
from core.senml import Reading, encode
from core.settings import InfluxSettings, MqttSettings, influx_to_env, mqtt_to_env
from core.topics import Channel, topic
from deploy.influxdb import Influxd, start_influxd
from deploy.mosquitto import Broker, restart_spec, start_mosquitto
from deploy.mosquitto_sites import Central, Site, bridge_acl, start_site_broker
from deploy.processes import ChildProcess, new_password, spawn
from deploy.supervisor import start_once
from tests.e2e.test_pipeline import FAST_RULES
from tests.faults.pipeline import logs_with_tracebacks
from tests.faults.tcp_proxy import TcpProxy

DATABASE = "smartcity_sites"
STEP = 0.05  # seconds between packs of one gateway, and between the times of consecutive packs
# Each rules worker gets its own command TTL: a command's expires_at - issued_at names the worker that sent it.
RULES_TTL = {0: 5.0, 1: 7.0}


@dataclass
class Gateway:
    """A gateway's publisher on its site broker: numbered packs (seq), and the commands it receives."""

    gw: str
    broker: Broker
    occupancy: str
    light: str
    base_time: float
    acked: set[int] = field(default_factory=set)
    attempted: set[int] = field(default_factory=set)
    commands: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    paused: threading.Event = field(default_factory=threading.Event)
    stopping: threading.Event = field(default_factory=threading.Event)
    seq: int = 0

    def start(self) -> None:
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=self.gw, protocol=paho.MQTTv311)
        self.client.username_pw_set(self.gw, self.broker.users[self.gw])
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.on_connect = lambda c, *_: c.subscribe(topic(self.gw, Channel.COMMANDS), qos=1)
        self.client.on_message = lambda _c, _u, m: self.commands.append((time.time(), json.loads(m.payload)))
        self.client.connect_async(self.broker.host, self.broker.port, keepalive=5)
        self.client.loop_start()
        self.thread = threading.Thread(target=self._run, name=f"pub-{self.gw}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        deadline = time.monotonic() + 300  # bounded whatever the test does
        while not self.stopping.is_set() and time.monotonic() < deadline:
            time.sleep(STEP)
            # A seq is used up each step, published or not, so that a pack's time (derived from it) stays
            # close to now: the rules judge presence over the last seconds.
            seq, self.seq = self.seq, self.seq + 1
            if self.paused.is_set() or not self.client.is_connected():
                continue
            t = self.time_of(seq)
            present = (seq // 40) % 2 == 1  # 2 s present, 2 s absent: the presence rule keeps commanding
            pack = encode([Reading(self.occupancy, "presence", present, t),
                           Reading(self.light, "power", float(seq % 50), t, "W")], seq)
            self.attempted.add(seq)
            info = self.client.publish(topic(self.gw, Channel.READINGS), pack, qos=1)
            try:
                info.wait_for_publish(2)
            except (RuntimeError, ValueError):
                continue
            if info.is_published():
                self.acked.add(seq)

    def time_of(self, seq: int) -> float:
        return round(self.base_time + seq * STEP, 3)

    def seq_of(self, t_ms: int) -> int:
        return round((t_ms / 1000 - self.base_time) / STEP)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(5)
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class Topology:
    base: Path
    registry: Registry
    clean_session: bool = False
    central: Broker = field(init=False)
    influxd: Influxd = field(init=False)
    sites: dict[str, Site] = field(init=False, default_factory=dict)
    site_brokers: dict[str, Broker] = field(init=False, default_factory=dict)
    proxies: dict[str, TcpProxy] = field(init=False, default_factory=dict)
    gateways: dict[str, Gateway] = field(init=False, default_factory=dict)
    children: dict[str, ChildProcess] = field(init=False, default_factory=dict)

    def start(self) -> None:
        by_gemeente: dict[str, list[str]] = {}
        for gateway in self.registry.gateways.values():
            by_gemeente.setdefault(gateway.gemeente, []).append(gateway.id)
        self.sites = {g: Site(g, tuple(gws)) for g, gws in sorted(by_gemeente.items())}
        users = {u: new_password() for u in ("ingest", "rules", "operator")}
        users.update({s.bridge_user: new_password() for s in self.sites.values()})
        self.central = start_mosquitto(self.base / "central", users, extra_acl=bridge_acl(self.sites.values()))
        self.influxd = start_influxd(self.base / "influx")
        self.influx = InfluxClient(InfluxConfig(self.influxd.url, DATABASE))
        self.influx.create_database()
        self.rules_file = self.base / "rules.toml"
        self.rules_file.write_text(FAST_RULES)
        for i in (1, 2):
            self._service(f"ingest-{i}", ["ingest", "--worker", f"site-ingest-{i}", "--state-dir",
                                          str(self.base / "state"), "--max-latency", "0.1", "--share-group",
                                          "ingest", "--audit-interval", "1"], "ingest")
        for i, ttl in RULES_TTL.items():
            self._service(f"rules-{i}", ["rules", "--rules", str(self.rules_file), "--client-id", f"site-rules-{i}",
                                         "--partition", f"{i}/2", "--tick", "0.05", "--command-ttl", str(ttl),
                                         "--no-events", "--state-dir", str(self.base / f"rules-{i}")], "rules")
        deadline = time.monotonic() + 30
        while not all(self._ingest_connected(i) for i in (1, 2)):
            if time.monotonic() > deadline:
                raise AssertionError("the ingest workers did not connect")
            time.sleep(0.2)
        time.sleep(1.0)  # their SUBSCRIBEs, and the rules workers', follow the CONNACK
        for code, site in self.sites.items():
            self.proxies[code] = TcpProxy(self.central.port)
            central = Central(self.central.host, self.proxies[code].port, users[site.bridge_user])
            gw_users = {gw: new_password() for gw in site.gateways}
            self.site_brokers[code] = start_site_broker(self.base / "sites", site, gw_users, central,
                                                        clean_session=self.clean_session)
        time.sleep(1.0)  # the bridges connect and subscribe to their commands
        base_time = time.time()
        for code, site in self.sites.items():
            for gw in site.gateways:
                devices = [d for d in self.registry.devices.values() if d.gateway == gw]
                occ = next(d.id for d in devices if d.kind == "occupancy")
                light = next(d.id for d in devices if d.kind == "street_light")
                self.gateways[gw] = Gateway(gw, self.site_brokers[code], occ, light, base_time)
                self.gateways[gw].start()

    def _service(self, name: str, args: list[str], user: str) -> None:
        env = dict(os.environ)
        env.update(mqtt_to_env(MqttSettings(self.central.host, self.central.port, user, self.central.users[user])))
        env.update(influx_to_env(InfluxSettings(self.influxd.url, DATABASE)))
        self.children[name] = spawn(name, [sys.executable, "-m", "smartcity", "--log-level", "INFO", *args],
                                    self.base / "logs" / f"{name}.log", env)

    def _ingest_connected(self, i: int) -> bool:
        status = self.base / "state" / "ingest" / f"site-ingest-{i}" / "status.json"
        try:
            url = json.loads(status.read_text())["url"]
            return bool(httpx.get(f"{url}/healthz", timeout=1).json().get("mqtt") == "connected")
        except (OSError, ValueError, KeyError, httpx.HTTPError):
            return False

    def kill_site(self, code: str) -> None:
        broker = self.site_brokers[code]
        broker.kill()

    def restart_site(self, code: str) -> None:
        start_once(restart_spec(self.site_brokers[code]))  # same config: port, persistence, bridge

    def stored(self, gw: Gateway) -> tuple[dict[str, list[int]], dict[str, int]]:
        """Per device: the seqs whose readings InfluxDB holds (one entry per point), and count()."""
        seqs: dict[str, list[int]] = {}
        counts: dict[str, int] = {}
        for device, kind, metric in ((gw.occupancy, "occupancy", "presence"), (gw.light, "street_light", "power")):
            where = f"WHERE \"device\" = '{device}'"
            try:
                rows = [r for s in self.influx.query(f'SELECT "{metric}" FROM "{kind}" {where}', epoch="ms")
                        for r in s.rows()]
                n = [r for s in self.influx.query(f'SELECT count("{metric}") FROM "{kind}" {where}')
                     for r in s.rows()]
            except InfluxError:
                rows, n = [], []
            seqs[device] = [gw.seq_of(int(r["time"])) for r in rows]
            counts[device] = int(n[0]["count"]) if n else 0
        return seqs, counts

    def stop(self) -> None:
        for g in self.gateways.values():
            g.stop()
        for child in self.children.values():
            if child.running():
                child.stop(timeout=15)
        for proxy in self.proxies.values():
            proxy.stop()
        for b in self.site_brokers.values():
            if b.child.running():
                b.stop()
        if hasattr(self, "influx"):
            self.influx.close()
        for server in (getattr(self, "central", None), getattr(self, "influxd", None)):
            if server is not None:
                server.stop()

    def tracebacks(self) -> dict[str, str]:
        return logs_with_tracebacks(self.children)
