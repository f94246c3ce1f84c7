"""`smartcity rules`: run one rules worker until SIGINT/SIGTERM; `smartcity rules migrate FILE` prints version 2."""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path

from core.errors import ConfigError
from core.registry import WatchedRegistry
from core.runtime import on_sighup, run_until_stopped
from core.service_health import DEFAULT_INTERVAL as HEALTH_INTERVAL
from core.settings import influx_from_env, mqtt_from_env
from core.status_http import StatusServer
from rules.alarm_store import AlarmStore, AlarmStoreError, default_path
from rules.partition import UNITS, parse_partition
from rules.rule_events import RuleEventWriter
from rules.rule_file import migrate_file
from rules.service import DEFAULT_MAX_LATENESS, DEFAULT_MAX_SKEW, RulesService
from rules.webhooks import WebhookSender

log = logging.getLogger(__name__)

EXAMPLE_RULES = Path(__file__).parent / "examples" / "city-rules.toml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the rules subcommand (the broker comes from SMARTCITY_MQTT_*, InfluxDB from SMARTCITY_INFLUX_*)."""
    parser.add_argument("--rules", default=str(EXAMPLE_RULES), help="rule file (TOML, version 2; see rules/README.md)")
    parser.add_argument("--client-id", default=None,
                        help="MQTT client id, which owns the persistent session (default: "
                             "smartcity-rules-<hostname>, with -<I>of<N> for a partition worker)")
    parser.add_argument("--tick", type=float, default=0.02,
                        help="seconds between evaluations (rules marked urgent are evaluated at once)")
    parser.add_argument("--urgent-gap", type=float, default=0.004,
                        help="at least this many seconds between urgent evaluations (coalesces a burst)")
    parser.add_argument("--state-dir", default=os.environ.get("SMARTCITY_STATE_DIR", ".state"),
                        help="where snapshots and alarms are kept (default: $SMARTCITY_STATE_DIR or .state)")
    parser.add_argument("--no-state", action="store_true", help="keep no snapshot: every start begins afresh")
    parser.add_argument("--snapshot-interval", type=float, default=10.0, help="seconds between state snapshots")
    parser.add_argument("--partition", default="0/1",
                        help="I/N: this worker owns the zones with crc32(code) %% N == I (default 0/1: all)")
    parser.add_argument("--partition-by", choices=UNITS, default="gemeente", help="the zone code partitions use")
    parser.add_argument("--command-ttl", type=float, default=60.0,
                        help="seconds a command stays valid (its expires_at)")
    parser.add_argument("--max-lateness", type=float, default=DEFAULT_MAX_LATENESS,
                        help="readings older than this many seconds are refused (default 7 days)")
    parser.add_argument("--max-skew", type=float, default=DEFAULT_MAX_SKEW,
                        help="readings more than this many seconds in the future are refused")
    parser.add_argument("--alarms", default=None, help="alarm database (default: STATE_DIR/rules/alarms.sqlite)")
    parser.add_argument("--control-dir", default=None,
                        help="where the operator API leaves holds, disabled rules and reload requests "
                             "(default: the alarm database's directory; see rules/README.md)")
    events = parser.add_mutually_exclusive_group()
    events.add_argument("--events", dest="events", action="store_true", default=None,
                        help="write rule events and alarms to InfluxDB (default: on when SMARTCITY_INFLUX_URL is set)")
    events.add_argument("--no-events", dest="events", action="store_false", help="write no rule events")
    parser.add_argument("--health-interval", type=float, default=HEALTH_INTERVAL,
                        help="seconds between the worker's service_health points in InfluxDB, written with the "
                             "rule events (default %(default)s; 0: none)")
    parser.add_argument("--metrics-host", default="127.0.0.1", help="address of /metrics and /healthz")
    parser.add_argument("--metrics-port", type=int, default=0,
                        help="port of /metrics and /healthz (0: a free one, written to STATE_DIR/rules/"
                             "status-<I>of<N>.json; -1: off)")
    sub = parser.add_subparsers(dest="rules_action", metavar="[migrate FILE]",
                                title="actions (default: run the worker)")
    migrate = sub.add_parser("migrate", help="print the version-2 equivalent of a version-1 rule file")
    migrate.add_argument("file", help="the version-1 rule file")


def _positive(args: argparse.Namespace, *names: str) -> None:
    for name in names:
        value = getattr(args, name)
        if not value > 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be > 0: {value}")


def run(args: argparse.Namespace) -> int:
    """Run the worker (or the migrate action); returns the exit status (2: bad configuration)."""
    if getattr(args, "rules_action", None) == "migrate":
        print(migrate_file(args.file), end="")
        return 0
    _positive(args, "tick", "snapshot_interval", "command_ttl", "max_lateness", "max_skew")
    if args.health_interval < 0:
        raise ConfigError(f"--health-interval must be >= 0 (0: no health points): {args.health_interval}")
    partition = parse_partition(args.partition, args.partition_by)
    tag = f"{partition.index}of{partition.count}"
    state_dir = None if args.no_state else Path(args.state_dir)
    mqtt_settings = mqtt_from_env()
    mqtt_settings.username = mqtt_settings.username or "rules"
    registry = WatchedRegistry(args.registry)
    alarms = None
    control_dir = Path(args.control_dir) if args.control_dir else None
    if control_dir is None and (args.alarms or state_dir is not None):
        control_dir = Path(args.alarms or default_path(state_dir or Path("."))).parent
    if args.alarms or state_dir is not None:
        try:
            alarms = AlarmStore(args.alarms or default_path(state_dir or Path(".")))
        except AlarmStoreError as exc:  # an unusable path is bad configuration, reported as such
            raise ConfigError(f"--alarms: {exc}") from None
    events_on = args.events if args.events is not None else bool(os.environ.get("SMARTCITY_INFLUX_URL"))
    events = RuleEventWriter(influx_from_env()) if events_on else None
    # One worker keeps the id of the service before partitions, so it resumes (and cleans up) that session.
    default_id = f"smartcity-rules-{os.uname().nodename}" + ("" if partition.whole else f"-{tag}")
    service = RulesService(mqtt_settings, args.rules, registry, client_id=args.client_id or default_id,
                           state_dir=state_dir, tick=args.tick, urgent_gap=args.urgent_gap,
                           command_ttl=args.command_ttl,
                           max_lateness=args.max_lateness, max_skew=args.max_skew,
                           partition=(partition.index, partition.count), partition_by=partition.by,
                           snapshot_interval=args.snapshot_interval, alarms=alarms, webhooks=WebhookSender(),
                           events=events, control_dir=control_dir, health_interval=args.health_interval)
    on_sighup(service.request_reload)
    status: StatusServer | None = None
    if args.metrics_port >= 0:
        status = StatusServer(service.metrics.registry, service.health, host=args.metrics_host,
                              port=args.metrics_port)
        status.start()
        if state_dir is not None:
            path = state_dir / "rules" / f"status-{tag}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"pid": os.getpid(), "url": status.url}))
    service.start()
    log.info("rules worker %s started (%s, client id %s%s)", tag, partition, service.link.client_id,
             f", status {status.url}" if status else "")
    try:
        run_until_stopped(args.duration)
    finally:
        service.stop()
        if status is not None:
            status.stop()
        m = service.metrics
        log.info("rules %s stopped: %d messages, %d readings used, %d commands published, %d evaluation errors",
                 tag, m.value("messages"), m.value("readings_used"), m.value("commands_published"),
                 m.value("evaluation_errors"))
    return 0
