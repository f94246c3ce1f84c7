"""`smartcity ingest`: run one ingest worker until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path

from core.errors import ConfigError
from core.influx import InfluxClient, InfluxConfig, InfluxError
from core.registry import WatchedRegistry
from core.runtime import on_sighup, run_until_stopped
from core.settings import influx_from_env, mqtt_from_env
from core.status_http import StatusServer
from ingest import worker as workers
from ingest.device_status import DEFAULT_INTERVAL, DEFAULT_SILENT_AFTER
from ingest.health import DEFAULT_HEALTH_INTERVAL
from ingest.pipeline import PipelineConfig
from ingest.points import DEFAULT_MAX_LATENESS, DEFAULT_MAX_SKEW, TimeBounds
from ingest.service import IngestConfig, IngestService, RetireError
from ingest.spool import DEFAULT_MAX_AGE, DEFAULT_MAX_BYTES

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the ingest subcommand (connections come from SMARTCITY_MQTT_* / SMARTCITY_INFLUX_*)."""
    parser.add_argument("--worker", default=os.environ.get("SMARTCITY_INGEST_WORKER"),
                        help="stable worker name: owns the MQTT session and the spool (default: the first "
                             "free <hostname>-<n>)")
    parser.add_argument("--state-dir", default=os.environ.get("SMARTCITY_STATE_DIR", ".state"),
                        help="where the worker keeps its lock and spool (default: $SMARTCITY_STATE_DIR or .state)")
    parser.add_argument("--share-group", default="ingest", help="MQTT 5 shared-subscription group")
    parser.add_argument("--max-latency", type=float, default=1.0,
                        help="seconds a reading may wait in a batch before it is written")
    parser.add_argument("--batch-lines", type=int, default=10_000, help="lines per InfluxDB write at most")
    parser.add_argument("--receive-maximum", type=int, default=10_000,
                        help="unacknowledged messages the broker may send at once (MQTT 5 Receive Maximum)")
    parser.add_argument("--spool-after", type=float, default=2.0,
                        help="seconds of failing InfluxDB writes before batches go to the spool")
    parser.add_argument("--spool-max-bytes", type=int, default=DEFAULT_MAX_BYTES, help="spool bound in bytes")
    parser.add_argument("--spool-max-age", type=float, default=DEFAULT_MAX_AGE,
                        help="spool bound: age in seconds of its oldest batch")
    parser.add_argument("--max-lateness", type=float, default=DEFAULT_MAX_LATENESS,
                        help="readings older than this many seconds are dead-lettered (default 7 days)")
    parser.add_argument("--max-skew", type=float, default=DEFAULT_MAX_SKEW,
                        help="readings more than this many seconds in the future are dead-lettered")
    parser.add_argument("--metrics-host", default="127.0.0.1", help="address of /metrics and /healthz")
    parser.add_argument("--metrics-port", type=int, default=0,
                        help="port of /metrics and /healthz (0: a free one, written to the worker's "
                             "status.json; -1: off)")
    parser.add_argument("--audit-interval", type=float, default=60.0,
                        help="seconds between sequence audits (gaps, duplicates); 0: off")
    parser.add_argument("--audit-window", type=float, default=3600.0, help="seconds of batches an audit covers")
    parser.add_argument("--status-interval", type=float, default=_env("STATUS_INTERVAL", DEFAULT_INTERVAL),
                        help="seconds between device_status rounds (every device: ok, fault or silent); 0: off "
                             "(env SMARTCITY_INGEST_STATUS_INTERVAL)")
    parser.add_argument("--silent-after", type=float,
                        default=_env("SILENT_AFTER", DEFAULT_SILENT_AFTER),
                        help="seconds without a reading after which a device is silent "
                             "(env SMARTCITY_INGEST_SILENT_AFTER)")
    parser.add_argument("--health-interval", type=float,
                        default=_env("HEALTH_INTERVAL", DEFAULT_HEALTH_INTERVAL),
                        help="seconds between the worker's service_health points; 0: off "
                             "(env SMARTCITY_INGEST_HEALTH_INTERVAL)")
    parser.add_argument("--retire", action="store_true",
                        help="retire --worker for good: store what the broker queued for its session, end the "
                             "session, exit (for scaling down; see ingest/README.md)")


