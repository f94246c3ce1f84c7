"""`smartcity rules`: run one rules worker until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from core.registry import WatchedRegistry
from core.runtime import on_sighup, run_until_stopped
from core.settings import mqtt_from_env
from rules.rule_file import load_rules
from rules.service import RulesService

log = logging.getLogger(__name__)

EXAMPLE_RULES = Path(__file__).parent / "examples" / "presence-lighting.toml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the rules subcommand (the broker comes from SMARTCITY_MQTT_*)."""
    parser.add_argument("--rules", default=str(EXAMPLE_RULES), help="rule file (TOML)")
    parser.add_argument("--client-id", default=f"smartcity-rules-{os.uname().nodename}")
    parser.add_argument("--evaluate-interval", type=float, default=0.5,
                        help="seconds between timer evaluations (for hold timeouts)")


def run(args: argparse.Namespace) -> int:
    """Run the worker; returns the exit status (2 for a bad rule file)."""
    ruleset = load_rules(args.rules)
    mqtt_settings = mqtt_from_env()
    mqtt_settings.username = mqtt_settings.username or "rules"
    registry = WatchedRegistry(args.registry)
    on_sighup(registry.reload)
    service = RulesService(mqtt_settings, ruleset, registry, client_id=args.client_id,
                           evaluate_interval=args.evaluate_interval)
    service.start()
    try:
        run_until_stopped(args.duration)
    finally:
        service.stop()
        log.info("rules stopped: %d messages, %d bad, %d commands published", service.messages,
                 service.bad_messages, service.commands_published)
    return 0
