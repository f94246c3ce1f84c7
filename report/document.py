"""The report's files: one self-contained HTML page (charts embedded as PNG data URIs) and a CSV per table."""

from __future__ import annotations

import base64
import csv
import html
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from report.figures import RAIN_THRESHOLD, Figures

ZONE = ZoneInfo("Europe/Amsterdam")
WIJK_COLUMNS = ("gemeente", "wijk", "name", "used_kwh", "baseline_kwh", "saved_kwh", "saved_pct", "rain_minutes",
                "bike_priority_minutes", "alarms_raised", "alarms_acknowledged", "alarms_cleared")
GATEWAY_COLUMNS = ("gateway", "gemeente", "minutes_with_data", "minutes", "completeness_pct")


def wijk_rows(fig: Figures, names: dict[str, str]) -> list[dict[str, object]]:
    return [{"gemeente": r.gemeente, "wijk": r.wijk, "name": names.get(r.wijk, ""), "used_kwh": round(r.used_kwh, 4),
             "baseline_kwh": round(r.baseline_kwh, 4), "saved_kwh": round(r.saved_kwh, 4),
             "saved_pct": round(r.saved_pct, 2), "rain_minutes": r.rain_minutes,
             "bike_priority_minutes": round(r.bike_priority_minutes, 1), "alarms_raised": r.alarms["raised"],
             "alarms_acknowledged": r.alarms["acknowledged"], "alarms_cleared": r.alarms["cleared"]}
            for r in fig.wijken]


def gateway_rows(fig: Figures) -> list[dict[str, object]]:
    return [{"gateway": g.gateway, "gemeente": g.gemeente, "minutes_with_data": g.minutes_with_data,
             "minutes": g.minutes, "completeness_pct": round(g.completeness_pct, 2)} for g in fig.gateways]


def write_csv(path: Path, columns: tuple[str, ...], rows: list[dict[str, object]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def _when(t: float) -> str:
    return datetime.fromtimestamp(t, ZONE).strftime("%Y-%m-%d %H:%M")


def _table(columns: tuple[str, ...], rows: list[dict[str, object]]) -> str:
    head = "".join(f"<th>{html.escape(c.replace('_', ' '))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(r[c]))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _image(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"></figure>'


def write_html(path: Path, fig: Figures, names: dict[str, str], charts: dict[str, Path]) -> Path:
    """The page: totals, the charts, the tables, the definitions. Everything from the database is escaped."""
    wijken, gateways = wijk_rows(fig, names), gateway_rows(fig)
    used, saved = sum(r.used_kwh for r in fig.wijken), sum(r.saved_kwh for r in fig.wijken)
    pct = 100 * saved / (used + saved) if used + saved else 0.0
    alarms = {k: sum(r.alarms[k] for r in fig.wijken) for k in ("raised", "acknowledged", "cleared")}
    short = [g for g in fig.gateways if g.completeness_pct < 99.9]
    below = "; below that: " + ", ".join(html.escape(f"{g.gateway} {g.completeness_pct:.1f} %") for g in short)
    now = _when(datetime.now(ZONE).timestamp())
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Smart city report {_when(fig.start)} - {_when(fig.end)}</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}}table{{border-collapse:collapse;
font-size:13px}}td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}th{{background:#eef}}
img{{max-width:100%}}dt{{font-weight:bold;margin-top:.6em}}</style></head><body>
<h1>Smart city report: Voorschoten and Wassenaar</h1>
<p>Period: {_when(fig.start)} to {_when(fig.end)} (Europe/Amsterdam). Generated {now}.</p>
<h2>In short</h2><ul>
<li>Street lighting used <b>{used:,.1f} kWh</b>; always on at full power it would have used {used + saved:,.1f} kWh:
smart dimming saved <b>{saved:,.1f} kWh ({pct:.0f} %)</b>.</li>
<li>Bike priority was on for {sum(r.bike_priority_minutes for r in fig.wijken):,.0f} wijk-minutes; it rained
(above {RAIN_THRESHOLD} mm/h) for {sum(r.rain_minutes for r in fig.wijken):,} wijk-minutes.</li>
<li>Alarms: {alarms["raised"]} raised, {alarms["acknowledged"]} acknowledged by an operator, {alarms["cleared"]}
cleared.</li>
<li>Data completeness: {len(fig.gateways) - len(short)} of {len(fig.gateways)} gateways delivered data in every
minute{below if short else ""}.</li>
</ul>
<h2>Energy</h2>{_image(charts["energy"], "energy used and baseline per wijk")}
<h2>Rain and bike priority</h2>{_image(charts["rain"], "rain and bike priority minutes per wijk")}
{_image(charts["rain_timeline"], "rain intensity and bike priority over time")}
<h2>Per wijk</h2>{_table(WIJK_COLUMNS, wijken)}
<h2>Data completeness</h2>{_image(charts["completeness"], "completeness per gateway")}
{_table(GATEWAY_COLUMNS, gateways)}
<h2>Definitions</h2><dl>
<dt>Energy used, baseline, saved</dt><dd>Per street light, the time integral of its reported power over the period.
A light dimmed to d % drawing P W would draw P &times; 100 / d at full power: the always-on baseline is that, the
saving the difference (a light switched off by day saves nothing). Summed per wijk.</dd>
<dt>Rain minutes</dt><dd>Minutes in which the wijk's rain gauge measured more than {RAIN_THRESHOLD} mm/h (the
threshold of the bike-priority rule).</dd>
<dt>Bike-priority minutes</dt><dd>Minutes the bike-priority rule was active for the wijk: it switches on after
rain above the threshold for its `for` delay and off after its `clear_for` delay of dry weather.</dd>
<dt>Alarms</dt><dd>Alarm changes in the period: raised by the rules (lamp failure, device silent, energy budget),
acknowledged by an operator, cleared when the condition ended.</dd>
<dt>Data completeness</dt><dd>Share of the period's minutes in which the platform stored data of the gateway.</dd>
</dl><p>The figures are also in wijken.csv and gateways.csv next to this file.</p></body></html>
"""
    path.write_text(page, encoding="utf-8")
    return path
