"""Helpers of bench/edge.py: the bench's registry, what the OS says about a process, the counting subscriber.

Everything measured comes from /proc: CPU from /proc/PID/stat (utime + stime, in clock ticks, over a
window), memory and threads from /proc/PID/status (VmRSS, VmHWM, Threads) and /proc/PID/smaps_rollup
(Pss, private pages). Each thread's schedstat (nanoseconds on a CPU) is read too, as a cross-check of the
tick-based figure, and its voluntary context switches (how often it slept and woke: an idle cost).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

CLK_TCK = os.sysconf("SC_CLK_TCK")
READINGS_PER_LIGHT_FRAME = 6  # dim_level, power, energy, voltage, temperature, lamp_failure
GATEWAY = "gw-edge-bench"  # the agent's gateway (in the registry)
BARE_USER = "gw-edge-bare"  # the bare reader's broker account (a gateway account: it may write its readings)
TB_TOPIC = "v1/gateway/telemetry"  # ThingsBoard IoT Gateway's telemetry (bench/edge_tb.py)
TB_USER = "tb-gw-bench"  # its broker account: what arrives on TB_TOPIC is counted under it
TB_RPC_REQUEST, TB_RPC_RESPONSE = "v1/devices/me/rpc/request/+", "v1/devices/me/rpc/response/"


# --- the input --------------------------------------------------------------------------------------------

def registry_geojson(lights: int, gateway: str = GATEWAY) -> dict[str, Any]:
    """One gateway with `lights` LoRa street lights, in the GeoJSON format of core/registry.py."""
    lon, lat = 4.4467, 52.1279

    def feature(i: int, props: dict[str, Any]) -> dict[str, Any]:
        return {"type": "Feature", "properties": props,
                "geometry": {"type": "Point", "coordinates": [lon + (i % 20) * 0.0003, lat + (i // 20) * 0.0003]}}

    features = [feature(0, {"id": gateway, "role": "gateway", "name": "edge bench gateway", "gemeente": "GM0626"})]
    for i in range(lights):
        features.append(feature(i + 1, {
            "id": f"sl-edge-{i:03d}", "role": "device", "kind": "street_light", "gateway": gateway,
            "gemeente": "GM0626", "wijk": "WK062600", "link": "lora", "address": f"0626{i + 1:04X}"}))
    return {"type": "FeatureCollection", "name": f"edge agent benchmark: {lights} street lights",
            "cbs_map_year": 2024, "features": features}


def lights_for(rate: float, report_interval: float) -> int:
    """How many street lights, each reporting every report_interval s, carry exactly `rate` readings/s."""
    n = rate * report_interval / READINGS_PER_LIGHT_FRAME
    if n < 1 or abs(n - round(n)) > 1e-9:
        raise SystemExit(f"{rate:g} readings/s at one frame of {READINGS_PER_LIGHT_FRAME} per light every "
                         f"{report_interval:g} s needs {n:g} lights: choose a --report-interval that makes it whole")
    return round(n)


# --- /proc -------------------------------------------------------------------------------------------------

def stat_cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads, living and exited) from /proc/PID/stat, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def schedstat_cpu_seconds(pid: int) -> float:
    """Time on a CPU of a process's living threads (/proc/PID/task/*/schedstat, nanoseconds), in seconds."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            total += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # a thread that ended between listdir and read
    return total / 1e9


