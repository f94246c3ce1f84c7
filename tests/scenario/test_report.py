"""The council report of the city's day: its figures equal what the scenario put in and what the platform did.

The report reads only InfluxDB (report/figures.py); the checks compare it with the scenario's own record
(its script, the engine's transitions and the alarm store, kept in memory) and with the energy integrated
here from the raw readings (tests/dashboards/test_energy_saved.py's independent trapezoids).
"""

from __future__ import annotations

import base64
import csv
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from deploy.processes import free_port
from report import ReportResult, gateways_of, wijk_names_of, write_report
from report.figures import read_figures
from rules.rule_file import load_rules
from scenario.city import WIJKEN
from scenario.day import CITY_RULES, TICK, CityDay, active_periods
from tests.dashboards.test_energy_saved import lamp_energy_kwh

pytestmark = pytest.mark.integration

RULES = {r.name: r for r in load_rules(CITY_RULES).rules}
REL = 1e-6


@pytest.fixture(scope="module")
def report(small_city: tuple[CityDay, Path], tmp_path_factory: pytest.TempPathFactory) -> ReportResult:
    day, base = small_city
    return write_report(day.influx, day.start, day.end, tmp_path_factory.mktemp("report"),
                        wijk_names=wijk_names_of(base / "registry.geojson"))


def _wijken(report: ReportResult) -> dict[str, dict[str, str]]:
    with report.wijken_csv.open(encoding="utf-8") as f:
        return {r["wijk"]: r for r in csv.DictReader(f)}


def test_energy_saving_equals_the_raw_readings(small_city: tuple[CityDay, Path], report: ReportResult) -> None:
    day, _ = small_city
    raw = lamp_energy_kwh(day)
    rows = {r.wijk: r for r in report.figures.wijken}
    assert set(rows) == {w.code for w in WIJKEN} == set(raw)
    for wijk, (saved, used) in raw.items():
        assert rows[wijk].saved_kwh == pytest.approx(saved, rel=REL), wijk
        assert rows[wijk].used_kwh == pytest.approx(used, rel=REL), wijk
        assert 0 < rows[wijk].saved_pct < 100
    csv_rows = _wijken(report)
    assert float(csv_rows["WK062600"]["saved_kwh"]) == pytest.approx(raw["WK062600"][0], abs=1e-4)


def test_every_injected_alarm_is_in_the_report_once(small_city: tuple[CityDay, Path], report: ReportResult) -> None:
    day, _ = small_city
    expected: dict[str, dict[str, int]] = {}
    for a in day.alarms:
        counts = expected.setdefault(day.registry.devices[a.group].wijk, {"raised": 0, "acknowledged": 0, "cleared": 0})
        counts["raised"] += 1
        counts["acknowledged"] += a.acknowledged_at is not None
        counts["cleared"] += a.cleared_at is not None
    # What the script injected: one lamp-failure alarm per failed lamp, one device-silent per device of the
    # gateway without power and per silent sensor, nothing else.
    injected = [*day.failed_lamps, *day.silent_devices,
                *(d.id for g in day.silent_gateways for d in day.registry.devices_of(g))]
    assert sorted(a.group for a in day.alarms) == sorted(injected)
    for row in report.figures.wijken:
        assert row.alarms == expected.get(row.wijk, {"raised": 0, "acknowledged": 0, "cleared": 0}), row.wijk


def test_bike_priority_covered_each_shower(small_city: tuple[CityDay, Path], report: ReportResult) -> None:
    day, _ = small_city
    rule = RULES["rain-bike-priority"]
    rows = {r.wijk: r for r in report.figures.wijken}
    showers = {w: s for s in day.showers for w in s.wijken}
    for wijk, row in rows.items():
        engine = sum(b - a for a, b in active_periods(day, rule.name, wijk)) / 60
        assert row.bike_priority_minutes == pytest.approx(engine, abs=1e-6), wijk  # InfluxDB = the engine
        shower = showers.get(wijk)
        if shower is None:
            assert row.rain_minutes == 0 and row.bike_priority_minutes == 0, wijk
            continue
        minutes = (shower.end - shower.start) / 60
        assert minutes - 2 <= row.rain_minutes <= minutes + 1, (wijk, row.rain_minutes)
        # On after `for` of rain, off after `clear_for` of dry weather: each within a tick or two.
        low = minutes - rule.for_seconds / 60 - 1
        high = minutes + rule.clear_for_seconds / 60 + 3 * TICK / 60
        assert low <= row.bike_priority_minutes <= high, (wijk, row.bike_priority_minutes)


