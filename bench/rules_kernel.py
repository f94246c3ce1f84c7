"""Benchmark of the presence_dimming kernel against the scalar reference, side by side in one run.

Target (performance.md): >= 5M readings/s on one core for 100k series and 1,000 rules, and
>= 100x the scalar reference on the same input. Run from the repository root:

    .venv/bin/python bench/rules_kernel.py            # full scale, about two minutes
    .venv/bin/python bench/rules_kernel.py --quick    # small smoke run

The synthetic city has one gemeente per rule (GM0001...), each with wijken of occupancy sensors
and street lights; rule i covers gemeente i by wijk. All of it goes through the real code paths:
core.registry.parse, rules.rule_file.parse_rules, the stack and the reference. Every timed loop
stops at a reading count or a time limit, whichever comes first; figures are medians of the
repeats, and vectorised and reference runs alternate so that machine noise hits both alike.
"""

from __future__ import annotations

import argparse
import copy
import gc
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from core.registry import Registry, parse
from core.senml import Reading
from rules.engine import RulesEngine
from rules.presence_dimming import PresenceDimmingStack
from rules.reference import ReferencePresenceDimming
from rules.rule_file import RuleSet, parse_rules

START = 1_700_000_000.0
PRESENCE_SHARE = 0.2  # share of readings that report presence
LATE_SHARE = 0.05  # share of readings that arrive up to a minute late


def city(n_gemeenten: int, wijken: int, sensors: int, lights: int) -> Registry:
    """A registry of n_gemeenten x wijken zones, one gateway per wijk."""
    features: list[dict[str, Any]] = []

    def add(props: dict[str, Any]) -> None:
        features.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [5.0, 52.0]},
                         "properties": props})

    for g in range(1, n_gemeenten + 1):
        gm = f"GM{g:04d}"
        for w in range(wijken):
            wk, gw = f"WK{g:04d}{w:02d}", f"gw-{g}-{w}"
            add({"role": "gateway", "id": gw, "gemeente": gm})
            for i in range(sensors + lights):
                kind, name = ("occupancy", f"occ-{g}-{w}-{i}") if i < sensors else ("street_light", f"sl-{g}-{w}-{i}")
                add({"role": "device", "id": name, "kind": kind, "gateway": gw, "gemeente": gm, "wijk": wk,
                     "link": "lora", "address": f"{i:08X}"})
    return parse({"type": "FeatureCollection", "cbs_map_year": 2024, "features": features})


def ruleset(n_rules: int) -> RuleSet:
    """One rule per gemeente, with hold and levels varying between rules."""
    parts = ["version = 1\n"]
    for g in range(1, n_rules + 1):
        parts.append(f'[[rules]]\nname = "presence-{g}"\ntype = "presence_dimming"\nzone = "wijk"\n'
                     f'sensor_kind = "occupancy"\nsensor_metric = "presence"\ntarget_kind = "street_light"\n'
                     f"on_level = {100 - g % 3 * 10}\noff_level = {g % 4 * 10}\nhold_seconds = {20 + g % 20}\n"
                     f'reassert_seconds = 300\ngemeenten = ["GM{g:04d}"]\n')
    return parse_rules("".join(parts), "bench")


