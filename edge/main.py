"""`smartcity edge`: run the agent of one gateway until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path

from core.registry import load
from core.runtime import run_until_stopped
from core.settings import mqtt_from_env
from edge.agent import EdgeAgent, EdgeConfigError
from edge.durable_queue import DEFAULT_MAX_AGE, DEFAULT_MAX_READINGS, DurableQueue
from edge.lora_keys import KeyRing

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the edge subcommand (the broker comes from SMARTCITY_MQTT_*)."""
    parser.add_argument("--gateway", required=True, help="this gateway's id in the registry")
    parser.add_argument("--port", action="append", default=[], metavar="NAME=PATH",
                        help="serial port for a port name, e.g. lora=/dev/ttyUSB0 or rg15=/dev/ttyAMA0")
    parser.add_argument("--port-map", help="JSON {gateway: {name: path}} as written by `smartcity sim`")
    parser.add_argument("--flush-interval", type=float, default=1.0, help="seconds between uplink batches")
    parser.add_argument("--rg15-poll-interval", type=float, default=10.0, help="seconds between RG-15 polls")
    parser.add_argument("--lora-modem", choices=["rn2483", "rak3172"], default="rn2483",
                        help="the LoRa modem on the 'lora' port: Microchip RN2483 or RAK3172 (RUI3, P2P)")
    parser.add_argument("--lora-keys", default=os.environ.get("SMARTCITY_LORA_KEYS"),
                        help="JSON key file of the LoRa nodes (0600; see edge/lora_keys.py); "
                             "default $SMARTCITY_LORA_KEYS. Required when the gateway has LoRa devices")
    parser.add_argument("--state-dir", default=os.environ.get("SMARTCITY_STATE_DIR", ".state"),
                        help="where the durable queue lives (default: $SMARTCITY_STATE_DIR or .state)")
    parser.add_argument("--queue-max-readings", type=int, default=DEFAULT_MAX_READINGS,
                        help="readings the queue keeps during an outage before the oldest go (counted)")
    parser.add_argument("--queue-max-age", type=float, default=DEFAULT_MAX_AGE,
                        help="seconds a reading may wait for the broker before it goes (counted)")


def port_map(args: argparse.Namespace) -> dict[str, str]:
    """Ports from --port-map (this gateway's entry) overridden by --port options."""
    ports: dict[str, str] = {}
    if args.port_map:
        try:
            data = json.loads(Path(args.port_map).read_text())
        except (OSError, ValueError) as exc:
            raise EdgeConfigError(f"port map {args.port_map}: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get(args.gateway, {}), dict):
            raise EdgeConfigError(f"port map {args.port_map} must be {{gateway: {{name: path}}}}")
        ports.update(data.get(args.gateway, {}))
    for item in args.port:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise EdgeConfigError(f"--port must be NAME=PATH: {item!r}")
        ports[name] = path
    return ports


def run(args: argparse.Namespace) -> int:
    """Run the agent; returns 2 on a configuration error."""
    if args.queue_max_readings < 1 or args.queue_max_age <= 0:
        raise EdgeConfigError("--queue-max-readings must be >= 1 and --queue-max-age > 0")
    settings = mqtt_from_env()
    settings.username = settings.username or args.gateway
    registry = load(args.registry)
    ports = port_map(args)
    has_lora = any(d.link == "lora" for d in registry.devices_of(args.gateway))
    if has_lora and not args.lora_keys:
        raise EdgeConfigError(f"gateway {args.gateway} has LoRa devices: give --lora-keys FILE (or "
                              "SMARTCITY_LORA_KEYS); unauthenticated frames are never accepted")
    keys = KeyRing.load(args.lora_keys) if args.lora_keys else KeyRing()
    queue = DurableQueue(Path(args.state_dir) / "edge" / f"{args.gateway}.sqlite",
                         max_readings=args.queue_max_readings, max_age=args.queue_max_age)
    agent = EdgeAgent(args.gateway, registry, ports, settings, queue=queue, keys=keys, lora_modem=args.lora_modem,
                      flush_interval=args.flush_interval, rg15_poll_interval=args.rg15_poll_interval)
    agent.start()
    try:
        run_until_stopped(args.duration)
    finally:
        agent.stop()
        log.info("edge agent %s stopped: %d readings in %d batches, %d dropped, %d commands applied, "
                 "%d failed, frame problems %s, lost LoRa frames %d", args.gateway, agent.uplink.readings_sent,
                 agent.uplink.batches_sent, agent.queue.dropped, agent.actuator.applied, agent.actuator.failed,
                 dict(agent.converter.problems), agent.converter.lost_frames)
    return 0