def test_a_period_that_cuts_a_bike_priority_counts_only_its_part_of_it(small_city: tuple[CityDay, Path]) -> None:
    day, _ = small_city
    rule = RULES["rain-bike-priority"]
    wijk, (on, off) = next((w, p[0]) for w in sorted({w for s in day.showers for w in s.wijken})
                           if (p := active_periods(day, rule.name, w)))
    start, end = on + (off - on) / 3, off - (off - on) / 3  # the middle third: active at its start and end
    figures = read_figures(day.influx, start, end)
    row = next(r for r in figures.wijken if r.wijk == wijk)
    assert row.bike_priority_minutes == pytest.approx((end - start) / 60, abs=1e-6)
    assert figures.bike_periods[wijk] == [(start, end)]


def test_completeness_shows_the_gateway_without_power(small_city: tuple[CityDay, Path], report: ReportResult) -> None:
    day, _ = small_city
    (gateway, (off, on)), = day.silent_gateways.items()
    rows = {g.gateway: g for g in report.figures.gateways}
    assert set(rows) == set(day.gateways)
    assert rows[gateway].minutes_with_data == 1440 - round((on - off) / 60)
    assert all(g.completeness_pct == 100 for name, g in rows.items() if name != gateway)


def test_a_gateway_that_sent_nothing_in_the_period_is_listed_at_zero(small_city: tuple[CityDay, Path]) -> None:
    day, _ = small_city
    (gateway, (off, on)), = day.silent_gateways.items()
    start, end = off + 600, on - 600  # inside the hour without power
    unknown = {g.gateway for g in read_figures(day.influx, start, end).gateways}
    assert gateway not in unknown  # from InfluxDB alone the report cannot know it
    known = read_figures(day.influx, start, end, known_gateways=gateways_of(day.registry))
    rows = {g.gateway: g for g in known.gateways}
    assert set(rows) == {g.id for g in day.registry.gateways.values()}
    assert rows[gateway].minutes_with_data == 0 and rows[gateway].completeness_pct == 0
    assert rows[gateway].gemeente == day.registry.gateways[gateway].gemeente


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images.append(dict(attrs)["src"] or "")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_is_self_contained_with_every_chart_and_wijk(report: ReportResult) -> None:
    page = _Page()
    page.feed(report.html.read_text(encoding="utf-8"))
    assert len(page.images) == len(report.charts) == 4
    for src in page.images:
        head, data = src.split(",", 1)
        assert head == "data:image/png;base64"
        assert base64.b64decode(data).startswith(b"\x89PNG\r\n\x1a\n")
    text = " ".join(page.text)
    assert all(w.name in text and w.code in text for w in WIJKEN)
    assert "http" not in report.html.read_text(encoding="utf-8")  # nothing fetched from elsewhere


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "smartcity", "report", *args], capture_output=True, text=True,
                          env=env, timeout=120, check=False)


def test_command_line(small_city: tuple[CityDay, Path], tmp_path: Path) -> None:
    day, base = small_city
    env = {**os.environ, "SMARTCITY_INFLUX_URL": day.influx.config.url, "SMARTCITY_INFLUX_DATABASE": "smartcity"}
    from datetime import datetime  # noqa: PLC0415

    from scenario.day import ZONE  # noqa: PLC0415
    the_day = datetime.fromtimestamp(day.start, ZONE).date().isoformat()
    done = _cli(["--registry", str(base / "registry.geojson"), "--day", the_day, "--out", str(tmp_path / "r")], env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"report: {tmp_path / 'r' / 'report.html'}"
    assert "report: reading the figures" in done.stderr  # progress
    assert len((tmp_path / "r" / "wijken.csv").read_text().splitlines()) == 1 + len(WIJKEN)
    bad = _cli(["--day", "2026-13-40", "--out", str(tmp_path / "x")], env)
    assert bad.returncode == 2 and "--day must be a date YYYY-MM-DD" in bad.stderr, bad.stderr
    both = _cli(["--day", the_day, "--from", the_day, "--to", the_day], env)
    assert both.returncode == 2 and "not both" in both.stderr
    gone = _cli(["--day", the_day, "--out", str(tmp_path / "y")],
                {**env, "SMARTCITY_INFLUX_URL": f"http://127.0.0.1:{free_port()}"})
    assert gone.returncode == 1 and "did not answer" in gone.stderr and "Traceback" not in gone.stderr, gone.stderr