def status(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (MB) and Threads from /proc/PID/status; Pss and private (USS) MB from smaps_rollup."""
    out: dict[str, float] = {}
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = row.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
        elif key == "Threads":
            out[key] = int(value)
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
    except OSError:
        return out
    kb = {r.partition(":")[0]: int(r.split()[1]) for r in rollup if r.endswith(" kB")}
    out["Pss"] = kb.get("Pss", 0) / 1024
    out["USS"] = (kb.get("Private_Clean", 0) + kb.get("Private_Dirty", 0)) / 1024
    return out


def voluntary_switches(pid: int) -> dict[int, int]:
    """Per thread id, how often it gave up the CPU to wait (voluntary_ctxt_switches): its wakeups so far."""
    out: dict[int, int] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            rows = Path(f"/proc/{pid}/task/{tid}/status").read_text().splitlines()
        except OSError:
            continue
        for row in rows:
            if row.startswith("voluntary_ctxt_switches:"):
                out[int(tid)] = int(row.split()[1])
    return out


def machine_busy_seconds() -> float:
    """CPU seconds all cores have spent busy since boot (/proc/stat: everything but idle and iowait)."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(f[:8]) - f[3] - f[4]) / CLK_TCK


def wait_for_quiet(limit: float, log: Callable[[str], None], threshold: float = 0.25, quiet_for: int = 3) -> float:
    """Wait (at most limit s) until the machine's other work uses < threshold of a core in quiet_for 2 s samples
    in a row (test runs come in bursts); returns the load of the last sample."""
    deadline = time.monotonic() + limit
    quiet = 0
    while True:
        b0 = machine_busy_seconds()
        time.sleep(2)
        load = (machine_busy_seconds() - b0) / 2
        quiet = quiet + 1 if load < threshold else 0
        if quiet >= quiet_for:
            return load
        if time.monotonic() >= deadline:
            log(f"  warning: the machine is busy ({load:.0%} of a core); measuring anyway (see 'others')")
            return load
        if not quiet:
            log(f"  the machine is busy ({load:.0%} of a core); waiting")
            time.sleep(min(8.0, max(0.0, deadline - time.monotonic())))


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON file written atomically by another process, or None if it is not there (yet)."""
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data


def tb_frames(payload: bytes) -> int:
    """How many frames one v1/gateway/telemetry message carries: {device: [{ts, values: {frame: hex}}, ...]}."""
    data = json.loads(payload)
    if not isinstance(data, dict):
        raise ValueError("v1/gateway/telemetry payload is not an object")
    n = 0
    for entries in data.values():
        for entry in entries if isinstance(entries, list) else [entries]:
            values = entry.get("values", entry) if isinstance(entry, dict) else {}
            n += "frame" in values
    return n


# --- the counting subscriber -------------------------------------------------------------------------------

@dataclass
class Count:
    """What arrived from one gateway account: messages and readings."""

    messages: int = 0
    readings: int = 0
    first: float | None = None
    last: float | None = None


@dataclass
class Consumer:
    """Subscribes (as operator) to every gateway's readings and counts what arrives, per gateway.

    A SenML pack (the agent) counts its records; a bare reader's message (one frame's hex, not decoded)
    counts READINGS_PER_LIGHT_FRAME, the readings that frame carries; so does each frame entry in a
    ThingsBoard gateway telemetry message (tb_topic, once subscribe_tb() has subscribed it).
    """

    host: str
    port: int
    password: str
    raw_gateways: frozenset[str] = frozenset({BARE_USER})
    counts: dict[str, Count] = field(default_factory=dict)
    bad: int = 0
    tb: bool = False  # also count ThingsBoard gateway telemetry (TB_TOPIC) as TB_USER's

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-edge-consumer", protocol=paho.MQTTv5)
        self.client.username_pw_set("operator", self.password)
        self.client.on_connect = lambda c, *_: c.subscribe(
            [("smartcity/v1/gw/+/readings", 1)] + ([(TB_TOPIC, 1), (TB_RPC_REQUEST, 1)] if self.tb else []))
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.refused: list[str] = []

    def _on_subscribe(self, _client: Any, _userdata: Any, _mid: int, codes: list[Any], _props: Any) -> None:
        self.refused = [str(c) for c in codes if c.is_failure]
        self._subscribed.set()

    def start(self, timeout: float = 10.0) -> None:
        """Connect and wait (bounded) until the subscriptions are in place; raise if the broker refused one."""
        self.client.connect(self.host, self.port)
        self.client.loop_start()
        if not self._subscribed.wait(timeout):
            raise RuntimeError(f"consumer: not subscribed after {timeout} s")
        if self.refused:
            raise RuntimeError(f"consumer: the broker refused a subscription ({', '.join(self.refused)}): its ACL")

    def stop(self) -> None:
        """Disconnect and stop paho's thread."""
        self.client.disconnect()
        self.client.loop_stop()

    def _on_message(self, _client: Any, _userdata: Any, msg: paho.MQTTMessage) -> None:
        if msg.topic.startswith(TB_RPC_REQUEST[:-1]):
            self._answer_tb(msg)
            return
        if msg.topic == TB_TOPIC:
            gateway = TB_USER
            try:
                n = READINGS_PER_LIGHT_FRAME * tb_frames(bytes(msg.payload))
            except (ValueError, TypeError, AttributeError):
                with self._lock:
                    self.bad += 1
                return
            if not n:
                return  # a telemetry message without frames (none are expected): not a delivery
        elif (gateway := msg.topic.split("/")[3]) in self.raw_gateways:
            n = READINGS_PER_LIGHT_FRAME
        else:
            try:
                n = sum(1 for r in json.loads(msg.payload) if "n" in r)
            except (ValueError, TypeError):
                with self._lock:
                    self.bad += 1
                return
        now = time.monotonic()
        with self._lock:
            c = self.counts.setdefault(gateway, Count())
            c.messages += 1
            c.readings += n
            c.first = c.first or now
            c.last = now

    def _answer_tb(self, msg: paho.MQTTMessage) -> None:
        """Play the ThingsBoard server in the one RPC a TB gateway waits for: its session limits.

        Until it has them (tb_device_mqtt: rate_limits_received) it sends nothing. The answer: no
        rate limits (each given and empty: TB's "0:0," no limit), 100 messages in flight and a 64 KiB
        payload limit, the figures of a ThingsBoard CE server whose tenant profile sets no limits.
        """
        try:
            method = json.loads(msg.payload).get("method")
        except (ValueError, AttributeError):
            method = None
        if method != "getSessionLimits":
            with self._lock:
                self.bad += 1
            return
        limits = {"rateLimits": {"messages": "", "telemetryMessages": "", "telemetryDataPoints": ""},
                  "maxInflightMessages": 100, "maxPayloadSize": 65536}
        self.client.publish(TB_RPC_RESPONSE + msg.topic.rsplit("/", 1)[1], json.dumps(limits), qos=1)

    def snapshot(self, gateway: str) -> Count:
        """A copy of the counts of one gateway account so far."""
        with self._lock:
            c = self.counts.get(gateway, Count())
            return Count(c.messages, c.readings, c.first, c.last)

    def reset(self, gateway: str) -> None:
        """Forget what came from one account (before its next phase)."""
        with self._lock:
            self.counts.pop(gateway, None)
