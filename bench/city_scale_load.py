"""The offered load of bench/city_scale.py: every gateway of the city on its own MQTT connection, paced.

One process (multiprocessing, spawn) holds one raw MQTT 3.1.1 connection per gateway, each logged in
with the gateway's own account (bench/rules_service_clients.RawPublisher: prebuilt QoS 1 PUBLISH packets,
as paho's publish path costs ~150 us of Python per message). Unlike RawPublisher.run, which sends as fast
as the broker acknowledges, this sends on a schedule: each gateway one pack per second (the edge's flush
interval) holding the device reports that fell due in that second at `scale` x the real cadence, at its own
phase within the second; and the latency triggers (a presence reading of a wijk's trigger sensor, in a
pack of its own, as an event-driven uplink is). PUBACKs are read with a selector in the same thread.

The parent sends jobs on a queue and gets back one report per job; the child encodes a step's packs before
it starts the step's clock, so encoding is not in the measured window.
"""

from __future__ import annotations

import math
import multiprocessing
import queue
import random
import selectors
import time
from dataclasses import dataclass
from typing import Any

from bench import city_scale_city as cc
from bench.rules_service_clients import RawPublisher, _varint

WINDOW = 2000  # unacknowledged packs per gateway before a pack is refused (the broker acks on receipt)


@dataclass(frozen=True)
class LoadSpec:
    host: str
    port: int
    passwords: dict[str, str]
    city: cc.City
    timeout: float


@dataclass(frozen=True)
class Job:
    kind: str  # "probe", "census" or "step"
    scale: float = 1.0
    duration: float = 10.0
    trigger_rate: float = 0.0  # triggers per second, city-wide
    hold: float = 1.0  # the presence rule's hold (s)
    census_rate: float = 100_000.0  # records per second for the census


def run(spec: LoadSpec, jobs: Any, results: Any) -> None:
    """Process body: connect every gateway, then run jobs until None."""
    try:
        city = spec.city
        conns = [RawPublisher(spec.host, spec.port, cc.gateway_id(g), spec.passwords[cc.gateway_id(g)], 1)
                 for g in range(city.gateways)]
        sender = Sender(city, conns)
        results.put(("ready", None))
        while True:
            job = jobs.get(timeout=spec.timeout * 10)
            if job is None:
                break
            work = {"census": sender.census, "probe": sender.probe, "step": sender.step}[job.kind]
            results.put(("done", work(job)))
        for c in conns:
            c.close()
    except Exception as exc:
        results.put(("error", f"{type(exc).__name__}: {exc}"))