def stream(n: int, n_inputs: int, rate: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n readings arriving at `rate` per stream second: 20 % presence, 5 % up to 60 s late."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n_inputs, n).astype(np.intp)
    values = (rng.random(n) < PRESENCE_SHARE).astype(np.float64)
    ts = START + np.arange(n) / rate
    late = rng.random(n) < LATE_SHARE
    ts[late] -= rng.uniform(0, 60, int(late.sum()))
    return idx, values, ts


Kernel = PresenceDimmingStack | ReferencePresenceDimming


def run(kernel: Kernel, data: tuple[np.ndarray, np.ndarray, np.ndarray], *, batch: int, eval_every: int,
        max_readings: int, max_seconds: float, keep: bool = False) -> tuple[float, int, list[Any]]:
    """Feed batches and evaluate every eval_every readings; returns (readings/s, readings, changes).

    Changes are kept only if asked: a service hands them on and drops them, and keeping
    millions alive would time the garbage collector rather than the kernel.
    """
    idx, values, ts = data
    limit = min(max_readings, len(idx))
    done = since_eval = 0
    changes: list[Any] = []
    t0 = time.perf_counter()
    deadline = t0 + max_seconds
    while done < limit and time.perf_counter() < deadline:
        end = min(done + batch, limit)
        kernel.update_many(idx[done:end], values[done:end], ts[done:end])
        since_eval += end - done
        done = end
        if since_eval >= eval_every:
            out = kernel.evaluate(float(ts[done - 1]))
            if keep:
                changes.extend(out)
            since_eval = 0
    elapsed = time.perf_counter() - t0
    return done / elapsed, done, changes


def time_evaluate(kernel: Kernel, now: float, calls: int, max_seconds: float) -> float:
    """Median seconds of one evaluate() over all zones (state already warm)."""
    times = []
    deadline = time.perf_counter() + max_seconds
    for i in range(calls):
        t0 = time.perf_counter()
        kernel.evaluate(now + i * 0.001)
        times.append(time.perf_counter() - t0)
        if time.perf_counter() > deadline:
            break
    return statistics.median(times)


def fresh(kernel: Kernel) -> Kernel:
    """A copy in the initial state: state arrays copied, the (immutable) topology shared."""
    if isinstance(kernel, ReferencePresenceDimming):
        return copy.deepcopy(kernel)  # its state lives in its zone objects
    clone = copy.copy(kernel)
    for name in ("last_presence", "grace_start", "last_level", "last_emit"):
        setattr(clone, name, getattr(kernel, name).copy())
    return clone


def side_by_side(fast0: PresenceDimmingStack, slow0: ReferencePresenceDimming,
                 data: tuple[np.ndarray, np.ndarray, np.ndarray], *, batch: int, eval_every: int,
                 args: argparse.Namespace) -> tuple[float, float]:
    """Median readings/s of fresh copies of both kernels over the same stream, alternating."""
    fast_rates, slow_rates = [], []
    for _ in range(args.repeats):
        rate, _, _ = run(fresh(fast0), data, batch=batch, eval_every=eval_every,
                         max_readings=args.readings, max_seconds=args.seconds)
        fast_rates.append(rate)
        rate, _, _ = run(fresh(slow0), data, batch=batch, eval_every=eval_every,
                         max_readings=args.reference_readings, max_seconds=args.seconds)
        slow_rates.append(rate)
    return statistics.median(fast_rates), statistics.median(slow_rates)


def engine_ingest_rate(rules: RuleSet, registry: Registry, fast0: PresenceDimmingStack,
                       data: tuple[np.ndarray, np.ndarray, np.ndarray], args: argparse.Namespace) -> float:
    """Readings/s of RulesEngine.ingest on Reading objects, 100 per call (one MQTT message)."""
    engine = RulesEngine(rules, registry, START)
    idx, values, ts = data
    n = min(200_000, len(idx))
    readings = [Reading(fast0.inputs[i][0], fast0.inputs[i][1], bool(v), t)
                for i, v, t in zip(idx[:n].tolist(), values[:n].tolist(), ts[:n].tolist(), strict=True)]
    rates = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        deadline = t0 + args.seconds
        done = 0
        while done < n and time.perf_counter() < deadline:
            engine.ingest(readings[done:done + 100])
            done += 100
        rates.append(done / (time.perf_counter() - t0))
    return statistics.median(rates)


def print_evaluate_costs(fast0: PresenceDimmingStack, slow0: ReferencePresenceDimming,
                         data: tuple[np.ndarray, np.ndarray, np.ndarray], rules: RuleSet,
                         args: argparse.Namespace) -> None:
    """Time evaluate() alone: with nothing to emit, and with every zone emitting."""
    warm_fast, warm_slow = fresh(fast0), fresh(slow0)
    warm = min(1_000_000, len(data[0]))
    run(warm_fast, data, batch=10_000, eval_every=warm, max_readings=warm, max_seconds=args.seconds)
    run(warm_slow, data, batch=10_000, eval_every=warm, max_readings=warm, max_seconds=args.seconds)
    now = float(data[2][warm - 1])
    quiet_fast = time_evaluate(warm_fast, now, 200, args.seconds)
    quiet_slow = time_evaluate(warm_slow, now, 20, args.seconds)
    print(f"evaluate() over {fast0.n_slots} zones, nothing to emit: vectorised {quiet_fast * 1e6:.0f} us, "
          f"reference {quiet_slow * 1e6:.0f} us, ratio {quiet_slow / quiet_fast:.0f}x")
    # One second past the reassert period every zone emits: the cost per emitted change.
    wave = now + max(r.reassert_seconds for r in rules.rules) + 1
    t0 = time.perf_counter()
    n_wave = len(warm_fast.evaluate(wave))
    wave_fast = time.perf_counter() - t0
    t0 = time.perf_counter()
    warm_slow.evaluate(wave)
    wave_slow = time.perf_counter() - t0
    print(f"evaluate() emitting {n_wave} zones (every zone emitting): vectorised {wave_fast / n_wave * 1e6:.2f} us "
          f"per change, reference {wave_slow / n_wave * 1e6:.2f} us per change")


def timed(what: str, fn: Callable[[], Any]) -> Any:
    """Call fn, printing how long it took (setup steps, not measured figures)."""
    t0 = time.perf_counter()
    result = fn()
    print(f"  {what}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return result


def main(argv: list[str] | None = None) -> int:
    """Build the synthetic city, run both engines side by side, print readings/s and ratios."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--rules", type=int, default=1000, help="rules = gemeenten")
    p.add_argument("--wijken", type=int, default=10, help="wijken (zones) per gemeente")
    p.add_argument("--sensors", type=int, default=10, help="occupancy sensors per wijk")
    p.add_argument("--lights", type=int, default=5, help="street lights per wijk")
    p.add_argument("--readings", type=int, default=20_000_000, help="max readings per vectorised run")
    p.add_argument("--reference-readings", type=int, default=1_000_000, help="max readings per reference run")
    p.add_argument("--seconds", type=float, default=4.0, help="max seconds per timed run")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="small scale smoke run")
    args = p.parse_args(argv)
    if args.quick:
        args.rules, args.readings, args.reference_readings, args.seconds, args.repeats = 50, 500_000, 50_000, 1, 1
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, as the target says

    print("setup:", file=sys.stderr)
    registry = timed("registry (core.registry.parse)", lambda: city(args.rules, args.wijken, args.sensors,
                                                                     args.lights))
    rules = timed("rule file (parse_rules)", lambda: ruleset(args.rules))
    fast0 = timed("vectorised stack", lambda: PresenceDimmingStack(rules.rules, registry, START))
    slow0 = timed("scalar reference", lambda: ReferencePresenceDimming(rules.rules, registry, START))
    n_series = len(fast0.inputs)
    # The registry and topology live as long as the process: freeze them out of the collector's
    # full passes, as a long-running service should after loading, so that neither engine's
    # figures include walks over 150k Device objects.
    gc.collect()
    gc.freeze()
    # The stream runs at 10 readings/s per series: each series reports every 10 s.
    data = timed("stream", lambda: stream(args.readings, n_series, n_series / 10, args.seed))

    # Correctness first: both must emit the same changes on the same prefix.
    _, n, expected = run(fresh(slow0), data, batch=1_000, eval_every=5_000,
                         max_readings=args.reference_readings, max_seconds=1e9, keep=True)
    _, _, got = run(fresh(fast0), data, batch=1_000, eval_every=5_000, max_readings=n, max_seconds=1e9,
                    keep=True)
    if got != expected:
        print("MISMATCH between vectorised and reference outputs", file=sys.stderr)
        return 1
    n_changes = len(expected)
    del got, expected

    print(f"rules kernel: {len(rules.rules)} rules, {n_series} series, {fast0.n_slots} zones, "
          f"{len(registry.devices)} devices; python {platform.python_version()}, numpy {np.__version__}, "
          f"one core; medians of {args.repeats}; outputs identical on the first {n} readings "
          f"({n_changes} zone changes)")
    print(f"{'batch':>7} {'evaluate every':>15} {'vectorised r/s':>15} {'reference r/s':>14} {'ratio':>7}")
    never = 10**12
    configs = [(100, never), (1_000, never), (10_000, never), (100_000, never), (10_000, 100_000),
               (100_000, 100_000)]
    for batch, eval_every in configs:
        fast, slow = side_by_side(fast0, slow0, data, batch=batch, eval_every=eval_every, args=args)
        every = "never" if eval_every == never else f"{eval_every:,} r"
        print(f"{batch:>7,} {every:>15} {fast / 1e6:>13.1f} M {slow / 1e6:>12.2f} M {fast / slow:>6.0f}x")

    print_evaluate_costs(fast0, slow0, data, rules, args)
    rate = engine_ingest_rate(rules, registry, fast0, data, args)
    print(f"RulesEngine.ingest, Reading objects, 100 per call: {rate / 1e6:.2f} M readings/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
