"""The platform under test in bench/city_scale.py: `smartcity ingest` and `smartcity rules` workers, and /proc.

Each worker is a real subprocess (deploy.processes.spawn, stopped by its PID) against the private mosquitto
and influxd; ingest workers share the readings through the MQTT 5 shared subscription `$share/ingest/...`
(`--share-group ingest`), rules workers own the wijken with crc32(wijk) % N == I (`--partition I/N
--partition-by wijk`) and subscribe only to the gateways of those wijken.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench import rules_service_support as rs
from bench.rules_service_consumers import OURS_RECORD_COUNTERS, parse_metrics
from deploy.processes import ChildProcess, free_port, spawn


@dataclass
class Worker:
    kind: str  # "ingest" or "rules"
    name: str
    child: ChildProcess
    metrics_port: int
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=3))

    @property
    def pid(self) -> int:
        return self.child.pid

    def metrics(self) -> dict[str, float] | None:
        try:
            return parse_metrics(self.http.get(f"http://127.0.0.1:{self.metrics_port}/metrics").text) or None
        except httpx.HTTPError:
            return None

    def counts(self) -> dict[str, float] | None:
        """The figures the bench follows: records taken in, points written / commands sent, queues."""
        m = self.metrics()
        if m is None:
            return None
        if self.kind == "ingest":
            p = "smartcity_ingest_"
            return {"records": m.get(f"{p}records_accepted_total", 0.0),
                    "points": m.get(f"{p}points_written_total", 0.0),
                    "rejected": m.get(f"{p}rejected_records_total", 0.0),
                    "dead_letters": m.get(f"{p}dead_letters_total", 0.0),
                    "pending_lines": m.get(f"{p}pending_lines", 0.0), "spool_bytes": m.get(f"{p}spool_bytes", 0.0)}
        p = "smartcity_rules_"
        return {"records": sum(m.get(f"{p}{c}_total", 0.0) for c in OURS_RECORD_COUNTERS),
                "used": m.get(f"{p}readings_used_total", 0.0), "messages": m.get(f"{p}messages_total", 0.0),
                "commands": m.get(f"{p}commands_published_total", 0.0),
                "evaluations": m.get(f"{p}evaluations_total", 0.0),
                "evaluation_seconds": m.get(f"{p}evaluation_seconds_total", 0.0),
                "snapshots": m.get(f"{p}snapshots_total", 0.0),
                "wrong_gateway": m.get(f"{p}wrong_gateway_total", 0.0), "too_late": m.get(f"{p}too_late_total", 0.0)}

    def stop(self) -> None:
        self.child.stop(timeout=30)
        self.http.close()


def base_env(broker_port: int, user: str, password: str, influx_url: str, db: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMARTCITY_")}
    return env | {"SMARTCITY_MQTT_HOST": "127.0.0.1", "SMARTCITY_MQTT_PORT": str(broker_port),
                  "SMARTCITY_MQTT_USERNAME": user, "SMARTCITY_MQTT_PASSWORD": password,
                  "SMARTCITY_INFLUX_URL": influx_url, "SMARTCITY_INFLUX_DATABASE": db}


def start_ingest(i: int, d: Path, registry: Path, env: dict[str, str], duration: float) -> Worker:
    port = free_port()
    argv = [sys.executable, "-m", "smartcity", "--log-level", "WARNING", "ingest", "--registry", str(registry),
            "--duration", str(duration), "--worker", f"city-w{i}", "--state-dir", str(d / f"ingest-w{i}"),
            "--share-group", "ingest", "--metrics-host", "127.0.0.1", "--metrics-port", str(port)]
    return Worker("ingest", f"ingest-w{i}", spawn(f"ingest-w{i}", argv, d / f"ingest-w{i}.log", env), port)


def start_rules(i: int, n: int, d: Path, registry: Path, rules: Path, env: dict[str, str],  # noqa: PLR0917
                duration: float, tick: float, extra: list[str]) -> Worker:
    port = free_port()
    argv = [sys.executable, "-m", "smartcity", "--log-level", "WARNING", "rules", "--rules", str(rules),
            "--registry", str(registry), "--duration", str(duration), "--client-id", f"city-rules-{i}of{n}",
            "--state-dir", str(d / f"rules-{i}"), "--partition", f"{i}/{n}", "--partition-by", "wijk",
            "--tick", str(tick), "--metrics-host", "127.0.0.1", "--metrics-port", str(port), *extra]
    return Worker("rules", f"rules-{i}of{n}", spawn(f"rules-{i}", argv, d / f"rules-{i}.log", env), port)


def snapshot(pids: dict[str, int]) -> dict[str, Any]:
    """CPU seconds (threads' schedstat) and RSS of each process, and the machine's busy CPU seconds."""
    return {"cpu": {k: rs.cpu_seconds(p) for k, p in pids.items()},
            "rss": {k: rs.rss_mb(p) for k, p in pids.items()}, "busy": rs.machine_busy_seconds()}


def cpu_between(a: dict[str, Any], b: dict[str, Any], seconds: float) -> dict[str, float]:
    """% of one core per process over the window, and 'others': what else on the machine used."""
    out = {k: 100 * (b["cpu"][k] - a["cpu"].get(k, 0.0)) / seconds for k in b["cpu"]}
    ours = sum(b["cpu"][k] - a["cpu"].get(k, 0.0) for k in b["cpu"])
    out["others"] = max(0.0, 100 * ((b["busy"] - a["busy"]) - ours) / seconds)
    return out
