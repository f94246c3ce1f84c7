"""`smartcity ingest`: run one ingest worker until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import logging
import os

from core.influx import InfluxClient, InfluxConfig, InfluxError
from core.registry import WatchedRegistry
from core.settings import influx_from_env, mqtt_from_env
from ingest.service import IngestService
from smartcity.runtime import on_sighup, run_until_stopped

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the ingest subcommand (connections come from SMARTCITY_MQTT_* / SMARTCITY_INFLUX_*)."""
    parser.add_argument("--client-id", default=f"smartcity-ingest-{os.uname().nodename}",
                        help="MQTT client id; unique per worker (the session survives restarts)")
    parser.add_argument("--share-group", default="ingest", help="MQTT 5 shared-subscription group")
    parser.add_argument("--flush-interval", type=float, default=0.2, help="seconds between writes")
    parser.add_argument("--batch-lines", type=int, default=10_000, help="lines per InfluxDB write")


def run(args: argparse.Namespace) -> int:
    """Run the worker; returns the exit status."""
    registry = WatchedRegistry(args.registry)
    mqtt_settings = mqtt_from_env()
    mqtt_settings.username = mqtt_settings.username or "ingest"
    cfg = influx_from_env()
    influx = InfluxClient(InfluxConfig(cfg.url, cfg.database, cfg.username, cfg.password))
    try:
        influx.create_database()
    except InfluxError as exc:
        log.warning("could not create database %s (it may exist, or it will be retried on write): %s",
                    cfg.database, exc)
    on_sighup(registry.reload)
    service = IngestService(mqtt_settings, influx, registry, client_id=args.client_id,
                            share_group=args.share_group, flush_interval=args.flush_interval,
                            batch_lines=args.batch_lines)
    service.start()
    try:
        run_until_stopped(args.duration)
    finally:
        service.stop()
        influx.close()
        s = service.stats
        log.info("ingest stopped: %d messages, %d lines written, %d bad messages, rejects %s, "
                 "sequence gaps %d, duplicates %d", s.messages, s.lines_written, s.bad_messages,
                 dict(s.rejects.counts), service.sequences.stats.gaps, service.sequences.stats.duplicates)
    return 0
