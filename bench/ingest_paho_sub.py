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
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as paho
from bare_paho_sub import run_subscriber  # bench/ is this script's directory, first on sys.path

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
    state: dict[str, Any] = {"subscribed": False, "messages": 0, "records": 0, "t_done": None, "error": None}

    def on_message(client: paho.Client, msg: paho.MQTTMessage) -> None:
        state["records"] += len(orjson.loads(msg.payload))
        state["messages"] += 1
        client.ack(msg.mid, msg.qos)
        if state["t_done"] is None and state["records"] >= args.expected:
            state["t_done"] = time.monotonic()

    # Manual acks, as an ingest worker acknowledges (here at once, having written nothing).
    rc = run_subscriber(host=args.host, port=args.port, username=args.username, client_id="bench-paho-sub",
                        topic=TOPIC, receive_maximum=args.receive_maximum, counter=args.counter,
                        duration=args.duration, state=state, on_message=on_message, manual_ack=True)
    print(json.dumps(state), flush=True)
    return rc

if __name__ == "__main__":
    sys.exit(main())
