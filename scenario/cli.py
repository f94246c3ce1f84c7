"""`smartcity scenario`: a simulated day of Voorschoten and Wassenaar into a private InfluxDB, and its report.

Writes into --out: registry.geojson (the city), influx/ (the day's database; `influxd` can be started on it
again), state/ (the rules' alarm store), truth.json (what the script injected and what the platform did,
for checking the report against) and report/ (the council report: HTML, PNG charts, CSV).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date, datetime, timedelta
from datetime import time as daytime
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from core.influx import InfluxClient, InfluxConfig
from core.registry import load
from deploy.influxdb import start_influxd
from scenario.city import city_features, city_script, write_registry
from scenario.day import ZONE, CityDay, simulate
from scenario.script import demo_script
from smartcity.data import demo_registry_path

DATABASE = "smartcity"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=None,
                        help="directory for the city, the database and the report (default: ./scenario-DAY)")
    parser.add_argument("--day", default=None,
                        help="the local day (Europe/Amsterdam) to simulate, YYYY-MM-DD (default: yesterday)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="fraction of the city's street lights (1.0 = about 6,000; 0.05 for a quick look)")
    parser.add_argument("--demo-city", action="store_true",
                        help="simulate the demo city (28 devices) and its script instead")
    parser.add_argument("--no-report", action="store_true", help="simulate only; write no report")


def _day(text: str | None) -> date:
    if text is None:
        return datetime.now(ZONE).date() - timedelta(days=1)
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--day must be a date YYYY-MM-DD: {text[:40]!r}") from None


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def truth(day: CityDay) -> dict[str, Any]:
    """What was injected and what the platform did: the figures a report is checked against."""
    alarms: dict[str, int] = {}
    for a in day.alarms:
        alarms[a.rule] = alarms.get(a.rule, 0) + 1
    return {
        "start": day.start, "end": day.end, "gateways": len(day.gateways), "devices": len(day.registry.devices),
        "failed_lamps": day.failed_lamps, "silent_devices": day.silent_devices,
        "silent_gateways": day.silent_gateways,
        "showers": [{"gauges": s.gauges, "wijken": s.wijken, "start": s.start, "end": s.end} for s in day.showers],
        "people": day.people, "alarms_by_rule": alarms, "commands": len(day.commands), "acks": len(day.acks),
        "dead_letters": day.dead_letters, "points": day.points, "simulation_seconds": round(day.build_seconds, 1),
    }


def run(args: argparse.Namespace) -> int:
    if not 0 < args.scale <= 1:
        raise ConfigError(f"--scale must be in (0, 1]: {args.scale!r}")
    day = _day(args.day)
    out: Path = args.out or Path(f"scenario-{day.isoformat()}")
    out.mkdir(parents=True, exist_ok=True)
    start = datetime.combine(day, daytime(0), ZONE).timestamp()
    end = datetime.combine(day + timedelta(days=1), daytime(0), ZONE).timestamp()
    if end > time.time():
        raise ConfigError(f"--day {day.isoformat()} has not ended yet: the scenario simulates a past day")
    if args.demo_city:
        registry_path, script = demo_registry_path(), demo_script()
    else:
        registry_path = write_registry(out / "registry.geojson", args.scale)
        script = city_script(city_features(args.scale))
    registry = load(registry_path)
    _progress(f"scenario: {len(registry.devices):,} devices on {len(registry.gateways)} gateways, "
              f"{day.isoformat()} into {out}")
    if (out / "influx").exists():
        raise ConfigError(f"{out / 'influx'} exists: choose another --out (a scenario writes a fresh database)")
    server = start_influxd(out / "influx")
    try:
        client = InfluxClient(InfluxConfig(server.url, DATABASE, timeout=120.0))
        try:
            client.create_database()
            state = out / "state"
            state.mkdir(exist_ok=True)
            result = simulate(client, registry, registry_path, state, start=start, end=end, script=script,
                              progress=_progress)
            (out / "truth.json").write_text(json.dumps(truth(result), indent=1) + "\n", encoding="utf-8")
            _progress(f"scenario: simulated in {result.build_seconds:.0f} s: {sum(result.points.values()):,} "
                      f"points, {len(result.alarms)} alarms, {len(result.commands):,} commands")
            if not args.no_report:
                # matplotlib is imported only when a report is written
                from report import gateways_of, wijk_names_of, write_report  # noqa: PLC0415

                written = write_report(client, start, end, out / "report", wijk_names=wijk_names_of(registry_path),
                                       gateways=gateways_of(registry), progress=_progress)
                print(f"report: {written.html}")
        finally:
            client.close()
    finally:
        server.stop()
    print(f"scenario: {out}")
    return 0
