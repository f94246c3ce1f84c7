"""The bare paho subscriber of bench/rules_service.py: receives and decodes the readings stream, nothing else.

It subscribes as the rules service does (MQTT 5, user `rules`, smartcity/v1/gw/+/readings at QoS 1, no
persistent session, Receive Maximum 10,000 as core/mqtt.py can set it; paho acknowledges each message after
on_message returns) and per message only decodes the SenML pack and counts its records:

- `orjson` (default): `orjson.loads(payload)` and `len()`: the floor of any Python consumer;
- `columns`: core.senml_columns.decode_columns (names, values, times resolved per record), what a
  consumer that uses every record pays;
- `msgspec`: msgspec typed decoding into a Struct of the SenML fields the rules read (bn, bt, n, v, vb, t),
  every other field skipped by the decoder (needs msgspec importable, e.g. via PYTHONPATH).

Progress goes to --counter (JSON, rewritten atomically every 0.1 s): subscribed, messages, records,
t_last (time.monotonic() of the last message: system-wide on Linux, so comparable with the parent's). It
stays connected until SIGTERM or --duration, so that the parent reads its CPU time from /proc first. The
password comes from $BENCH_MQTT_PASSWORD.

    python bench/rules_bare_sub.py --port P --counter FILE [--decoder orjson|columns|msgspec]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

TOPIC = "smartcity/v1/gw/+/readings"


def decoder(name: str) -> Callable[[bytes], int]:
    """A function payload -> number of records decoded."""
    if name == "orjson":
        loads = orjson.loads
        return lambda payload: len(loads(payload))
    if name == "columns":
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from core.senml_columns import decode_columns  # noqa: PLC0415

        return lambda payload: len(decode_columns(payload))
    if name == "msgspec":
        import msgspec  # noqa: PLC0415

        class Record(msgspec.Struct, omit_defaults=True):  # type: ignore[call-arg]
            bn: str | None = None
            bt: float | None = None
            n: str = ""
            v: float | None = None
            vb: bool | None = None
            t: float = 0.0

        dec = msgspec.json.Decoder(list[Record])
        return lambda payload: len(dec.decode(payload))
    raise SystemExit(f"unknown decoder {name!r}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--username", default="rules")
    p.add_argument("--client-id", default="bench-rules-bare-sub")
    p.add_argument("--counter", type=Path, required=True, help="progress file, rewritten every 0.1 s")
    p.add_argument("--decoder", default="orjson", choices=["orjson", "columns", "msgspec"])
    p.add_argument("--receive-maximum", type=int, default=10_000)
    p.add_argument("--duration", type=float, default=600, help="exit after this many seconds in any case")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    decode = decoder(args.decoder)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    state: dict[str, Any] = {"subscribed": False, "messages": 0, "records": 0, "t_last": None, "error": None,
                             "decoder": args.decoder}

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

    def on_message(_client: paho.Client, _userdata: Any, msg: paho.MQTTMessage) -> None:
        state["records"] += decode(msg.payload)
        state["messages"] += 1
        state["t_last"] = time.monotonic()

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=args.client_id, protocol=paho.MQTTv5)
    client.username_pw_set(args.username, os.environ.get("BENCH_MQTT_PASSWORD"))
    client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
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
    return 1 if state["error"] else 0


if __name__ == "__main__":
    sys.exit(main())
