"""The `paho` phase of bench/ingest.py: a bare paho-mqtt subscriber, the ceiling of a pure-Python consumer.

It consumes the readings stream the way an ingest worker does (MQTT 5, shared subscription at QoS 1,
manual acks, Receive Maximum 10,000 as core/mqtt.py's connect_properties sets it), but per message only
parses the SenML pack (`orjson.loads`), counts its records and acknowledges it at once; it writes nothing.

Progress goes to --counter (JSON, rewritten atomically every 0.1 s): subscribed, messages, records,
and `t_done`, the time.monotonic() (system-wide on Linux, so comparable with the parent's) at which the
record count first reached --expected. It stays connected (idle) until SIGTERM or --duration, so that the
parent can read its CPU time from /proc before stopping it. The password comes from $BENCH_MQTT_PASSWORD.

    python bench/ingest_paho_sub.py --port P --username ingest --expected N --counter FILE
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

TOPIC = "$share/ingest/smartcity/v1/gw/+/readings"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--username", default="ingest")
    p.add_argument("--expected", type=int, required=True, help="records to count before t_done is set")
    p.add_argument("--counter", type=Path, required=True, help="progress file, rewritten every 0.1 s")
    p.add_argument("--receive-maximum", type=int, default=10_000)
    p.add_argument("--duration", type=float, default=600, help="exit after this many seconds in any case")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    state: dict[str, Any] = {"subscribed": False, "messages": 0, "records": 0, "t_done": None, "error": None}

    def on_connect(client: paho.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            state["error"] = f"CONNACK: {reason}"
            stop.set()
        else:
            client.subscribe(TOPIC, qos=1)

    def on_subscribe(_client: paho.Client, _userdata: Any, _mid: int, reasons: list[Any], _props: Any) -> None:
        if any(r.is_failure for r in reasons):
            state["error"] = f"SUBACK: {[str(r) for r in reasons]}"
            stop.set()
        else:
            state["subscribed"] = True

    def on_message(client: paho.Client, _userdata: Any, msg: paho.MQTTMessage) -> None:
        state["records"] += len(orjson.loads(msg.payload))
        state["messages"] += 1
        client.ack(msg.mid, msg.qos)
        if state["t_done"] is None and state["records"] >= args.expected:
            state["t_done"] = time.monotonic()

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-paho-sub", protocol=paho.MQTTv5,
                         manual_ack=True)
    client.username_pw_set(args.username, os.environ.get("BENCH_MQTT_PASSWORD"))
    client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
    # As core/mqtt.py connect_properties(session_expiry=0, receive_maximum=...): no persistent session.
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 0
    props.ReceiveMaximum = args.receive_maximum
    client.connect(args.host, args.port, keepalive=30, clean_start=True, properties=props)
    client.loop_start()

    def dump() -> None:
        tmp = args.counter.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(args.counter)

    deadline = time.monotonic() + args.duration
    try:
        while not stop.wait(0.1) and time.monotonic() < deadline:
            dump()
    finally:
        dump()
        client.disconnect()
        client.loop_stop()
    print(json.dumps(state), flush=True)
    return 1 if state["error"] else 0


if __name__ == "__main__":
    sys.exit(main())
