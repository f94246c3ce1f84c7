"""`smartcity dead-letters`: list what the ingest refused, newest first (an operator's look at the store)."""

from __future__ import annotations

import argparse
import time

from core.influx import InfluxClient, InfluxConfig
from core.settings import influx_from_env
from ingest.dead_letters import list_dead_letters


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the dead-letters subcommand (InfluxDB from SMARTCITY_INFLUX_*)."""
    parser.add_argument("--since", type=float, default=86400.0, help="look back this many seconds (default 1 day)")
    parser.add_argument("--reason", default=None, help="only this reason (e.g. wrong_unit, bad_pack, future)")
    parser.add_argument("--gateway", default=None, help="only this gateway")
    parser.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")


def run(args: argparse.Namespace) -> int:
    """Print the dead letters as a table; returns the exit status."""
    cfg = influx_from_env()
    with InfluxClient(InfluxConfig(cfg.url, cfg.database, cfg.username, cfg.password)) as influx:
        letters = list_dead_letters(influx, since_seconds=args.since, reason=args.reason, gateway=args.gateway,
                                    limit=args.limit)
    if not letters:
        print(f"no dead letters in the last {args.since:.0f} s")
        return 0
    print(f"{'received (UTC)':20} {'gateway':14} {'reason':16} {'n':>5}  detail / payload")
    for dl in letters:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(dl.received))
        print(f"{when:20} {dl.gateway[:14]:14} {dl.reason[:16]:16} {dl.count:>5}  {dl.detail[:90]}")
        if dl.payload_head:
            print(f"{'':58}{dl.payload_head[:90]!r}")
    return 0
