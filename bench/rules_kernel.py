"""Rules kernel benchmark: the vectorised engine next to the scalar loop and the reference, one run.

Targets (issue 6): 100k series and 1,000 rules of mixed kinds at the service's real evaluation
cadence (a 20 ms tick), one core: >= 10M readings/s and >= 30x the tight scalar loop
(rules/scalar_loop.py); a group-by + sum-threshold rule alone (Esper's published shape,
7.1M events/s per core): >= 14M readings/s. Run from the repository root:

    .venv/bin/python bench/rules_kernel.py            # full scale, a few minutes
    .venv/bin/python bench/rules_kernel.py --quick    # 60 rules, smoke run

What is timed is what the service does between MQTT messages and commands, minus the decode:
decoded columns of 200-reading messages are staged, and every 20 ms of wall time the staged
readings are folded and every rule is evaluated at the wall clock. The scalar loop and the
reference take the same messages at the same cadence. Before timing, the engine and the scalar
loop and the reference must produce identical transitions on a
deterministic prefix of the stream; the script exits 1 otherwise. Every timed run stops at a
reading count or a time limit, whichever comes first; runs alternate between engines and
figures are medians, so machine noise hits all alike. The process pins itself to one core.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.rules_kernel_city import city, only_group_sum, ruleset
from core.registry import Registry
from rules.engine import Engine
from rules.reference import ReferenceEngine
from rules.rule_model import RuleSet
from rules.scalar_loop import ScalarLoop
from rules.transitions import Transition

START = 1_700_000_000.0
BATCH = 200  # readings per MQTT message, as the gateways send them
TICK = 0.02  # the service's evaluation cadence
LATE_SHARE = 0.05  # share of readings arriving up to a minute late
F64 = npt.NDArray[np.float64]
IntP = npt.NDArray[np.intp]


class Stream:
    """Pre-generated messages: series numbers, values, and lags behind the clock of each reading."""

    def __init__(self, keys: tuple[tuple[str, str], ...], messages: int, seed: int = 7) -> None:
        rng = np.random.default_rng(seed)
        n = messages * BATCH
        metrics = np.array([m for _, m in keys])
        series = rng.integers(0, len(keys), n)
        m = metrics[series]
        values = np.zeros(n)
        for name, gen in (("rain_intensity", lambda k: rng.exponential(0.3, k)),
                          ("count", lambda k: rng.poisson(0.8, k).astype(float)),
                          ("dim_level", lambda k: rng.choice([0.0, 20.0, 100.0], k)),
                          ("power", lambda k: rng.uniform(0, 40, k)),
                          ("energy", lambda k: rng.uniform(0, 0.2, k)),
                          ("presence", lambda k: rng.integers(0, 2, k).astype(float))):
            sel = m == name
            values[sel] = gen(int(sel.sum()))
        lags = np.where(rng.random(n) < LATE_SHARE, rng.uniform(0, 60, n), rng.uniform(0, 1, n))
        self.series: list[IntP] = np.split(series.astype(np.intp), messages)
        self.values: list[F64] = np.split(values, messages)
        self.lags: list[F64] = np.split(lags, messages)
        self.keys = keys
        self.devices = [keys[s][0] for s in range(len(keys))]
        self.metric_names = [keys[s][1] for s in range(len(keys))]


class Subject(Protocol):
    """What the timing loop drives: stage a message, then fold what is staged and evaluate."""

    def stage(self, i: int, now: float) -> None: ...
    def tick(self, now: float, received: float) -> list[Transition]: ...  # fold what is staged, evaluate


class VectorSubject:
    """The vectorised engine, fed as the service feeds it: staged columns, one fold per tick."""

    def __init__(self, engine: Engine, stream: Stream) -> None:
        self.engine, self.stream = engine, stream
        self.staged: list[tuple[IntP, F64, F64]] = []

    def stage(self, i: int, now: float) -> None:
        s = self.stream
        self.staged.append((s.series[i], s.values[i], now - s.lags[i]))

    def tick(self, now: float, received: float) -> list[Transition]:
        if self.staged:
            cols = list(zip(*self.staged, strict=True))
            self.staged.clear()
            self.engine.fold(np.concatenate(cols[0]), np.concatenate(cols[1]), np.concatenate(cols[2]), received)
        return self.engine.evaluate(now)


class ScalarSubject:
    """The tight scalar loop: Python lists in, the same cadence."""

    def __init__(self, loop: ScalarLoop, stream: Stream) -> None:
        self.loop, self.stream = loop, stream
        self.series: list[int] = []
        self.values: list[float] = []
        self.times: list[float] = []

    def stage(self, i: int, now: float) -> None:
        s = self.stream
        self.series += s.series[i].tolist()
        self.values += s.values[i].tolist()
        self.times += [now - lag for lag in s.lags[i].tolist()]

    def tick(self, now: float, received: float) -> list[Transition]:
        self.loop.fold_indexed(self.series, self.values, self.times, received)
        self.series, self.values, self.times = [], [], []
        return self.loop.evaluate(now)


class ReferenceSubject:
    """The reference engine: (device, metric, value, time) tuples, the same cadence."""

    def __init__(self, ref: ReferenceEngine, stream: Stream) -> None:
        self.ref, self.stream = ref, stream
        self.readings: list[tuple[str, str, float, float]] = []

    def stage(self, i: int, now: float) -> None:
        s = self.stream
        devices, metrics = s.devices, s.metric_names
        self.readings += [(devices[k], metrics[k], v, now - lag) for k, v, lag in
                          zip(s.series[i].tolist(), s.values[i].tolist(), s.lags[i].tolist(), strict=True)]

    def tick(self, now: float, received: float) -> list[Transition]:
        self.ref.fold_readings(self.readings, received)
        self.readings = []
        return self.ref.evaluate(now)


def timed(subject: Subject, stream: Stream, limit_readings: int, limit_seconds: float,
          tick: float = TICK) -> dict[str, float]:
    """Feed messages at full speed, ticking every 20 ms of wall time; the clock is the wall clock."""
    gc.collect()
    t0 = time.perf_counter()
    next_tick = t0 + tick
    readings = ticks = transitions = 0
    n = len(stream.series)
    i = 0
    deadline = t0 + limit_seconds
    while readings < limit_readings:
        clock = time.perf_counter()
        now = START + (clock - t0)
        subject.stage(i % n, now)
        i += 1
        readings += BATCH
        if clock >= next_tick:
            transitions += len(subject.tick(now, now))
            ticks += 1
            next_tick = clock + tick
            if clock >= deadline:
                break
    end = START + time.perf_counter() - t0
    transitions += len(subject.tick(end, end))
    elapsed = time.perf_counter() - t0
    return {"rate": readings / elapsed, "ticks": ticks, "transitions": transitions, "seconds": elapsed}


def check_identical(make: dict[str, Callable[[], Subject]], stream: Stream, messages: int) -> None:
    """A deterministic prefix (fixed clock steps): every engine must give the same transitions."""
    results: dict[str, list[Any]] = {}
    for name, factory in make.items():
        subject = factory()
        seen: list[Any] = []
        now = START
        for i in range(messages):
            now += 0.05
            subject.stage(i % len(stream.series), now)
            if i % 5 == 4:
                seen.append([t.key() for t in subject.tick(now, now)])
        results[name] = seen
    names = list(results)
    for other in names[1:]:
        if results[other] != results[names[0]]:
            print(f"FAIL: {other} and {names[0]} differ on the deterministic prefix", flush=True)
            sys.exit(1)
    count = sum(len(x) for x in results[names[0]])
    print(f"identical transitions on {messages * BATCH:,} readings ({count} transitions): {', '.join(names)}",
          flush=True)


def run_case(title: str, registry: Registry, rules: RuleSet, args: argparse.Namespace) -> None:
    """Build, check and time one configuration; print one table row per engine."""
    t0 = time.perf_counter()
    engine = Engine(rules, registry, START)
    print(f"\n## {title}: {len(rules.rules):,} rules, {len(engine.series_keys):,} series, "
          f"{engine.n_slots:,} slots (built in {time.perf_counter() - t0:.1f} s)", flush=True)
    stream = Stream(engine.series_keys, args.messages)
    make: dict[str, Callable[[], Subject]] = {
        "vectorised": lambda: VectorSubject(Engine(rules, registry, START), stream),
        "scalar loop": lambda: ScalarSubject(ScalarLoop(rules, registry, START), stream),
        "reference": lambda: ReferenceSubject(ReferenceEngine(rules, registry, START), stream),
    }
    check_identical(make, stream, args.check_messages)
    rates: dict[str, list[float]] = {name: [] for name in make}
    for rep in range(args.repeats):
        for name, factory in make.items():
            subject = factory()
            r = timed(subject, stream, args.readings, args.seconds)
            rates[name].append(r["rate"])
            print(f"  run {rep + 1} {name:11s}: {r['rate'] / 1e6:7.2f}M readings/s "
                  f"({r['ticks']:.0f} ticks, {r['transitions']:.0f} transitions, {r['seconds']:.1f} s)", flush=True)
    # The same with an evaluation per second: what folding costs once evaluation is amortised.
    slow: dict[str, list[float]] = {"vectorised": [], "scalar loop": []}
    for rep in range(args.repeats):
        for name, found in slow.items():
            r = timed(make[name](), stream, args.readings, args.seconds, tick=1.0)
            found.append(r["rate"])
            print(f"  run {rep + 1} {name:11s}, evaluating every 1 s: {r['rate'] / 1e6:7.2f}M readings/s", flush=True)
    med1 = {name: statistics.median(v) for name, v in slow.items()}
    print(f"  median, evaluating every 1 s: vectorised {med1['vectorised'] / 1e6:.2f}M/s, scalar loop "
          f"{med1['scalar loop'] / 1e6:.3f}M/s -> {med1['vectorised'] / med1['scalar loop']:.0f}x", flush=True)
    med = {name: statistics.median(v) for name, v in rates.items()}
    print(f"  median: vectorised {med['vectorised'] / 1e6:.2f}M/s, scalar loop {med['scalar loop'] / 1e6:.3f}M/s "
          f"-> {med['vectorised'] / med['scalar loop']:.0f}x, reference {med['reference'] / 1e6:.3f}M/s "
          f"-> {med['vectorised'] / med['reference']:.0f}x", flush=True)


def main() -> int:
    """Run the benchmark; exit 1 if the engines disagree."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="60 rules, short runs")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    n_rules = 60 if args.quick else 1000
    args.messages = 500 if args.quick else 5000
    args.check_messages = 200 if args.quick else 400
    args.readings = 500_000_000  # runs end at the time limit; this only bounds the loop
    args.seconds = 2.0 if args.quick else 5.0
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
    print(f"python {platform.python_version()}, numpy {np.__version__}, one core "
          f"({sorted(os.sched_getaffinity(0))}), tick {TICK * 1000:.0f} ms, {BATCH} readings per message", flush=True)
    run_case("mixed rules", city(n_rules), ruleset(n_rules), args)
    registry, rules = only_group_sum(n_rules)
    run_case("group-by + sum threshold alone", registry, rules, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