def _env(name: str, default: float) -> str | float:
    # A string default goes through the option's type=float when parsed: a bad value fails like the option.
    return os.environ.get(f"SMARTCITY_INGEST_{name}", default)


def _positive(args: argparse.Namespace, *names: str) -> None:
    for name in names:
        value = getattr(args, name)
        if not value > 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be > 0: {value}")


def config_from_args(args: argparse.Namespace) -> IngestConfig:
    """The worker's configuration, validated once at start with messages naming the option."""
    _positive(args, "max_latency", "batch_lines", "receive_maximum", "spool_max_bytes", "spool_max_age",
              "max_lateness", "max_skew", "audit_window", "silent_after")
    for name in ("spool_after", "audit_interval", "status_interval", "health_interval"):
        if not getattr(args, name) >= 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 0: {getattr(args, name)}")
    if args.retire and not args.worker:
        raise ConfigError("--retire needs --worker NAME: the worker whose session is to be drained and ended")
    if args.receive_maximum > 65535:
        raise ConfigError(f"--receive-maximum must be at most 65535 (MQTT 5): {args.receive_maximum}")
    return IngestConfig(
        share_group=args.share_group,
        pipeline=PipelineConfig(batch_lines=args.batch_lines, max_messages=max(1, args.receive_maximum // 2),
                                max_latency=args.max_latency, spool_after=args.spool_after),
        bounds=TimeBounds(args.max_lateness, args.max_skew),
        receive_maximum=args.receive_maximum, spool_max_bytes=args.spool_max_bytes,
        spool_max_age=args.spool_max_age, audit_interval=args.audit_interval, audit_window=args.audit_window,
        status_interval=args.status_interval, silent_after=args.silent_after, health_interval=args.health_interval,
    )


def run(args: argparse.Namespace) -> int:
    """Run the worker; returns the exit status."""
    config = config_from_args(args)
    registry = WatchedRegistry(args.registry)
    mqtt_settings = mqtt_from_env()
    mqtt_settings.username = mqtt_settings.username or "ingest"
    cfg = influx_from_env()
    claim = workers.claim(Path(args.state_dir), args.worker)
    influx = InfluxClient(InfluxConfig(cfg.url, cfg.database, cfg.username, cfg.password))
    try:
        influx.create_database()
    except InfluxError as exc:
        log.warning("could not create database %s (it may exist; writes retry until it does): %s",
                    cfg.database, exc.reason)
    on_sighup(registry.reload)
    service = IngestService(mqtt_settings, influx, registry, claim, config)
    if args.retire:
        return _retire(service, claim, influx)
    status: StatusServer | None = None
    if args.metrics_port >= 0:
        status = StatusServer(service.metrics.registry, service.health, host=args.metrics_host,
                              port=args.metrics_port)
        status.start()
        (claim.directory / "status.json").write_text(json.dumps({"pid": os.getpid(), "url": status.url}))
    service.start()
    log.info("ingest worker %s started (client id %s%s)", claim.name, claim.client_id,
             f", status {status.url}" if status else "")
    try:
        run_until_stopped(args.duration)
    finally:
        service.stop()
        if status is not None:
            status.stop()
        influx.close()
        claim.release()
        m = service.metrics
        log.info("ingest %s stopped: %d points written, %d spooled batches left, %d dead letters",
                 claim.name, m.value("smartcity_ingest_points_written_total"), len(service.spool),
                 m.total("smartcity_ingest_dead_letters_total"))
    return 0



def _retire(service: IngestService, claim: workers.WorkerClaim, influx: InfluxClient) -> int:
    try:
        drained = service.retire()
    except RetireError as exc:
        log.error("%s", exc)
        return 1
    finally:
        influx.close()
        claim.release()
    log.info("ingest worker %s retired: %d queued messages stored, its session ended", claim.name, drained)
    return 0
