"""`smartcity sim`: run the simulated city's firmware on pseudo-terminals until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from core.registry import load
from core.runtime import run_until_stopped
from edge.lora_keys import KeyFileError, KeyRing
from firmware_sim.city import SimulatedCity

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the sim subcommand."""
    parser.add_argument("--port-map", required=True,
                        help="write {gateway: {port name: /dev/pts/N}} here once the ports exist")
    parser.add_argument("--report-interval", type=float, default=2.0,
                        help="seconds between LoRa node reports (real devices: 10-15 min)")
    parser.add_argument("--busy-seconds", type=float, default=20.0, help="people about, per occupancy cycle")
    parser.add_argument("--quiet-seconds", type=float, default=40.0, help="nobody about, per occupancy cycle")
    parser.add_argument("--rain-time-scale", type=float, default=60.0,
                        help="how much faster than real time the weather runs (rain within a minute)")
    parser.add_argument("--seed", type=int, default=1, help="seed of every random choice (reproducible runs)")
    parser.add_argument("--lora-modem", choices=["rn2483", "rak3172"], default="rn2483",
                        help="which LoRa modem firmware every gateway's 'lora' port plays")
    parser.add_argument("--lora-keys", default=os.environ.get("SMARTCITY_LORA_KEYS"),
                        help="the LoRa nodes' key file (the same one the edge agents use; see edge/lora_keys.py)")


def run(args: argparse.Namespace) -> int:
    """Run the simulated devices; the port map appears atomically once every port is open."""
    if not args.lora_keys:
        raise KeyFileError("the simulated LoRa nodes sign their frames: give --lora-keys FILE")
    city = SimulatedCity(load(args.registry), report_interval=args.report_interval,
                         busy_seconds=args.busy_seconds, quiet_seconds=args.quiet_seconds, seed=args.seed,
                         rain_time_scale=args.rain_time_scale, keys=KeyRing.load(args.lora_keys),
                         lora_modem=args.lora_modem)
    city.start()
    target = Path(args.port_map)
    tmp = target.with_name(target.name + ".tmp")
    city.write_port_map(tmp)
    os.replace(tmp, target)  # readers never see a half-written file
    log.info("simulated city running: %s", city.ports())
    try:
        run_until_stopped(args.duration)
    finally:
        city.stop()
        log.info("simulated city stopped; light levels %s", city.light_levels())
    return 0
