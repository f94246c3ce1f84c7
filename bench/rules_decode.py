"""Decoder kernel figure for the rules service: what decoding one SenML pack of the benchmark stream costs.

No MQTT: the packs of bench/rules_service.py (200 records, 13.2 % read by the rules), decoded in a loop on
one core, median of 3 rounds. Candidates: the JSON parsers alone (orjson, stdlib json, msgspec), the
selective decode the service uses (core.senml_select.decode_selected) and its two decoders (orjson and
msgspec), the decode of every record (core.senml_columns.decode_columns), msgspec typed decoding into a
Struct of only the fields the rules need (the rest skipped by the parser) plus the same selection loop, and
SenML CBOR (RFC 8428 section 6, integer labels) through cbor2 plus the selection loop. cbor2 is optional:
put it on PYTHONPATH (or BENCH_DECODERS_PATH) to include it. bench/senml_select_speed.py compares the
service's decoders alone, with more repeats.

    .venv/bin/python bench/rules_decode.py [--packs 2000] [--batch 200]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
if os.environ.get("BENCH_DECODERS_PATH"):
    sys.path.append(os.environ["BENCH_DECODERS_PATH"])

import orjson  # noqa: E402

from bench import rules_service_support as s  # noqa: E402
from core.senml_columns import decode_columns  # noqa: E402
from core.senml_select import decode_selected, decode_selected_msgspec, decode_selected_orjson  # noqa: E402

# RFC 8428 section 6: CBOR labels of the SenML fields.
CBOR_LABELS = {"bn": -2, "bt": -3, "bu": -4, "n": 0, "u": 1, "v": 2, "vs": 3, "vb": 4, "t": 6}


def select_loop(records: list[Any], names: dict[str, int], get: Callable[[Any, str], Any]) -> int:
    """The selection a consumer does after parsing: base name/time, name lookup, value and time."""
    bn, bt, kept = "", 0.0, 0
    for r in records:
        b = get(r, "bn")
        if b is not None:
            bn = b
        b = get(r, "bt")
        if b is not None:
            bt = b
        idx = names.get(bn + (get(r, "n") or ""))
        if idx is None:
            continue
        v = get(r, "v")
        if v is None:
            v = 1.0 if get(r, "vb") else 0.0
        _t = bt + (get(r, "t") or 0.0)
        kept += 1
    return kept


def candidates(packs: list[bytes], names: dict[str, int]) -> dict[str, Callable[[bytes], Any]]:
    out: dict[str, Callable[[bytes], Any]] = {
        "orjson.loads": orjson.loads,
        "json.loads (stdlib)": json.loads,
        "decode_selected (the service's decode)": lambda p: decode_selected(p, names, 1.8e9),
        "decode_selected_orjson (its fallback)": lambda p: decode_selected_orjson(p, names, 1.8e9),
        "decode_selected_msgspec (its fast path)": lambda p: decode_selected_msgspec(p, names, 1.8e9),
        "decode_columns (every record)": lambda p: decode_columns(p, 1.8e9),
        "orjson.loads + selection loop": lambda p: select_loop(orjson.loads(p), names, dict.get),
    }
    try:
        import msgspec  # noqa: PLC0415

        class Record(msgspec.Struct):  # type: ignore[call-arg]
            bn: str | None = None
            bt: float | None = None
            n: str = ""
            v: float | None = None
            vb: bool | None = None
            t: float = 0.0

        dec = msgspec.json.Decoder(list[Record])
        any_dec = msgspec.json.Decoder()
        out["msgspec.json (untyped)"] = any_dec.decode
        out["msgspec typed Struct (u, seq skipped)"] = dec.decode
        out["msgspec typed Struct + selection loop"] = lambda p: select_loop(dec.decode(p), names, getattr)
    except ImportError:
        print("msgspec not importable: skipped", file=sys.stderr)
    try:
        import cbor2  # noqa: PLC0415

        def to_cbor(p: bytes) -> bytes:
            return cbor2.dumps([{CBOR_LABELS.get(k, k): v for k, v in r.items()} for r in orjson.loads(p)])

        cbor_of = {p: to_cbor(p) for p in packs}
        ln, lbn, lbt, lv, lvb, lt = 0, -2, -3, 2, 4, 6
        keys = {"n": ln, "bn": lbn, "bt": lbt, "v": lv, "vb": lvb, "t": lt}
        out["cbor2.loads (SenML CBOR)"] = lambda p: cbor2.loads(cbor_of[p])
        out["cbor2.loads + selection loop"] = lambda p: select_loop(cbor2.loads(cbor_of[p]), names,
                                                                  lambda r, k: r.get(keys[k]))
        size = statistics.fmean(len(c) for c in cbor_of.values())
        print(f"SenML CBOR: {size:,.0f} bytes per pack vs JSON {statistics.fmean(map(len, packs)):,.0f}",
              file=sys.stderr)
    except ImportError:
        print("cbor2 not importable: skipped", file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--packs", type=int, default=2000)
    p.add_argument("--batch", type=int, default=200)
    p.add_argument("--gateways", type=int, default=8)
    args = p.parse_args(argv)
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {1})
    per_gw = -(-args.packs // args.gateways)
    packs = [s.with_base_time(x, 1.8e9 - 60) for g in range(args.gateways)
             for x in s.gateway_packs(g, args.gateways, per_gw, args.batch)]
    names: dict[str, int] = {}
    for d in s.devices(args.gateways):
        for kind, metric in s.RULE_METRICS:
            if d.kind == kind:
                names[f"{d.id}/{metric}"] = len(names)
    print(f"{len(packs):,} packs of {args.batch} records, {len(names):,} series the rules read", file=sys.stderr)
    rows = []
    for name, fn in candidates(packs, names).items():
        rounds = []
        for _ in range(3):
            t0 = time.process_time()
            for x in packs:
                fn(x)
            rounds.append((time.process_time() - t0) / len(packs))
        us = statistics.median(rounds) * 1e6
        rows.append((name, us, args.batch / us * 1e6))
    print(f"| decode of one {args.batch}-record pack | us per pack | records/s, one core |")
    print("|---|---:|---:|")
    for name, us, rate in rows:
        print(f"| {name} | {us:.1f} | {rate / 1e6:.2f}M |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
