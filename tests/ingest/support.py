"""Helpers of the ingest's integration tests: a bounded stream of readings, what InfluxDB holds, a fault proxy."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from core import topics
from core.senml import Reading, encode
from core.settings import InfluxSettings, MqttSettings, influx_to_env, mqtt_to_env
from core.topics import Channel
from deploy.processes import ChildProcess, spawn

LIGHTS = {"gw-vs-01": ["vs-sl-101", "vs-sl-102", "vs-sl-103"], "gw-ws-01": ["ws-sl-101", "ws-sl-102", "ws-sl-103"]}
REPO = Path(__file__).resolve().parents[2]


class Stream:
    """Publishes `batches` SenML packs of `per_batch` power readings from one gateway, one every `interval` s.

    Every reading has its own (device, microsecond) so what InfluxDB must hold is known exactly.
    """

    def __init__(self, client, gateway: str, *, batches: int, per_batch: int = 50, interval: float = 0.02,
                 t0: float | None = None, first_seq: int = 0) -> None:
        self.client = client
        self.gateway = gateway
        self.batches = batches
        self.per_batch = per_batch
        self.interval = interval
        # Whole seconds: every reading time is then a whole millisecond, far from any microsecond rounding edge.
        self.t0 = float(int(time.time()) - 600) if t0 is None else t0
        self.first_seq = first_seq
        self.expected: dict[tuple[str, int], float] = {}
        self.sent_batches = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def readings(self, b: int) -> list[Reading]:
        devices = LIGHTS[self.gateway]
        out = []
        for i in range(self.per_batch):
            n = b * self.per_batch + i
            out.append(Reading(devices[n % len(devices)], "power", float(n), self.t0 + n * 0.001, "W"))
        return out

    def start(self) -> Stream:
        self._thread.start()
        return self

    def _run(self) -> None:
        deadline = time.monotonic() + 120
        for b in range(self.batches):
            if time.monotonic() > deadline:
                break
            rs = self.readings(b)
            info = self.client.publish(topics.topic(self.gateway, Channel.READINGS),
                                       encode(rs, self.first_seq + b), qos=1)
            info.wait_for_publish(30)
            for r in rs:
                self.expected[(r.device, round(r.time * 1_000_000))] = r.value
            self.sent_batches += 1
            time.sleep(self.interval)

    def join(self, timeout: float = 150) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "stream did not finish"


def stored_power(influx) -> dict[tuple[str, int], float]:
    """(device, time in us) -> power of every street_light point InfluxDB holds."""
    out: dict[tuple[str, int], float] = {}
    for s in influx.query('SELECT "power", "device" FROM "street_light"', epoch="u"):
        for row in s.rows():
            out[(row["device"], int(row["time"]))] = row["power"]
    return out


def count(influx, measurement: str, field: str, where: str = "") -> int:
    """Number of points with field in measurement."""
    series = influx.query(f'SELECT count("{field}") FROM "{measurement}" {where}')
    return sum(int(r["count"]) for s in series for r in s.rows())


def sum_of(influx, measurement: str, field: str) -> int:
    """Sum of an integer field over all points."""
    series = influx.query(f'SELECT sum("{field}") FROM "{measurement}"')
    return sum(int(r["sum"]) for s in series for r in s.rows())


def spawn_ingest(tmp_path: Path, name: str, mqtt: MqttSettings, influx: InfluxSettings, *args: str) -> ChildProcess:
    """`smartcity ingest` as its own process (for kill -9), state under tmp_path/state."""
    env = {**os.environ, **mqtt_to_env(mqtt), **influx_to_env(influx)}
    argv = [sys.executable, "-m", "smartcity", "--log-level", "INFO", "ingest", "--worker", name,
            "--state-dir", str(tmp_path / "state"), "--max-latency", "0.1", "--spool-after", "1",
            "--metrics-port", "0", "--audit-interval", "0", *args]
    status = tmp_path / "state" / "ingest" / name / "status.json"
    status.unlink(missing_ok=True)
    return spawn(f"ingest-{name}", argv, tmp_path / f"ingest-{name}.log", env={**env, "PYTHONPATH": str(REPO)})


def wait_subscribed(tmp_path: Path, name: str, timeout: float = 30) -> None:
    """Until the spawned worker says it is connected (its /healthz), plus a moment for the SUBSCRIBE.

    A worker that has never run has no session yet: what is published before it subscribes is lost.
    """
    status = tmp_path / "state" / "ingest" / name / "status.json"

    def connected() -> bool:
        try:
            url = json.loads(status.read_text())["url"]
            return httpx.get(f"{url}/healthz", timeout=1).json().get("mqtt") == "connected"
        except (OSError, ValueError, KeyError, httpx.HTTPError):
            return False

    deadline = time.monotonic() + timeout
    while not connected():
        if time.monotonic() > deadline:
            raise AssertionError(f"ingest worker {name} did not connect within {timeout} s")
        time.sleep(0.05)
    time.sleep(0.3)


class FaultProxy:
    """An HTTP proxy in front of a real influxd that can answer every request with a chosen status instead.

    A fake in addition to the real server: it lets a test make InfluxDB answer 500 or 429 for a while.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.fail_with: int | None = None
        self.failed = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if proxy.fail_with is not None:
                    proxy.failed += 1
                    payload = b'{"error":"injected by the test proxy"}'
                    self.send_response(proxy.fail_with)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "authorization")}
                resp = httpx.request(self.command, proxy.upstream + self.path, content=body, headers=headers,
                                     timeout=30)
                self.send_response(resp.status_code)
                for k in ("Content-Type",):
                    if k in resp.headers:
                        self.send_header(k, resp.headers[k])
                self.send_header("Content-Length", str(len(resp.content)))
                self.end_headers()
                self.wfile.write(resp.content)

            do_GET = do_POST = _handle  # noqa: N815 - http.server's naming

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
