"""What the rules service's decode of one SenML pack costs: decode_columns + lookup, the orjson path, the msgspec path.

No MQTT: the gateway packs of bench/rules_service.py (200 records, bn per device, bt and seq on the first,
relative t, units; 13.2 % of the records are series the rules read), decoded in a loop on one core.
Each candidate runs `--repeats` rounds over every pack, rounds interleaved across candidates; figures are
the median round, in microseconds of CPU time per pack. Before timing, every candidate must give the same
columns on every pack (the script exits 1 otherwise).

Candidates:
- decode_columns + lookup: every record decoded (core.senml_columns), then the names the rules read kept,
  as the service did before core.senml_select;
- decode_selected_orjson: orjson.loads and the selective loop (core.senml_select's fallback);
- decode_selected_msgspec: msgspec typed decoding of the SenML fields and the same selection;
- decode_selected: what the service calls (msgspec first, orjson if msgspec declines);
- decode_selected, a bad last record: the worst case of the fallback, the msgspec decode is wasted;
- the two parsers alone (orjson.loads, the msgspec typed decoder), for scale.

    .venv/bin/python bench/senml_select_speed.py [--packs 2000] [--batch 200] [--repeats 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import msgspec  # noqa: E402
import numpy as np  # noqa: E402
import orjson  # noqa: E402

from bench import rules_service_support as s  # noqa: E402
from core import senml_select  # noqa: E402
from core.senml_columns import decode_columns  # noqa: E402
from core.senml_select import decode_selected, decode_selected_msgspec, decode_selected_orjson  # noqa: E402

NOW = 1.8e9


def columns_and_lookup(payload: bytes, names: dict[str, int]) -> tuple[Any, Any, Any]:
    """decode_columns, then only the records of selected series with a number or boolean value, as arrays."""
    cols = decode_columns(payload, NOW)
    lookup = names.get
    rows = [(i, float(v), t) for n, v, t in zip(cols.names, cols.values, cols.times, strict=True)
            if (i := lookup(n)) is not None and not isinstance(v, str)]
    series = np.array([r[0] for r in rows], dtype=np.intp)
    values = np.array([r[1] for r in rows], dtype=np.float64)
    times = np.array([r[2] for r in rows], dtype=np.float64)
    return series, values, times


def columns_of(result: Any) -> tuple[list[int], list[float], list[float]]:
    if isinstance(result, tuple):
        return result[0].tolist(), result[1].tolist(), result[2].tolist()
    return result.series.tolist(), result.values.tolist(), result.times.tolist()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--packs", type=int, default=2000)
    p.add_argument("--batch", type=int, default=200)
    p.add_argument("--gateways", type=int, default=8)
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args(argv)
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {1})
    per_gw = -(-args.packs // args.gateways)
    packs = [s.with_base_time(x, NOW - 60) for g in range(args.gateways)
             for x in s.gateway_packs(g, args.gateways, per_gw, args.batch)][: args.packs]
    names: dict[str, int] = {}
    for d in s.devices(args.gateways):
        for kind, metric in s.RULE_METRICS:
            if d.kind == kind:
                names[f"{d.id}/{metric}"] = len(names)
    # The same packs with their last record made bad (a boolean v): msgspec declines, orjson reads them.
    bad_last = [x[:-1] + b',{"n":"x","v":true}]' for x in packs]
    selected = statistics.fmean(len(decode_selected(x, names, NOW)) for x in packs) / args.batch
    print(f"{len(packs):,} packs of {args.batch} records ({statistics.fmean(map(len, packs)):,.0f} bytes), "
          f"{len(names):,} series the rules read, {selected:.1%} of the records selected; "
          f"python {sys.version.split()[0]}, orjson {orjson.__version__}, msgspec {msgspec.__version__}",
          file=sys.stderr)

    candidates: dict[str, tuple[Callable[[bytes], Any], list[bytes]]] = {
        "decode_columns + lookup": (lambda x: columns_and_lookup(x, names), packs),
        "decode_selected_orjson": (lambda x: decode_selected_orjson(x, names, NOW), packs),
        "decode_selected_msgspec": (lambda x: decode_selected_msgspec(x, names, NOW), packs),
        "decode_selected": (lambda x: decode_selected(x, names, NOW), packs),
        "decode_selected, a bad last record (fallback)": (lambda x: decode_selected(x, names, NOW), bad_last),
        "orjson.loads alone": (orjson.loads, packs),
        "msgspec typed decode alone": (senml_select._DECODER.decode, packs),
    }
    for x, bad in zip(packs, bad_last, strict=True):
        want = columns_of(columns_and_lookup(x, names))
        fast = decode_selected_msgspec(x, names, NOW)
        if fast is None or not fast.fast or decode_selected_msgspec(bad, names, NOW) is not None:
            print("the msgspec path did not take the packs it should", file=sys.stderr)
            return 1
        results = [fast, decode_selected_orjson(x, names, NOW), decode_selected(x, names, NOW),
                   decode_selected(bad, names, NOW)]
        if any(columns_of(r) != want for r in results):
            print("the candidates disagree on a pack", file=sys.stderr)
            return 1

    rounds: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(args.repeats):
        for name, (fn, inputs) in candidates.items():
            t0 = time.process_time()
            for x in inputs:
                fn(x)
            rounds[name].append((time.process_time() - t0) / len(inputs))
    base = statistics.median(rounds["decode_columns + lookup"])
    print(f"| decode of one {args.batch}-record pack | us per pack (median of {args.repeats}) | min-max | "
          "vs decode_columns + lookup |")
    print("|---|---:|---:|---:|")
    for name, times in rounds.items():
        us = statistics.median(times)
        print(f"| {name} | {us * 1e6:.1f} | {min(times) * 1e6:.1f}-{max(times) * 1e6:.1f} | {base / us:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
