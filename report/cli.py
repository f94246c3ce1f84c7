"""`smartcity report`: the council report of a period from the platform's InfluxDB (SMARTCITY_INFLUX_*)."""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime, timedelta
from datetime import time as daytime
from pathlib import Path
from zoneinfo import ZoneInfo

from core.errors import ConfigError
from core.influx import InfluxClient, InfluxConfig, InfluxError
from core.registry import load as load_registry
from core.settings import influx_from_env

ZONE = ZoneInfo("Europe/Amsterdam")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--day", default=None, help="one local day (Europe/Amsterdam), YYYY-MM-DD (default: yesterday)")
    parser.add_argument("--from", dest="since", default=None, help="first local day of a longer period, YYYY-MM-DD")
    parser.add_argument("--to", dest="until", default=None, help="last local day of the period (inclusive)")
    parser.add_argument("--out", type=Path, default=Path("report"), help="directory to write into (default: report)")
    parser.add_argument("--gemeente", default=None, help="only this gemeente's wijken and gateways, e.g. GM0626")


def _date(text: str, flag: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{flag} must be a date YYYY-MM-DD: {text[:40]!r}") from None


def period(args: argparse.Namespace) -> tuple[float, float]:
    """[start, end) in unix seconds of the days asked for; ConfigError naming the flag if they are wrong."""
    if args.day and (args.since or args.until):
        raise ConfigError("give either --day or --from/--to, not both")
    if args.day or not (args.since or args.until):
        first = last = _date(args.day, "--day") if args.day else datetime.now(ZONE).date() - timedelta(days=1)
    else:
        if not (args.since and args.until):
            raise ConfigError("--from and --to go together")
        first, last = _date(args.since, "--from"), _date(args.until, "--to")
        if last < first:
            raise ConfigError(f"--to {last} is before --from {first}")
        if (last - first).days > 366:
            raise ConfigError("the period is at most a year")
    return (datetime.combine(first, daytime(0), ZONE).timestamp(),
            datetime.combine(last + timedelta(days=1), daytime(0), ZONE).timestamp())


def run(args: argparse.Namespace) -> int:
    start, end = period(args)
    if args.gemeente is not None and not (len(args.gemeente) == 6 and args.gemeente.startswith("GM")
                                          and args.gemeente[2:].isdigit()):
        raise ConfigError(f"--gemeente must be a CBS code such as GM0626: {args.gemeente[:20]!r}")
    # matplotlib is imported only once the arguments are good
    from report import gateways_of, wijk_names_of, write_report  # noqa: PLC0415

    s = influx_from_env()
    names = wijk_names_of(Path(args.registry)) if args.registry else {}
    gateways = gateways_of(load_registry(args.registry)) if args.registry else None  # a bad file: exit 2, named
    try:
        with InfluxClient(InfluxConfig(s.url, s.database, s.username, s.password, timeout=120.0)) as influx:
            result = write_report(influx, start, end, args.out, gemeente=args.gemeente, wijk_names=names,
                                  gateways=gateways,
                                  progress=lambda line: print(line, file=sys.stderr, flush=True))
    except InfluxError as exc:
        print(f"report: InfluxDB at {s.url} did not answer the report's queries: {exc}", file=sys.stderr)
        return 1
    print(f"report: {result.html}")
    return 0
