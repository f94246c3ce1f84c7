"""`smartcity sim`: run the simulated city's firmware on pseudo-terminals until SIGINT/SIGTERM.

With ``--scenario FILE`` it runs a scenario instead (firmware_sim.scenario): the file's city,
speed and timers, its faults on schedule, until its duration has passed; the port map then
lists stable paths (symlinks in ``--link-dir``) that survive the scenario's unplug faults.

With ``--network-server chirpstack|tts --ns-application ID`` the registry's lorawan devices are
simulated too, behind a simulated network server that publishes on the broker named by the
SMARTCITY_NS_MQTT_* variables (HOST, PORT, USERNAME, PASSWORD or PASSWORD_FILE, TLS_CA). The ID
may contain ``{gateway}``: each gateway's devices then form an application of their own.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Mapping
from pathlib import Path

from core.errors import ConfigError
from core.registry import load
from core.runtime import run_until_stopped, stop_event
from core.settings import NS_MQTT_ENV, mqtt_from_env
from edge.lora_keys import KeyFileError, KeyRing
from firmware_sim.city import NetworkServerOptions, SimulatedCity
from firmware_sim.network_server import Flavour
from firmware_sim.scenario import Scenario
from firmware_sim.scenario_clock import format_duration
from firmware_sim.scenario_file import load_scenario

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
    parser.add_argument("--scenario", metavar="FILE",
                        help="run this scenario (TOML, see firmware-sim/scenarios/faults-demo.toml) until its "
                             "duration; its city, speed, seed, timers and modem replace the options above, and "
                             "--registry is its city only if the file names none")
    parser.add_argument("--network-server", choices=["chirpstack", "tts"],
                        help="also simulate the registry's lorawan devices, behind this LoRaWAN network server "
                             "(ChirpStack v4 or The Things Stack v3), on the broker of SMARTCITY_NS_MQTT_*")
    parser.add_argument("--ns-application", metavar="ID",
                        help="with --network-server: the application ID (ChirpStack) or app@tenant (TTS); "
                             "'{gateway}' in it is replaced by each gateway's id (an application per gateway)")
    parser.add_argument("--link-dir", metavar="DIR",
                        help="with --scenario: put the stable port paths (symlinks) here (default: a temporary "
                             "directory, removed at the end)")


def run(args: argparse.Namespace) -> int:
    """Run the simulated devices; the port map appears atomically once every port is open."""
    if not args.lora_keys:
        raise KeyFileError("the simulated LoRa nodes sign their frames: give --lora-keys FILE")
    ns = network_server_options(args)
    if args.scenario:
        if ns is not None:
            raise ConfigError("--network-server does not apply to --scenario (a scenario file has no network server)")
        return run_scenario(args)
    city = SimulatedCity(load(args.registry), report_interval=args.report_interval,
                         busy_seconds=args.busy_seconds, quiet_seconds=args.quiet_seconds, seed=args.seed,
                         rain_time_scale=args.rain_time_scale, keys=KeyRing.load(args.lora_keys),
                         lora_modem=args.lora_modem, network_server=ns)
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
        for application, server in city.network_servers.items():
            log.info("simulated %s, application %s: %d uplinks published, %d refused, %d unpublished, "
                     "%d downlinks delivered, %d bad", server.flavour, application, server.uplinks,
                     server.refused_uplinks, server.unpublished, server.downlinks, server.bad_downlinks)
    return 0


def network_server_options(args: argparse.Namespace,
                           env: Mapping[str, str] | None = None) -> NetworkServerOptions | None:
    """The simulated network server the options ask for (its broker from SMARTCITY_NS_MQTT_*), or None."""
    if not args.network_server:
        if args.ns_application:
            raise ConfigError("--ns-application needs --network-server chirpstack|tts")
        return None
    if not args.ns_application:
        raise ConfigError("--network-server needs --ns-application ID (ChirpStack application ID, TTS app@tenant)")
    settings = mqtt_from_env(env, prefix=NS_MQTT_ENV)
    if not settings.username or not settings.password:
        # The server's account: it alone may publish uplinks, which the bridges trust.
        raise ConfigError(f"--network-server needs the server's broker account: {NS_MQTT_ENV}_USERNAME and "
                          f"{NS_MQTT_ENV}_PASSWORD (or {NS_MQTT_ENV}_PASSWORD_FILE)")
    flavour: Flavour = "chirpstack" if args.network_server == "chirpstack" else "tts"
    return NetworkServerOptions(flavour, settings, args.ns_application)


def run_scenario(args: argparse.Namespace) -> int:
    """Run a scenario file until its duration (or SIGINT/SIGTERM, or --duration real seconds) has passed."""
    spec = load_scenario(args.scenario, default_registry=args.registry)
    scenario = Scenario(spec, keys=KeyRing.load(args.lora_keys), link_dir=args.link_dir)
    stop = stop_event()
    try:
        scenario.open()
        scenario.write_port_map(args.port_map)
        log.info("scenario %s: %s simulated at speed %g (%s real), %d faults; ports %s", spec.source,
                 format_duration(spec.duration), spec.speed, format_duration(spec.duration / spec.speed),
                 len(spec.faults), scenario.ports())
        until = spec.duration
        if args.duration is not None:  # a real-time cap, e.g. for a short CI run of a long scenario
            until = min(until, args.duration * spec.speed)
        scenario.run(until=until, stop=stop)
    finally:
        scenario.stop()
    log.info("scenario %s done: %s", spec.source, scenario.counters())
    return 0
