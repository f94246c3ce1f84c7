"""Build every dashboard: uid -> dashboard JSON, and write them to dashboards/json/<uid>.json."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

JSON_DIR = Path(__file__).resolve().parent / "json"
# One module per dashboard, each with build() -> dict (the dashboard JSON) and UID.
MODULES = ("city_overview", "lighting", "rain_cycling", "occupancy", "alarms_commands", "platform_health")


def build_all() -> dict[str, dict[str, Any]]:
    """Every dashboard's JSON by uid, in MODULES order."""
    out: dict[str, dict[str, Any]] = {}
    for name in MODULES:
        module = importlib.import_module(f"dashboards.{name}")
        dashboard: dict[str, Any] = module.build()
        uid = str(dashboard["uid"])
        if uid in out:
            raise ValueError(f"dashboards.{name}: uid {uid} is already used by another dashboard")
        out[uid] = dashboard
    return out


def render(dashboard: dict[str, Any]) -> str:
    """The committed form of a dashboard: sorted keys, two-space indent, a final newline."""
    return json.dumps(dashboard, indent=2, sort_keys=True) + "\n"


def write_all(out_dir: Path = JSON_DIR) -> list[Path]:
    """Write <uid>.json for every dashboard; remove JSON files of dashboards that no longer exist."""
    out_dir.mkdir(parents=True, exist_ok=True)
    built = build_all()
    written = []
    for uid, dashboard in built.items():
        path = out_dir / f"{uid}.json"
        text = render(dashboard)
        if not path.exists() or path.read_text() != text:  # leave unchanged files untouched (mtime, diffs)
            path.write_text(text)
        written.append(path)
    for stale in out_dir.glob("*.json"):
        if stale.stem not in built:
            stale.unlink()
    return written
