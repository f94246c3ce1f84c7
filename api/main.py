"""`smartcity api`: serve the API with uvicorn, on loopback unless told otherwise."""

from __future__ import annotations

import argparse
import dataclasses
import os
import threading

import uvicorn

from api.app import create_app
from api.settings import settings_from_env


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the api subcommand (InfluxDB comes from SMARTCITY_INFLUX_*, the broker from SMARTCITY_MQTT_*)."""
    parser.add_argument("--host", default=os.environ.get("SMARTCITY_API_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("SMARTCITY_API_PORT", "8000")))
    parser.add_argument("--state-dir", default=None,
                        help="the API's own files: metadata store, audit log, count cache "
                             "(default: $SMARTCITY_API_STATE_DIR or $SMARTCITY_STATE_DIR/api)")
    parser.add_argument("--operators", default=None,
                        help="operators file (default: $SMARTCITY_API_OPERATORS; none: operator routes refuse all)")
    parser.add_argument("--rules", default=None,
                        help="the rule file the rules service runs (default: $SMARTCITY_RULES)")
    parser.add_argument("--alarms", default=None,
                        help="the rules service's alarm database (default: $SMARTCITY_ALARMS)")


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM (uvicorn handles both)."""
    settings = dataclasses.replace(settings_from_env(), registry_path=args.registry)
    overrides = {"state_dir": args.state_dir, "operators_path": args.operators, "rules_path": args.rules,
                 "alarms_path": args.alarms}
    settings = dataclasses.replace(settings, **{k: v for k, v in overrides.items() if v is not None})
    # proxy_headers off: the client address (rate limits, audit log) is the peer's unless a
    # deployment puts a trusted proxy in front and says so.
    config = uvicorn.Config(create_app(settings), host=args.host, port=args.port, log_level="warning",
                            proxy_headers=False, server_header=False)
    server = uvicorn.Server(config)
    if args.duration:
        threading.Timer(args.duration, lambda: setattr(server, "should_exit", True)).start()
    server.run()
    return 0
