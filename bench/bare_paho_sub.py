"""The bare paho-mqtt 2.x subscriber both baselines run (bench/ingest_paho_sub.py, bench/rules_bare_sub.py).

MQTT 5 with no persistent session and a Receive Maximum (as core/mqtt.py's connect_properties sets it),
one subscription at QoS 1, the message handler the caller gives; progress goes to a counter file
(JSON, rewritten atomically every 0.1 s) until SIGTERM or the duration. It imports nothing of the
project: it is the floor the services are measured against. The password comes from
$BENCH_MQTT_PASSWORD.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


def run_subscriber(*, host: str, port: int, username: str, client_id: str, topic: str,
                   receive_maximum: int, counter: Path, duration: float, state: dict[str, Any],
                   on_message: Callable[[paho.Client, paho.MQTTMessage], None], manual_ack: bool = False) -> int:
    """Subscribe, hand each message to on_message, keep the counter file current; 1 if the broker refused."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    state.setdefault("subscribed", False)
    state.setdefault("error", None)

    def on_connect(client: paho.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            state["error"] = f"CONNACK: {reason}"
            stop.set()
        else:
            client.subscribe(topic, qos=1)

    def on_subscribe(_client: paho.Client, _userdata: Any, _mid: int, reasons: list[Any], _props: Any) -> None:
        if any(r.is_failure for r in reasons):
            state["error"] = f"SUBACK: {[str(r) for r in reasons]}"
            stop.set()
        else:
            state["subscribed"] = True

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5,
                         manual_ack=manual_ack)
    client.username_pw_set(username, os.environ.get("BENCH_MQTT_PASSWORD"))
    client.on_connect, client.on_subscribe = on_connect, on_subscribe
    client.on_message = lambda c, _u, msg: on_message(c, msg)
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 0
    props.ReceiveMaximum = receive_maximum
    client.connect(host, port, keepalive=30, clean_start=True, properties=props)
    client.loop_start()

    def dump() -> None:
        tmp = counter.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(counter)

    deadline = time.monotonic() + duration
    try:
        while not stop.wait(0.1) and time.monotonic() < deadline:
            dump()
    finally:
        dump()
        client.disconnect()
        client.loop_stop()
    return 1 if state["error"] else 0
