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
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as paho
from bare_paho_sub import run_subscriber  # bench/ is this script's directory, first on sys.path

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
    state: dict[str, Any] = {"subscribed": False, "messages": 0, "records": 0, "t_last": None, "error": None,
                             "decoder": args.decoder}

    def on_message(_client: paho.Client, msg: paho.MQTTMessage) -> None:
        state["records"] += decode(msg.payload)
        state["messages"] += 1
        state["t_last"] = time.monotonic()

    # paho acknowledges each message once on_message has returned.
    return run_subscriber(host=args.host, port=args.port, username=args.username, client_id=args.client_id,
                          topic=TOPIC, receive_maximum=args.receive_maximum, counter=args.counter,
                          duration=args.duration, state=state, on_message=on_message)

if __name__ == "__main__":
    sys.exit(main())
