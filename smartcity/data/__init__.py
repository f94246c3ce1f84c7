"""Data shipped with the platform: the demo city's registry."""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).parent


def demo_registry_path() -> Path:
    """The GeoJSON registry of the demo city (both municipalities)."""
    return _HERE / "demo-city.geojson"
