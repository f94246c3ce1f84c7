"""The report's charts as PNG files (matplotlib, Agg: no display needed)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import matplotlib

matplotlib.use("Agg")  # before pyplot: a server has no display

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from report.figures import Figures

ZONE = ZoneInfo("Europe/Amsterdam")


def _label(code: str, names: dict[str, str]) -> str:
    return f"{names[code]} ({code})" if code in names else code


def energy_chart(fig: Figures, names: dict[str, str], path: Path) -> Path:
    """Energy used vs the always-on baseline per wijk (bars), the saving in % as text on each."""
    rows = fig.wijken
    f, ax = plt.subplots(figsize=(10, 0.45 * len(rows) + 1.5))
    y = range(len(rows))
    ax.barh(list(y), [r.baseline_kwh for r in rows], color="#c9d7e8", label="always-on baseline")
    ax.barh(list(y), [r.used_kwh for r in rows], color="#2c6fb7", label="used (smart dimming)")
    for i, r in enumerate(rows):
        ax.text(r.baseline_kwh, i, f"  -{r.saved_pct:.0f} %", va="center", fontsize=8)
    ax.set_yticks(list(y), [_label(r.wijk, names) for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("kWh in the period")
    ax.set_title("Street lighting: energy used and the always-on baseline, per wijk")
    ax.legend(loc="lower right", fontsize=8)
    return _save(f, path)


def rain_chart(fig: Figures, names: dict[str, str], path: Path) -> Path:
    """Minutes of rain vs minutes of bike priority per wijk (grouped bars)."""
    rows = fig.wijken
    f, ax = plt.subplots(figsize=(10, 0.45 * len(rows) + 1.5))
    y = [i * 1.0 for i in range(len(rows))]
    ax.barh([v - 0.2 for v in y], [r.rain_minutes for r in rows], height=0.4, color="#7f9cb3", label="rain minutes")
    ax.barh([v + 0.2 for v in y], [r.bike_priority_minutes for r in rows], height=0.4, color="#e3873a",
            label="bike-priority minutes")
    ax.set_yticks(y, [_label(r.wijk, names) for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("minutes in the period")
    ax.set_title("Rain and bike priority at the traffic lights, per wijk")
    ax.legend(loc="lower right", fontsize=8)
    return _save(f, path)


def rain_timeline(fig: Figures, names: dict[str, str], path: Path) -> Path:
    """Rain intensity over time for the wijken that had rain, bike-priority periods shaded."""
    wet = [w for w, points in sorted(fig.rain.items()) if any(v > 0 for _, v in points)] or sorted(fig.rain)[:1]
    f, axes = plt.subplots(max(1, len(wet)), 1, figsize=(10, 1.3 * max(1, len(wet)) + 1), sharex=True,
                           squeeze=False)
    for ax, w in zip(axes[:, 0], wet, strict=False):
        points = fig.rain.get(w, [])
        ax.plot([datetime.fromtimestamp(t, ZONE) for t, _ in points], [v for _, v in points], color="#2c6fb7",
                linewidth=1)
        for a, b in fig.bike_periods.get(w, []):
            ax.axvspan(datetime.fromtimestamp(a, ZONE), datetime.fromtimestamp(b, ZONE), color="#e3873a", alpha=0.3)
        ax.set_ylabel("mm/h", fontsize=7)
        ax.set_title(_label(w, names), fontsize=8, loc="left")
        ax.tick_params(labelsize=7)
    axes[-1, 0].xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=ZONE))  # type: ignore[no-untyped-call]
    f.suptitle("Rain intensity (line) and bike priority (shaded), wijken with rain")
    return _save(f, path)


def completeness_chart(fig: Figures, path: Path) -> Path:
    """Data completeness per gateway (per cent of the period's minutes with stored data)."""
    rows = fig.gateways
    f, ax = plt.subplots(figsize=(10, 3.5))
    ax.bar(range(len(rows)), [g.completeness_pct for g in rows],
           color=["#2c6fb7" if g.completeness_pct >= 99.9 else "#c0392b" for g in rows])
    ax.set_xticks(range(len(rows)), [g.gateway for g in rows], rotation=90, fontsize=6)
    ax.set_ylim(min([90.0, *(g.completeness_pct - 2 for g in rows)]), 100.5)
    ax.set_ylabel("% of minutes with data")
    ax.set_title("Data completeness per gateway (red: below 99.9 %)")
    return _save(f, path)


def _save(f: Figure, path: Path) -> Path:
    f.tight_layout()
    f.savefig(path, format="png", dpi=100)
    plt.close(f)
    return path
