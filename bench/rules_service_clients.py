"""The MQTT clients of bench/rules_service.py that run beside the consumer: the publisher and the command listener.

Both are processes (multiprocessing, spawn) started by the parent, which is pinned to core 0, so they run
on core 0 with mosquitto while the consumer under test has core 1 to itself.

- publisher: one paho client per gateway, each logged in with its own account (the broker's ACL lets a
  gateway publish only to its own topics). `stream` mode publishes the pre-encoded packs round robin at
  QoS 1 as fast as the broker takes them; `paced` mode publishes `rate` packs per second with a real base
  time and puts a presence reading into the pack of a wijk's gateway at known times (the latency triggers).
- listener: the operator account subscribed to every gateway's commands; records the receive time
  (time.monotonic(), system-wide on Linux), the device and the command of each.
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from bench import rules_service_support as s


@dataclass(frozen=True)
class PublisherSpec:
    host: str
    port: int
    passwords: dict[str, str]  # gateway id -> password
    stream: Path  # the pre-encoded packs (rules_service_support.save_stream)
    mode: str  # "stream" or "paced"
    timeout: float
    inflight: int = 100
    # paced mode
    rate: float = 100.0  # packs per second, all gateways together
    duration: float = 10.0
    triggers: tuple[tuple[float, int, str], ...] = field(default=())  # (seconds after start, gateway, device)


def publisher(spec: PublisherSpec, start: Any, results: Any) -> None:
    """Process body: connect one client per gateway, wait for start, publish, report."""
    try:
        per_gateway = s.load_stream(spec.stream)
        gateways = [s.gateway_id(g) for g in range(len(per_gateway))]
        topics = [f"smartcity/v1/gw/{gw}/readings" for gw in gateways]
        if spec.mode == "stream":
            results.put(("done", _stream(spec, start, results, gateways, topics, per_gateway)))
        else:
            results.put(("done", _paced_paho(spec, start, results, gateways, topics, per_gateway)))
    except Exception as exc:
        results.put(("error", f"{type(exc).__name__}: {exc}"))


def _stream(spec: PublisherSpec, start: Any, results: Any, gateways: list[str], topics: list[str],  # noqa: PLR0917
            per_gateway: list[list[bytes]]) -> dict[str, Any]:
    """All packs, gateways in parallel, as fast as the broker acknowledges them (`inflight` per gateway)."""
    writers = [RawPublisher(spec.host, spec.port, gw, spec.passwords[gw], spec.inflight) for gw in gateways]
    try:
        results.put(("ready", None))
        if not start.wait(spec.timeout):
            raise RuntimeError("no start signal")
        t0 = time.time() - 60  # base times: the stream covers the minute before the start, pack by pack
        cpu0, t_first = time.process_time(), time.monotonic()
        threads = [threading.Thread(target=w.run, args=(topic, packs, t0, spec.timeout), daemon=True)
                   for w, topic, packs in zip(writers, topics, per_gateway, strict=True)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(spec.timeout)
        errors = [w.error for w in writers if w.error]
        if errors:
            raise RuntimeError(errors[0])
        t_published = max(w.t_done for w in writers)
        return {"messages": sum(map(len, per_gateway)), "acked": sum(w.acked for w in writers), "t_first": t_first,
                "t_published": t_published, "t_last": t_published, "cpu": time.process_time() - cpu0,
                "triggers": []}
    finally:
        for w in writers:
            w.close()


def _paced_paho(spec: PublisherSpec, start: Any, results: Any, gateways: list[str], topics: list[str],  # noqa: PLR0917
                per_gateway: list[list[bytes]]) -> dict[str, Any]:
    """`rate` packs/s through paho clients (one per gateway), with the presence triggers."""
    import paho.mqtt.client as paho  # noqa: PLC0415 (imported in the child only)
    from paho.mqtt.enums import CallbackAPIVersion  # noqa: PLC0415

    acked = [0]
    cond = threading.Condition()
    connected = [threading.Event() for _ in gateways]
    clients = []

    def on_publish(*_: Any) -> None:
        with cond:
            acked[0] += 1
            cond.notify_all()

    try:
        for i, gw in enumerate(gateways):
            c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{gw}", protocol=paho.MQTTv5)
            c.username_pw_set(gw, spec.passwords[gw])
            c.max_inflight_messages_set(spec.inflight)
            c.max_queued_messages_set(0)
            c.on_publish = on_publish
            c.on_connect = _on_connect(connected[i])
            c.connect(spec.host, spec.port, keepalive=60)
            c.loop_start()
            clients.append(c)
        if not all(ev.wait(spec.timeout) for ev in connected):
            raise RuntimeError("a gateway client could not connect")
        results.put(("ready", None))
        if not start.wait(spec.timeout):
            raise RuntimeError("no start signal")
        cpu0, t_first = time.process_time(), time.monotonic()
        sent, fired = _paced(spec, clients, topics, per_gateway, t_first)
        t_published = time.monotonic()
        deadline = t_published + spec.timeout
        with cond:
            while acked[0] < sent and time.monotonic() < deadline:
                cond.wait(0.5)
        return {"messages": sent, "acked": acked[0], "t_first": t_first, "t_published": t_published,
                "t_last": time.monotonic(), "cpu": time.process_time() - cpu0, "triggers": fired}
    finally:
        for c in clients:
            c.disconnect()
            c.loop_stop()


def _paced(spec: PublisherSpec, clients: list[Any], topics: list[str], per_gateway: list[list[bytes]],
           t_start: float) -> tuple[int, list[tuple[float, str, str]]]:
    """Publish rate packs/s for duration s; returns (packs sent, [(t published, gateway, device)])."""
    n = len(clients)
    triggers = sorted(spec.triggers)
    fired: list[tuple[float, str, str]] = []
    next_k = [0] * n
    ti = 0
    count = int(spec.rate * spec.duration)
    for i in range(count):
        due = t_start + i / spec.rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        g = i % n
        packs = per_gateway[g]
        pack = packs[next_k[g] % len(packs)]
        next_k[g] += 1
        now_wall, now = time.time(), time.monotonic()
        device = None
        # A trigger is due for this gateway: its presence reading goes first in this pack.
        for j in range(ti, len(triggers)):
            at, tg, dev = triggers[j]
            if at > now - t_start:
                break
            if tg == g and dev:
                device = dev
                triggers[j] = (at, tg, "")  # consumed
                break
        while ti < len(triggers) and not triggers[ti][2]:
            ti += 1
        if device is None:
            payload = s.with_base_time(pack, now_wall)
        else:
            records = orjson.loads(pack)
            first = records[0]
            del first["bt"], first["seq"]
            records.insert(0, {"bn": f"{device}/", "bt": round(now_wall, 6), "seq": next_k[g] - 1, "n": "presence",
                               "vb": True, "t": 0.0})
            payload = orjson.dumps(records)
        t_pub = time.monotonic()
        clients[g].publish(topics[g], payload, qos=1)
        if device is not None:
            fired.append((t_pub, s.gateway_id(g), device))
    return count, fired


class RawPublisher:
    """One gateway's MQTT 3.1.1 connection that writes prebuilt QoS 1 PUBLISH packets, `window` unacknowledged.

    paho's publish path costs ~150 us of Python per message here, so one paho process on core 0 could not
    publish faster than ~1.1M readings/s and left the consumers under test idle a third of the time; these
    packets cost a memory copy. It counts PUBACKs (4 bytes each: keepalive is 0, so nothing else arrives).
    """

    def __init__(self, host: str, port: int, username: str, password: str, window: int) -> None:
        import socket  # noqa: PLC0415

        self.sock = socket.create_connection((host, port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        user, pw = username.encode(), password.encode()
        cid = f"bench-raw-{username}".encode()
        body = (b"\x00\x04MQTT\x04\xc2\x00\x00" + len(cid).to_bytes(2, "big") + cid
                + len(user).to_bytes(2, "big") + user + len(pw).to_bytes(2, "big") + pw)
        self.sock.sendall(b"\x10" + _varint(len(body)) + body)
        connack = self._recv_exact(4)
        if connack[0] != 0x20 or connack[3] != 0:
            raise RuntimeError(f"{username}: CONNACK {connack.hex()}")
        self.window = threading.Semaphore(window)
        self.acked = 0
        self.error: str | None = None
        self.t_done = 0.0

    def _recv_exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise RuntimeError("broker closed the connection")
            buf += chunk
        return buf

    def run(self, topic: str, packs: list[bytes], t0: float, timeout: float) -> None:
        try:
            reader = threading.Thread(target=self._read_acks, args=(len(packs), timeout), daemon=True)
            reader.start()
            t = topic.encode()
            head = len(t).to_bytes(2, "big") + t
            for k, pack in enumerate(packs):
                payload = s.with_base_time(pack, t0 + 60 * k / len(packs))
                pid = k % 65535 + 1
                body_len = len(head) + 2 + len(payload)
                if not self.window.acquire(timeout=timeout):
                    raise RuntimeError("no PUBACK within the timeout")
                self.sock.sendall(b"\x32" + _varint(body_len) + head + pid.to_bytes(2, "big") + payload)
            reader.join(timeout)
            self.t_done = time.monotonic()
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"

    def _read_acks(self, total: int, timeout: float) -> None:
        self.sock.settimeout(timeout)
        pending = 0
        while self.acked < total:
            data = self.sock.recv(65536)
            if not data:
                self.error = self.error or "broker closed the connection"
                return
            pending += len(data)
            n, pending = divmod(pending, 4)
            self.acked += n
            for _ in range(n):
                self.window.release()

    def close(self) -> None:
        try:
            self.sock.sendall(b"\xe0\x00")  # DISCONNECT
        finally:
            self.sock.close()


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def listener(host: str, port: int, password: str, timeout: float, stop: Any, results: Any) -> None:  # noqa: PLR0917
    """Process body: record (t received, device, action, level or enabled) of every command until stop."""
    import paho.mqtt.client as paho  # noqa: PLC0415
    from paho.mqtt.enums import CallbackAPIVersion  # noqa: PLC0415

    try:
        got: list[tuple[float, str, str, Any]] = []
        subscribed = threading.Event()

        def on_message(_c: Any, _u: Any, msg: Any) -> None:
            t = time.monotonic()
            try:
                cmd = orjson.loads(msg.payload)
                params = cmd.get("params") or {}
                got.append((t, str(cmd.get("device")), str(cmd.get("action")),
                            params.get("level", params.get("enabled"))))
            except (ValueError, AttributeError):
                got.append((t, "?", "unparsable", None))

        c = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-command-listener", protocol=paho.MQTTv5)
        c.username_pw_set("operator", password)
        c.on_connect = lambda cl, *_: cl.subscribe("smartcity/v1/gw/+/commands", qos=1)
        c.on_subscribe = lambda *_: subscribed.set()
        c.on_message = on_message
        c.connect(host, port, keepalive=60)
        c.loop_start()
        if not subscribed.wait(timeout):
            raise RuntimeError("the command listener could not subscribe")
        results.put(("ready", None))
        stop.wait(timeout)
        time.sleep(0.2)
        c.disconnect()
        c.loop_stop()
        results.put(("done", got))
    except Exception as exc:
        results.put(("error", f"{type(exc).__name__}: {exc}"))


def _on_connect(event: threading.Event) -> Any:
    def on_connect(_client: Any, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if not reason.is_failure:
            event.set()

    return on_connect


class Child:
    """One publisher or listener process with its result queue; terminated on exit if still running."""

    def __init__(self, target: Any, *args: Any) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.event, self.results = ctx.Event(), ctx.Queue()
        self.proc = ctx.Process(target=target, args=(*args, self.event, self.results), daemon=True)
        self.proc.start()
        self.result: Any = None

    def take(self, want: str, timeout: float) -> Any:
        """The payload of the next message of kind want (raises on an error report or a timeout)."""
        try:
            kind, info = self.results.get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError(f"no {want!r} from {self.proc.name} after {timeout} s") from None
        if kind == "error":
            raise RuntimeError(f"{self.proc.name}: {info}")
        if kind != want:
            raise RuntimeError(f"{self.proc.name}: expected {want!r}, got {kind!r}")
        return info

    def poll(self, want: str) -> Any:
        """The payload of a message of kind want if one has arrived, else None."""
        try:
            kind, info = self.results.get_nowait()
        except queue.Empty:
            return None
        if kind == "error":
            raise RuntimeError(f"{self.proc.name}: {info}")
        return info if kind == want else None

    def close(self) -> None:
        self.event.set()
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.terminate()  # our own child, by its handle
            self.proc.join(5)
