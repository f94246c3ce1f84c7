"""`smartcity backup OUT`: the platform's state into a directory, or a .tar archive (docs/backup.md).

    smartcity backup /var/backups/smartcity/2026-12-02.tar [--start RFC3339] [--end RFC3339] [--no-influx]

Where the state is comes from the same variables the services read (SMARTCITY_STATE_DIR,
SMARTCITY_API_STATE_DIR, SMARTCITY_API_OPERATORS, SMARTCITY_RULES, SMARTCITY_INFLUX_*), or the
options below; SMARTCITY_INFLUX_RPC is InfluxDB's backup/RPC address (its bind-address).
Exit status 0: written; 1: written, but the audit log's hash chain is broken (the backup keeps the
evidence); 2: not written (the message says why).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.settings import influx_from_env
from deploy.backup import BackupError, Locations, create_backup
from deploy.backup_influx import InfluxBackupError, InfluxTarget


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


def add_location_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the state is (backup) or goes (restore); the defaults are the services' own."""
    env = os.environ
    state = env.get("SMARTCITY_STATE_DIR", ".state")
    parser.add_argument("--state-dir", default=state,
                        help="the services' state directory (default: $SMARTCITY_STATE_DIR or .state)")
    parser.add_argument("--api-state-dir", default=env.get("SMARTCITY_API_STATE_DIR"),
                        help="the API's state directory (default: $SMARTCITY_API_STATE_DIR or STATE_DIR/api)")
    parser.add_argument("--operators", default=_env_path("SMARTCITY_API_OPERATORS"), type=Path,
                        help="the operators file (default: $SMARTCITY_API_OPERATORS; none: not part of it)")
    parser.add_argument("--control-dir", default=_env_path("SMARTCITY_RULES_CONTROL_DIR"), type=Path,
                        help="the rules' control directory, where alarms.sqlite is (default: "
                             "$SMARTCITY_RULES_CONTROL_DIR or STATE_DIR/rules)")
    parser.add_argument("--rules", default=_env_path("SMARTCITY_RULES"), type=Path,
                        help="the rule file (default: $SMARTCITY_RULES; none: not part of it)")
    parser.add_argument("--influx-url", default=None, help="InfluxDB's HTTP API (default: $SMARTCITY_INFLUX_URL)")
    parser.add_argument("--influx-database", default=None,
                        help="the database (default: $SMARTCITY_INFLUX_DATABASE or smartcity)")
    parser.add_argument("--influx-rpc", default=env.get("SMARTCITY_INFLUX_RPC", "127.0.0.1:8088"),
                        help="InfluxDB's backup/RPC address, host:port (default: $SMARTCITY_INFLUX_RPC or "
                             "127.0.0.1:8088)")
    parser.add_argument("--influx-timeout", type=float, default=3600.0,
                        help="seconds influxd backup/restore may take (default 3600)")
    parser.add_argument("--no-influx", action="store_true", help="leave InfluxDB out")


def locations_from_args(args: argparse.Namespace) -> Locations:
    """Locations from the options (InfluxDB credentials only from the environment: never on a command line)."""
    influx = None
    if not args.no_influx:
        settings = influx_from_env()
        influx = InfluxTarget(url=(args.influx_url or settings.url).rstrip("/"),
                              database=args.influx_database or settings.database, rpc=args.influx_rpc,
                              username=settings.username, password=settings.password)
    state = Path(args.state_dir)
    return Locations(registry=Path(args.registry), state_dir=state,
                     api_state_dir=Path(args.api_state_dir) if args.api_state_dir else state / "api",
                     operators=args.operators, rules_file=args.rules, influx=influx, control_dir=args.control_dir)


@contextmanager
def private_files() -> Iterator[None]:
    """Whatever gets created meanwhile (influxd's files, directories) is private: umask 077."""
    umask = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(umask)


def say(line: str) -> None:
    """A progress line, at once (a timer's journal shows where a long backup is)."""
    print(line, flush=True)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the backup subcommand."""
    parser.add_argument("out", type=Path, help="a new directory, or a new archive ending in .tar")
    parser.add_argument("--start", default=None, help="InfluxDB: only points from this time on (RFC3339)")
    parser.add_argument("--end", default=None, help="InfluxDB: only points before this time (RFC3339)")
    add_location_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Write the backup; see the module's docstring for the exit status."""
    try:
        with private_files():
            manifest = create_backup(locations_from_args(args), args.out, say, start=args.start, end=args.end,
                                     influx_timeout=args.influx_timeout)
    except (BackupError, InfluxBackupError, OSError) as exc:
        print(f"smartcity backup: {exc}", file=sys.stderr)
        return 2
    audit = next((p for p in manifest["parts"] if p["name"] == "audit"), None)
    if audit is not None and audit["chain"]["broken_at"] is not None:
        print(f"smartcity backup: the audit log's hash chain is BROKEN at seq {audit['chain']['broken_at']} "
              "(backed up as it is)", file=sys.stderr)
        return 1
    return 0
