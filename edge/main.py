"""`smartcity edge`: run the agent of one gateway until SIGINT/SIGTERM, following its config as it changes.

Two ways to say what the gateway has: ``--config FILE`` (the per-gateway TOML of a deployment,
edge/README.md), or the older ``--gateway`` with the registry and a port map (the demo and tests).
Either way the agent watches its source (the config file, or the registry file) and the LoRa key
file, and applies a good change without a restart (SIGHUP checks at once); a bad edit is logged,
counted in the health counters, and the running setup is kept.

In the registry form the gateway's ``lorawan`` devices come through a LoRaWAN network server's
MQTT integration when ``--network-server chirpstack|tts --ns-application ID`` is given, on the
broker the SMARTCITY_NS_MQTT_* variables name (HOST, PORT, USERNAME, PASSWORD or PASSWORD_FILE,
TLS_CA; in production that is the network server's own broker). Without it they are left out:
logged, and counted in the health counter ``lorawan_devices_unbridged``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from core.registry import Registry, load
from core.runtime import on_sighup, run_until_stopped
from core.settings import NS_MQTT_ENV, MqttSettings, mqtt_from_env
from edge.agent import EdgeAgent, EdgeConfigError
from edge.config_watch import ConfigWatcher
from edge.durable_queue import DEFAULT_MAX_AGE, DEFAULT_MAX_READINGS, DurableQueue
from edge.gateway_config import (
    LORA_MODEMS,
    GatewayConfig,
    NetworkServerConfig,
    broker_settings,
    config_from_registry,
    load_config,
    mqtt_settings,
    render_config,
)
from edge.lora_keys import KeyRing
from edge.network_server import DOWNLINK_FPORT_MAX, FLAVOURS

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the edge subcommand (without --config the broker comes from SMARTCITY_MQTT_*)."""
    parser.add_argument("--config", help="the gateway's TOML config (deploy/samples/gateway.toml); "
                                         "replaces --gateway, --port*, --lora-*, --queue-* and the registry")
    parser.add_argument("--gateway", help="this gateway's id in the registry (without --config)")
    parser.add_argument("--port", action="append", default=[], metavar="NAME=PATH",
                        help="serial port for a port name, e.g. lora=/dev/ttyUSB0 or rg15=/dev/ttyAMA0")
    parser.add_argument("--port-map", help="JSON {gateway: {name: path}} as written by `smartcity sim`")
    parser.add_argument("--flush-interval", type=float, default=1.0, help="seconds between uplink batches")
    parser.add_argument("--rg15-poll-interval", type=float, default=10.0, help="seconds between RG-15 polls")
    parser.add_argument("--lora-modem", choices=list(LORA_MODEMS), default="rn2483",
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
    parser.add_argument("--status-interval", type=float, default=60.0,
                        help="seconds between status messages with the health counters")
    parser.add_argument("--watch-interval", type=float, default=2.0,
                        help="seconds between checks of the config, registry and key files for changes")
    parser.add_argument("--print-config", action="store_true",
                        help="print the gateway's config as the TOML file --config reads, and exit (to move a "
                             "gateway from the registry and its ports to a config file of its own)")
    parser.add_argument("--network-server", choices=FLAVOURS,
                        help="without --config: the LoRaWAN network server (ChirpStack v4, The Things Stack v3) "
                             "whose MQTT integration carries this gateway's lorawan devices; its broker and "
                             "account come from SMARTCITY_NS_MQTT_*. Without it those devices are left out")
    parser.add_argument("--ns-application", metavar="ID",
                        help="with --network-server: the ChirpStack application ID or TTS app@tenant of the "
                             "devices ('{gateway}' in it is replaced by --gateway)")
    parser.add_argument("--ns-downlink-fport", type=int, default=10, metavar="PORT",
                        help="with --network-server: the LoRaWAN port the devices take commands on (1-223)")


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


def network_server(args: argparse.Namespace,
                   env: Mapping[str, str] | None = None) -> tuple[NetworkServerConfig, MqttSettings] | None:
    """The network server the --network-server options name, with its broker settings (from
    SMARTCITY_NS_MQTT_*, password included), or None without --network-server."""
    if not args.network_server:
        if args.ns_application:
            raise EdgeConfigError("--ns-application needs --network-server chirpstack|tts")
        return None
    if args.config:
        raise EdgeConfigError("--network-server applies without --config only: a config file names its network "
                              "server in the [network_server] table")
    if not args.ns_application:
        raise EdgeConfigError("--network-server needs --ns-application ID (ChirpStack application ID, TTS "
                              "app@tenant)")
    application = str(args.ns_application).replace("{gateway}", str(args.gateway))
    if any(c in application for c in "/+#\x00"):
        raise EdgeConfigError(f"--ns-application must be one topic level (no '/', '+', '#'): {application!r}")
    if not 1 <= args.ns_downlink_fport <= DOWNLINK_FPORT_MAX:
        raise EdgeConfigError(f"--ns-downlink-fport must be 1-{DOWNLINK_FPORT_MAX}: {args.ns_downlink_fport}")
    settings = mqtt_from_env(env, prefix=NS_MQTT_ENV)
    if not settings.username or not settings.password:
        # There is no sensible default account on someone else's broker, and no anonymous MQTT.
        raise EdgeConfigError(f"--network-server needs the bridge's account on the network server's broker: "
                              f"{NS_MQTT_ENV}_USERNAME and {NS_MQTT_ENV}_PASSWORD (or {NS_MQTT_ENV}_PASSWORD_FILE)")
    config = NetworkServerConfig(args.network_server, settings.host, application, args.ns_downlink_fport,
                                 settings.port, settings.username, None,
                                 Path(settings.tls_ca) if settings.tls_ca else None)
    return config, settings


def _without_lorawan(registry: Registry, gateway: str) -> tuple[Registry, list[str]]:
    """The registry without gateway's lorawan devices, and their ids."""
    left_out = sorted(d.id for d in registry.devices_of(gateway) if d.link == "lorawan")
    if not left_out:
        return registry, []
    devices = {k: d for k, d in registry.devices.items() if d.id not in left_out}
    return dataclasses.replace(registry, devices=devices), left_out


def config_source(args: argparse.Namespace, ns: NetworkServerConfig | None = None,
                  unbridged: dict[str, int] | None = None) -> tuple[Path, Callable[[Path], GatewayConfig]]:
    """The file that describes this gateway and how to read it into a GatewayConfig.

    ns: the network server of the registry form's lorawan devices; without it they are left out
    and unbridged["devices"] says how many (the health counter).
    """
    if args.config:
        return Path(args.config), load_config
    if not args.gateway:
        raise EdgeConfigError("give --config FILE, or --gateway with the registry and its ports")
    if args.queue_max_readings < 1 or args.queue_max_age <= 0:
        raise EdgeConfigError("--queue-max-readings must be >= 1 and --queue-max-age > 0")
    ports = port_map(args)

    def from_registry(path: Path) -> GatewayConfig:
        registry = load(path)
        if ns is None:
            # The older command line had no network server: keep such a gateway running on its
            # other devices rather than refuse to start. Logged at every (re)load, and counted.
            registry, left_out = _without_lorawan(registry, args.gateway)
            if left_out:
                log.warning("gateway %s: lorawan devices %s are left out: no --network-server given",
                            args.gateway, ", ".join(left_out))
            if unbridged is not None:
                unbridged["devices"] = len(left_out)
        return config_from_registry(registry, args.gateway, ports, lora_modem=args.lora_modem,
                                    lora_keys=args.lora_keys, state_dir=args.state_dir,
                                    queue_max_readings=args.queue_max_readings, queue_max_age=args.queue_max_age,
                                    flush_interval=args.flush_interval, poll_interval=args.rg15_poll_interval,
                                    network_server=ns)

    return Path(args.registry), from_registry


def _env_ns_settings(password: str | None) -> Callable[[NetworkServerConfig], MqttSettings]:
    """The bridge's broker settings from its config, with the password the environment gave (no file)."""
    def settings(ns: NetworkServerConfig) -> MqttSettings:
        return MqttSettings(ns.host, ns.port, ns.username, password, str(ns.ca_file) if ns.ca_file else None)

    return settings


def run(args: argparse.Namespace) -> int:
    """Run the agent; returns 2 on a configuration error."""
    # The environment's settings first: a bad variable is named even when the config has problems too.
    env_settings = None if args.config else mqtt_from_env()
    bridged = network_server(args)
    unbridged = {"devices": 0}
    source, read = config_source(args, bridged[0] if bridged else None, unbridged)
    if args.print_config:
        config = read(source)
        print(render_config(config, header=f"Gateway {config.gateway}: written by `smartcity edge --print-config`\n"
                                           "from " + (str(source) if args.config else f"the registry {source}")
                                           + ". Secrets stay in the files it names (0600)."), end="")
        return 0
    holder: list[EdgeAgent] = []
    watcher = ConfigWatcher(source, read, lambda _old, new: holder[0].reconfigure(new),
                            interval=args.watch_interval, name=f"gateway config {source}")
    config = watcher.current
    settings = mqtt_settings(config) if env_settings is None else env_settings
    settings.username = settings.username or config.gateway
    keys = KeyRing.load(config.lora.keys) if config.lora else KeyRing()
    queue = DurableQueue(config.queue_path(args.state_dir), max_readings=config.queue.max_readings,
                         max_age=config.queue.max_age)
    # A config file names the bridge's password file; the command line's bridge has the environment's.
    ns_settings = _env_ns_settings(bridged[1].password) if bridged else broker_settings
    agent = EdgeAgent(config, settings, queue=queue, keys=keys, ns_settings=ns_settings,
                      status_interval=args.status_interval)
    holder.append(agent)
    watchers: list[ConfigWatcher[GatewayConfig] | ConfigWatcher[KeyRing]] = [watcher]
    if config.lora:
        key_watcher: ConfigWatcher[KeyRing] = ConfigWatcher(
            config.lora.keys, KeyRing.load, lambda _old, new: agent.use_keys(new), interval=args.watch_interval,
            name=f"LoRa keys {config.lora.keys}")
        watchers.append(key_watcher)

    def watch_health() -> dict[str, float]:
        counters: dict[str, float] = {"config_reloads": sum(w.changes for w in watchers),
                                      "config_reload_failures": sum(w.failures for w in watchers)}
        if not args.config:
            counters["lorawan_devices_unbridged"] = unbridged["devices"]
        return counters

    agent.extra_health = watch_health
    agent.start()
    for w in watchers:
        w.start()
    def reload_all() -> None:
        # Only sets flags: the watchers' threads do the loading, never the signal handler.
        for w in watchers:
            w.request_reload()

    on_sighup(reload_all)
    try:
        run_until_stopped(args.duration)
    finally:
        for w in watchers:
            w.stop()
        agent.stop()
        log.info("edge agent %s stopped: %d readings in %d batches, %d dropped, %d commands applied, "
                 "%d failed, frame problems %s, lost LoRa frames %d", agent.gateway, agent.uplink.readings_sent,
                 agent.uplink.batches_sent, agent.queue.dropped, agent.actuator.applied, agent.actuator.failed,
                 dict(agent.converter.problems), agent.converter.lost_frames)
        if agent.bridge is not None:
            log.info("network-server bridge of %s: %d uplinks, %d downlinks, %d lost frames, problems %s",
                     agent.gateway, agent.bridge.uplinks, agent.bridge.downlinks, agent.bridge.lost_frames,
                     dict(agent.bridge.problems))
    return 0
