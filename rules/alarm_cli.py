"""`smartcity alarms list|ack`: the operators' view of the rules' alarms, and their acknowledgement.

    smartcity alarms list [--all] [--limit N]     open alarms (with --all: the latest, cleared ones too)
    smartcity alarms ack ID --by NAME             acknowledge one; who and when go to the audit trail

The store is the rules service's SQLite file under the state directory (SMARTCITY_STATE_DIR or
.state, as for the services); both can use it at once. An acknowledgement is also written to
InfluxDB's ``alarm`` measurement (SMARTCITY_INFLUX_*) so that Grafana shows it; if InfluxDB cannot
be reached the acknowledgement still stands in the store, and a warning says so. The point carries
the gemeente and wijk the alarm's group stands for in the registry (``--registry``), as the raised
and cleared points the service writes do (rules/group_zones.py).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from core.errors import ConfigError
from core.influx import InfluxClient, InfluxConfig, InfluxError
from core.registry import load
from core.settings import influx_from_env
from rules.alarm_store import Alarm, AlarmError, AlarmState, AlarmStore, AlarmStoreError, default_path
from rules.group_zones import NO_ZONE, GroupZones, Zone
from rules.rule_events import alarm_line

log = logging.getLogger(__name__)


def _store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state-dir", default=os.environ.get("SMARTCITY_STATE_DIR", ".state"),
                        help="the rules service's state directory (default: $SMARTCITY_STATE_DIR or .state)")
    parser.add_argument("--store", default=None, help="the alarm database (default: STATE_DIR/rules/alarms.sqlite)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the alarms subcommand: list, or ack ID --by NAME."""
    sub = parser.add_subparsers(dest="alarms_command", required=True, metavar="ACTION")
    listing = sub.add_parser("list", help="open alarms, oldest first (--all: the latest of every state)")
    listing.add_argument("--all", action="store_true", help="also acknowledged-and-cleared and cleared alarms")
    listing.add_argument("--limit", type=int, default=50, help="with --all, at most this many (default 50)")
    _store_options(listing)
    ack = sub.add_parser("ack", help="acknowledge an alarm (recorded with who and when)")
    ack.add_argument("id", type=int, help="the alarm id, as `list` shows it")
    ack.add_argument("--by", required=True, help="who acknowledges (your name or operator id; audited)")
    ack.add_argument("--no-influx", action="store_true", help="do not write the acknowledgement to InfluxDB")
    _store_options(ack)


def _when(t: float | None) -> str:
    return "-" if t is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def _print(alarms: list[Alarm]) -> None:
    print(f"{'id':>6} {'state':12} {'severity':13} {'raised':19} {'rule':24} {'group':14} text / acknowledged")
    for a in alarms:
        acked = f"  [ack {a.acknowledged_by} {_when(a.acknowledged_at)}]" if a.acknowledged_by else ""
        print(f"{a.id:>6} {a.state.value:12} {a.severity.value:13} {_when(a.raised_at):19} {a.rule[:24]:24} "
              f"{a.group[:14]:14} {a.text[:60]}{acked}")


def _zone(registry: str | None, group: str) -> Zone:
    """The gemeente and wijk of the alarm's group (the store keeps rule and group, not the rule's group_by)."""
    if registry is None:
        return NO_ZONE
    try:
        return GroupZones(load(registry)).guess(group)
    except ConfigError as exc:  # the acknowledgement stands; only the point's zone tags are lost
        log.warning("registry not read, the acknowledgement goes to InfluxDB without gemeente and wijk: %s", exc)
        return NO_ZONE


def _to_influx(alarm: Alarm, registry: str | None) -> None:
    cfg = influx_from_env()
    gemeente, wijk = _zone(registry, alarm.group)
    point = alarm_line(alarm.rule, alarm.group, alarm.severity, AlarmState.ACKNOWLEDGED,
                       at=alarm.acknowledged_at or time.time(), alarm_id=alarm.id, text=alarm.text,
                       by=alarm.acknowledged_by, gemeente=gemeente, wijk=wijk)
    try:
        with InfluxClient(InfluxConfig(cfg.url, cfg.database, cfg.username, cfg.password, timeout=3.0)) as influx:
            influx.write(point, precision="u")
    except InfluxError as exc:
        log.warning("acknowledgement of alarm %d recorded, but not written to InfluxDB: %s", alarm.id, exc)


def run(args: argparse.Namespace) -> int:
    """List or acknowledge alarms; returns the exit status (1 for an unknown or already acknowledged alarm)."""
    path = Path(args.store) if args.store else default_path(args.state_dir)
    if args.alarms_command == "list" and not path.exists():
        print(f"no alarms ({path} does not exist yet)")
        return 0
    try:
        with AlarmStore(path) as store:
            if args.alarms_command == "list":
                alarms = store.history(args.limit) if args.all else store.open_alarms()
                if not alarms:
                    print("no open alarms" if not args.all else "no alarms")
                    return 0
                _print(alarms)
                return 0
            who = args.by.strip()
            at = time.time()
            alarm = store.acknowledge(args.id, who, at)
    except AlarmError as exc:
        print(f"smartcity alarms: {exc}", file=sys.stderr)
        return 1
    except AlarmStoreError as exc:
        print(f"smartcity alarms: {exc}", file=sys.stderr)
        return 2
    # Who, what and when on the operator's screen; the store has logged the same audit line and kept it in alarm_audit.
    print(f"alarm {alarm.id} ({alarm.rule} {alarm.group}: {alarm.text}) acknowledged by {who} at {_when(at)}")
    if not args.no_influx:
        _to_influx(alarm, getattr(args, "registry", None))  # `smartcity` gives every subcommand --registry
    return 0
