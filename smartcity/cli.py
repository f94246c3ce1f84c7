"""The `smartcity` command: one subcommand per service.

Each service's code is imported only when its subcommand runs, so that a gateway with the
base install (paho-mqtt, pyserial) can run `smartcity edge` without numpy or FastAPI.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from core.errors import ConfigError
from core.runtime import setup_logging
from smartcity.data import demo_registry_path

# subcommand -> (module with run(args) and add_arguments(parser), help)
SERVICES = {
    "demo": ("smartcity.demo", "run the whole platform with a simulated city on this machine"),
    "sim": ("firmware_sim.main", "run the simulated field devices on pseudo-terminals"),
    "edge": ("edge.main", "run the edge agent of one gateway"),
    "ingest": ("ingest.main", "run an ingest worker (MQTT -> InfluxDB)"),
    "dead-letters": ("ingest.dead_letters_cli", "list what the ingest refused, with reasons"),
    "rules": ("rules.main", "run a rules worker (readings -> commands)"),
    "alarms": ("rules.alarm_cli", "list and acknowledge the rules' alarms"),
    "api": ("api.main", "serve the open-data and operator API"),
    "operator": ("api.operators.cli", "manage the API's operators (add, passwd, token, list, remove)"),
    "audit": ("api.operators.audit_cli", "list the API's audit log and check its hash chain"),
    "sta-mqtt": ("api.sta_mqtt.main", "publish public readings as SensorThings Observations over MQTT"),
    "dashboards": ("dashboards.cli", "build, check and push the Grafana dashboards"),
    "backup": ("deploy.backup_cli", "back up InfluxDB, the registry, rule state, the API's metadata and audit log"),
    "restore": ("deploy.backup_restore_cli", "restore a backup into (fresh) services, checked before and after"),
    "report": ("report.cli", "write the council report of a period: HTML with charts, and CSV"),
    "scenario": ("scenario.cli", "simulate a day of Voorschoten and Wassenaar (about 6,000 lights) and report on it"),
    "gateway": ("deploy.gateway_cli", "provision or revoke a gateway's broker account and write its config"),
}


def _add_service_arguments(module: str, parser: argparse.ArgumentParser) -> None:
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        parser.epilog = f"(unavailable on this install: {exc})"
        return
    mod.add_arguments(parser)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the smartcity console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    mod = importlib.import_module(args.module)
    try:
        result: int = mod.run(args)
    except ConfigError as exc:
        # Bad configuration fails at start with the precise message, not a traceback.
        logging.getLogger("smartcity").error("%s: %s", args.command, exc)
        return 2
    return result


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    """A parser that knows the options of the subcommand named in argv (and only that one)."""
    parser = argparse.ArgumentParser(prog="smartcity", description="smart-city IoT sensor platform")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = next((a for a in argv if a in SERVICES), None)
    for name, (module, help_text) in SERVICES.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--registry", default=str(demo_registry_path()),
                       help="asset registry, a GeoJSON FeatureCollection (default: the demo city)")
        p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
        p.set_defaults(module=module)
        if name == chosen:
            _add_service_arguments(module, p)
    return parser


if __name__ == "__main__":
    sys.exit(main())
