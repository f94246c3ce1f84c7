"""The input of bench/edge.py, in a process of its own: a simulated RN2483 on a pty and its street lights.

`firmware_sim.city.SimulatedCity` built from the bench's registry (one gateway, N street lights, each
reporting its 6 readings every --report-interval s, staggered by a seeded random phase), so that the
agent and the bare reader get the same frames at the same times relative to their start. It writes the
port map (atomically) once the pty exists, and every second a stats file with the modem's and the
air's counters (frames the nodes sent, frames the modem put on the serial line, frames it dropped
because the reader had not re-armed the receiver in time). Runs until SIGTERM or --duration.

    .venv/bin/python bench/edge_sim.py --registry R --lora-keys K --report-interval 3.6 --port-map P --stats S
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "firmware-sim")]

from core.registry import load  # noqa: E402
from edge.lora_keys import KeyRing  # noqa: E402
from firmware_sim.city import SimulatedCity  # noqa: E402


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically: a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def stats(city: SimulatedCity, started: float) -> dict[str, Any]:
    """The counters of every modem and its nodes so far."""
    modems = list(city.modems.values())
    return {
        "t": time.monotonic(), "uptime": time.monotonic() - started,
        "uplinks": sum(n.uplinks for n in city.street_lights.values()),
        "received": sum(m.received for m in modems), "delivered": sum(m.delivered for m in modems),
        "dropped": sum(m.dropped for m in modems), "rearms": sum(m.rearms for m in modems),
        "rejected": sum(m.rejected for m in modems), "queued": sum(m.queued for m in modems),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the simulated modem and nodes until stopped; the last stats are written on the way out."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--registry", required=True)
    p.add_argument("--lora-keys", required=True)
    p.add_argument("--report-interval", type=float, required=True, help="seconds between a node's reports")
    p.add_argument("--seed", type=int, default=20261202)
    p.add_argument("--port-map", type=Path, required=True)
    p.add_argument("--stats", type=Path, required=True)
    p.add_argument("--duration", type=float, default=3600.0)
    args = p.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    city = SimulatedCity(load(args.registry), report_interval=args.report_interval, busy_seconds=20,
                         quiet_seconds=40, seed=args.seed, keys=KeyRing.load(args.lora_keys))
    started = time.monotonic()
    city.start()
    try:
        write_json(args.port_map, city.ports())
        deadline = started + args.duration
        while not stop.wait(1.0) and time.monotonic() < deadline:
            write_json(args.stats, stats(city, started))
    finally:
        city.stop()
        write_json(args.stats, stats(city, started) | {"stopped": True})
    return 0


if __name__ == "__main__":
    sys.exit(main())