class Sender:
    def __init__(self, city: cc.City, conns: list[RawPublisher]) -> None:
        self.city, self.conns = city, conns
        self.heads = []
        for g in range(city.gateways):
            t = f"smartcity/v1/gw/{cc.gateway_id(g)}/readings".encode()
            self.heads.append(len(t).to_bytes(2, "big") + t)
        self.triggered = 0
        self.seq = [0] * city.gateways
        self.pid = [0] * city.gateways
        self.sent = [0] * city.gateways
        self.acked = [0] * city.gateways
        self.rest = [0] * city.gateways
        self.sel = selectors.DefaultSelector()
        for g, c in enumerate(conns):
            c.sock.setblocking(False)
            self.sel.register(c.sock, selectors.EVENT_READ, g)

    def publish(self, g: int, payload: bytes) -> bool:
        if self.sent[g] - self.acked[g] >= WINDOW:
            return False
        self.pid[g] = self.pid[g] % 65535 + 1
        head = self.heads[g]
        packet = b"\x32" + _varint(len(head) + 2 + len(payload)) + head + self.pid[g].to_bytes(2, "big") + payload
        sock = self.conns[g].sock
        view = memoryview(packet)
        while view:  # non-blocking socket: a full send buffer waits here (the broker is behind)
            try:
                n = sock.send(view)
                view = view[n:]
            except BlockingIOError:
                self.read_acks(0.001)
        self.sent[g] += 1
        return True

    def read_acks(self, timeout: float) -> None:
        for key, _ in self.sel.select(timeout):
            g = key.data
            try:
                data = self.conns[g].sock.recv(65536)
            except BlockingIOError:
                continue
            if not data:
                raise RuntimeError(f"{cc.gateway_id(g)}: the broker closed the connection")
            n, self.rest[g] = divmod(self.rest[g] + len(data), 4)  # PUBACKs only: 4 bytes each
            self.acked[g] += n

    def next_seq(self, g: int) -> int:
        self.seq[g] += 1
        return self.seq[g] - 1

    def play(self, events: list[tuple[float, int, Any]], timeout: float) -> dict[str, Any]:
        """Send (offset s, gateway, cc.Pack or trigger device) at t0 + offset; wait for the PUBACKs."""
        events.sort(key=lambda e: e[0])
        cpu0, t0, wall0 = time.process_time(), time.monotonic(), time.time()
        records = points = packs = refused = 0
        behind_max = 0.0
        triggers: list[tuple[float, str, str]] = []
        for offset, g, what in events:
            due = t0 + offset
            while (now := time.monotonic()) < due:
                self.read_acks(min(due - now, 0.005))
            behind_max = max(behind_max, now - due)
            if isinstance(what, tuple):  # a trigger (or its end): presence in its own pack
                device, present = what
                t_pub = time.monotonic()
                if self.publish(g, cc.trigger_pack(device, time.time(), self.next_seq(g), present)):
                    if present:
                        triggers.append((t_pub, cc.gateway_id(g), device))
                    records, points, packs = records + 1, points + 1, packs + 1
                else:
                    refused += 1
                continue
            if self.publish(g, cc.finish(what.payload, time.time(), self.next_seq(g))):
                records, points, packs = records + what.records, points + what.points, packs + 1
            else:
                refused += 1
        t_sent = time.monotonic()
        deadline = t_sent + timeout
        while sum(self.sent) > sum(self.acked) and time.monotonic() < deadline:
            self.read_acks(0.05)
        return {"records": records, "points": points, "packs": packs, "refused": refused,
                "unacked": sum(self.sent) - sum(self.acked), "t_first": t0, "wall_first": wall0,
                "t_sent": t_sent, "wall_sent": time.time(), "t_acked": time.monotonic(),
                "behind_max_s": behind_max, "cpu": time.process_time() - cpu0, "triggers": triggers}

    def census(self, job: Job) -> dict[str, Any]:
        """Every device once, gateways interleaved, at job.census_rate records/s."""
        per_gw = [cc.census_packs(self.city, g) for g in range(self.city.gateways)]
        order = [(k, g) for k in range(max(map(len, per_gw))) for g in range(self.city.gateways) if k < len(per_gw[g])]
        events: list[tuple[float, int, Any]] = []
        t = 0.0
        for k, g in order:
            events.append((t, g, per_gw[g][k]))
            t += per_gw[g][k].records / job.census_rate
        return self.play(events, 30) | {"seconds_planned": t}

    def probe(self, _job: Job) -> dict[str, Any]:
        """One small pack per gateway (a street light's report): proves the consumers have subscribed."""
        rnd = random.Random(cc.SEED)
        events: list[tuple[float, int, Any]] = []
        for g in range(self.city.gateways):
            dev = cc.gateway_devices(self.city, g)[0]
            events.append((g * 0.0005, g, cc.Pack(cc.encode([dev], rnd), cc.records_of([dev]), 1)))
        return self.play(events, 10)

    def step(self, job: Job) -> dict[str, Any]:
        """`duration` s of the city at `scale` x its cadence, plus `trigger_rate` triggers/s."""
        city, rnd = self.city, random.Random(cc.SEED + int(job.scale * 1000))
        rate, _ = cc.offered_per_gateway(job.scale)
        lo, hi = max(1, math.floor(rate)), max(1, math.ceil(rate))
        packs = {g: {n: cc.gateway_packs(city, g, n, 2) for n in {lo, hi}} for g in range(city.gateways)}
        events: list[tuple[float, int, Any]] = []
        seconds = int(job.duration)
        for g in range(city.gateways):
            phase, within = rnd.random(), rnd.random()  # where in its cycle and in each second it sends
            used = 0
            for sec in range(seconds):
                n = math.floor((sec + 1) * rate + phase) - math.floor(sec * rate + phase)
                if n <= 0:
                    continue
                # n is floor(rate) or ceil(rate) (0 or 1 below one report a second): sizes encoded above
                options = packs[g][n]
                events.append((sec + within, g, options[used % len(options)]))
                used += 1
        if job.trigger_rate > 0:
            # Every wijk in turn across steps (a counter kept over jobs); the sensor reports the person gone
            # half a hold later, so the wijk can clear before it is triggered again. None in the last 0.5 s.
            stride = _coprime_stride(city.gateways)
            for k in range(int((job.duration - 0.75) * job.trigger_rate)):
                g = self.triggered * stride % city.gateways
                self.triggered += 1
                at = 0.25 + k / job.trigger_rate
                events.append((at, g, (cc.trigger_device(city, g), True)))
                events.append((at + job.hold / 2, g, (cc.trigger_device(city, g), False)))
        return self.play(events, 30) | {"scale": job.scale, "duration": float(seconds)}


def _coprime_stride(n: int) -> int:
    """A stride that visits every wijk before repeating one, and neighbours far apart."""
    s = max(1, n // 3 + 1)
    while math.gcd(s, n) != 1:
        s += 1
    return s


class Load:
    """The load process and its job queue; close() stops it (by its handle)."""

    def __init__(self, spec: LoadSpec) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.jobs, self.results = ctx.Queue(), ctx.Queue()
        self.proc = ctx.Process(target=run, args=(spec, self.jobs, self.results), daemon=True, name="city-load")
        self.proc.start()
        self.take("ready", 120)

    @property
    def pid(self) -> int:
        return int(self.proc.pid or 0)

    def take(self, want: str, timeout: float) -> Any:
        try:
            kind, info = self.results.get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError(f"the load process sent no {want!r} within {timeout} s") from None
        if kind == "error":
            raise RuntimeError(f"load process: {info}")
        return info

    def submit(self, job: Job) -> None:
        self.jobs.put(job)

    def poll(self) -> dict[str, Any] | None:
        try:
            kind, info = self.results.get_nowait()
        except queue.Empty:
            return None
        if kind == "error":
            raise RuntimeError(f"load process: {info}")
        return dict(info)

    def close(self) -> None:
        self.jobs.put(None)
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(5)
