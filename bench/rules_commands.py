"""Benchmark: commands serialised per second by rules.actions.ActionDispatcher vs core.commands.Command.to_json.

The case the old path was slow on: one evaluation in which a city-wide rule activates and sends
6,000 dim commands (the old service took 0.70 s for that through Command(...).to_json(), which
goes through dataclasses.asdict). Both paths run side by side in one process, alternating, and
the figures are medians; compare the ratio, not absolute numbers from another machine or day.

    .venv/bin/python bench/rules_commands.py [--commands 6000] [--repeats 7]

Publishing is a no-op that keeps the payload (the MQTT client's cost is not what is measured).
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ is not in the editable install

from core.commands import Action, Command
from rules.actions import ActionDispatcher
from rules.membership import lay_out
from rules.rule_model import (
    Binary,
    CommandAction,
    Const,
    Expression,
    Name,
    Rule,
    RuleSet,
    TargetSpec,
    ValueSpec,
)
from rules.transitions import Event, Transition
from tests.rules.city import make_registry

NOW = 1_700_000_000.0
LIGHTS_PER_WIJK = 100


def setup(commands: int) -> tuple[ActionDispatcher, list[Transition], list[tuple[str, str]], list[bytes]]:
    """A dispatcher over wijken of 100 lights each, the transitions that reach `commands` lights, and a sink."""
    wijken = max(1, commands // LIGHTS_PER_WIJK)
    registry = make_registry({"GM0001": {f"WK{1000 + w:06d}": (1, LIGHTS_PER_WIJK) for w in range(wijken)}})
    rule = Rule(name="city-dim", kind="occupancy", group_by="wijk",
                values=(ValueSpec("presence", "occupancy", "presence"),),
                when=Expression("presence > 0", Binary(">", Name("presence"), Const(0.0))),
                on_activate=(CommandAction("dim", {"level": 100}, TargetSpec("street_light")),))
    slots = lay_out(RuleSet(2, (rule,), {}, "Europe/Amsterdam", "bench"), registry)
    sink: list[bytes] = []
    dispatcher = ActionDispatcher(slots, lambda _gw, payload: sink.append(payload))
    transitions = [Transition("city-dim", g, Event.ACTIVATE, True, NOW, {"presence": 1.0}) for g in slots[0].groups]
    targets = [(tg.device, tg.gateway) for per_slot in slots[0].targets["activate", 0] for tg in per_slot]
    return dispatcher, transitions, targets, sink


def time_dispatcher(dispatcher: ActionDispatcher, transitions: list[Transition], sink: list[bytes]) -> float:
    sink.clear()
    started = time.perf_counter()
    dispatcher.dispatch(transitions, NOW)
    return time.perf_counter() - started


def time_command_path(targets: list[tuple[str, str]], sink: list[bytes]) -> float:
    sink.clear()
    started = time.perf_counter()
    for device, _gateway in targets:
        sink.append(Command(device, Action.DIM, {"level": 100}, "rule:city-dim", issued_at=NOW,
                            expires_at=NOW + 60).to_json())
    return time.perf_counter() - started


def main() -> int:
    """Run both paths alternately and print commands/s and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=6000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    dispatcher, transitions, targets, sink = setup(args.commands)
    n = len(targets)
    fast: list[float] = []
    slow: list[float] = []
    gc.disable()  # the collector's pauses would land on whichever path happens to be running
    try:
        for _ in range(args.repeats):
            fast.append(time_dispatcher(dispatcher, transitions, sink))
            assert len(sink) == n
            slow.append(time_command_path(targets, sink))
            gc.collect()
    finally:
        gc.enable()
    f, s = statistics.median(fast), statistics.median(slow)
    print(f"python {platform.python_version()}, {n} commands per run, median of {args.repeats}")
    print(f"ActionDispatcher.dispatch   {f * 1000:8.2f} ms   {n / f:12,.0f} commands/s")
    print(f"Command(...).to_json()      {s * 1000:8.2f} ms   {n / s:12,.0f} commands/s")
    print(f"ratio                       {s / f:8.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
