"""Kernel figure of the ingest's hot path (not the service's figure: no MQTT, no InfluxDB).

Per SenML pack of 100 street-light records (20 devices x 5 metrics, as the edge sends them): the JSON
parse alone (orjson.loads, the floor), the columnar decode, the object-per-record decode it replaced,
and the whole conversion the ingest does per message (decode, validation, line protocol).
Repeated rounds in one run; report the medians. The service's figure is bench/ingest.py.

    .venv/bin/python bench/ingest_convert.py [--packs 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson

# Run as a script, bench/ comes first on sys.path and bench/ingest.py would shadow the ingest package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.registry import WatchedRegistry
from core.senml import Reading, decode, encode
from core.senml_columns import decode_columns
from ingest.messages import MessageConverter
from ingest.metrics import IngestMetrics
from smartcity.data import demo_registry_path

METRICS = (("dim_level", "%"), ("power", "W"), ("energy", "kWh"), ("voltage", "V"), ("temperature", "Cel"))
DEVICES = ("vs-sl-101", "vs-sl-102", "vs-sl-103", "vs-sl-201")
TOPIC = "smartcity/v1/gw/gw-vs-01/readings"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--packs", type=int, default=20_000, help="packs per measurement")
    p.add_argument("--rounds", type=int, default=3, help="rounds (the median is reported)")
    args = p.parse_args()
    now = time.time()
    readings = [Reading(DEVICES[i % 4], m, float(i) + 0.5, now - 100 + i * 0.001, u)
                for i in range(20) for m, u in METRICS]
    payload = encode(readings, 5)
    converter = MessageConverter(WatchedRegistry(demo_registry_path()), IngestMetrics(), "bench")
    lines, _ = converter.convert(TOPIC, payload, now)
    assert len(lines) == 20, lines  # every record valid: one line per device and time
    cases: dict[str, Callable[[], object]] = {
        "orjson.loads (floor)": lambda: orjson.loads(payload),
        "decode_columns": lambda: decode_columns(payload, now),
        "decode to Reading objects (old path)": lambda: decode(payload, now),
        "whole conversion (MessageConverter.convert)": lambda: converter.convert(TOPIC, payload, now),
    }
    print("| step | us per 100-record pack | records/s, one core |")
    print("|---|---:|---:|")
    for name, fn in cases.items():
        times = []
        for r in range(args.rounds):
            print(f"{name}: round {r + 1}/{args.rounds}", file=sys.stderr, flush=True)
            started = time.perf_counter()
            for _ in range(args.packs):
                fn()
            times.append((time.perf_counter() - started) / args.packs)
        per_pack = statistics.median(times)
        print(f"| {name} | {per_pack * 1e6:.1f} | {100 / per_pack / 1e6:.2f}M |")


if __name__ == "__main__":
    main()
