"""The council report: for a period, per wijk energy vs the always-on baseline, rain vs bike priority, alarms,
and per gateway data completeness, as one self-contained HTML page with PNG charts and CSV files.

``write_report`` is the entry point (scenario/cli.py, the demo and ``smartcity report`` call it);
report/figures.py defines every figure.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.influx import InfluxClient
from core.registry import Registry
from report.figures import Figures, read_figures


@dataclass(frozen=True, slots=True)
class ReportResult:
    """What was written, and the figures it shows."""

    figures: Figures
    html: Path
    wijken_csv: Path
    gateways_csv: Path
    charts: dict[str, Path]


def _quiet(_: str) -> None:
    pass


def wijk_names_of(registry_path: Path | None) -> dict[str, str]:
    """Wijk code -> name from a registry's optional "wijk_names" member (scenario/city.py writes one)."""
    if registry_path is None:
        return {}
    try:
        names = json.loads(registry_path.read_text(encoding="utf-8")).get("wijk_names", {})
    except (OSError, ValueError, AttributeError):
        return {}
    return {str(k): str(v) for k, v in names.items()} if isinstance(names, dict) else {}


def gateways_of(registry: Registry) -> dict[str, str]:
    """Gateway -> gemeente of a registry: the gateways a report lists even when they sent nothing."""
    return {gw.id: gw.gemeente for gw in registry.gateways.values()}


def write_report(influx: InfluxClient, start: float, end: float, out_dir: Path, *, gemeente: str | None = None,
                 wijk_names: dict[str, str] | None = None, gateways: dict[str, str] | None = None,
                 progress: Callable[[str], None] = _quiet) -> ReportResult:
    """Read the period's figures and write report.html, wijken.csv, gateways.csv and the PNG charts to out_dir.

    gateways (gateways_of(registry)) makes a gateway that sent nothing in the period a row at 0 %.
    """
    from report import charts, document  # noqa: PLC0415 - matplotlib is imported only when a report is written

    out_dir.mkdir(parents=True, exist_ok=True)
    names = wijk_names or {}
    progress("report: reading the figures from InfluxDB")
    fig = read_figures(influx, start, end, gemeente=gemeente, known_gateways=gateways)
    progress(f"report: {len(fig.wijken)} wijken, {len(fig.gateways)} gateways; drawing the charts")
    drawn = {"energy": charts.energy_chart(fig, names, out_dir / "energy.png"),
             "rain": charts.rain_chart(fig, names, out_dir / "rain-bike-priority.png"),
             "rain_timeline": charts.rain_timeline(fig, names, out_dir / "rain-timeline.png"),
             "completeness": charts.completeness_chart(fig, out_dir / "completeness.png")}
    progress("report: writing the HTML and CSV files")
    wijken = document.write_csv(out_dir / "wijken.csv", document.WIJK_COLUMNS, document.wijk_rows(fig, names))
    gateways_csv = document.write_csv(out_dir / "gateways.csv", document.GATEWAY_COLUMNS, document.gateway_rows(fig))
    page = document.write_html(out_dir / "report.html", fig, names, drawn)
    return ReportResult(fig, page, wijken, gateways_csv, drawn)
