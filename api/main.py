"""`smartcity api`: serve the API with uvicorn, on loopback unless told otherwise."""

from __future__ import annotations

import argparse
import os
import threading

import uvicorn

from api.app import create_app
from api.settings import ApiSettings
from core.settings import influx_from_env


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the api subcommand (InfluxDB comes from SMARTCITY_INFLUX_*)."""
    parser.add_argument("--host", default=os.environ.get("SMARTCITY_API_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("SMARTCITY_API_PORT", "8000")))


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM (uvicorn handles both)."""
    app = create_app(ApiSettings(registry_path=args.registry, influx=influx_from_env()))
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="warning")
    server = uvicorn.Server(config)
    if args.duration:
        threading.Timer(args.duration, lambda: setattr(server, "should_exit", True)).start()
    server.run()
    return 0
