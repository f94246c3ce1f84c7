"""Small synthetic registries for the rules tests, built through core.registry.parse."""

from __future__ import annotations

from typing import Any

from core.registry import Registry, parse

# gemeente -> wijk -> (occupancy sensors, street lights)
Layout = dict[str, dict[str, tuple[int, int]]]

SMALL: Layout = {
    "GM0001": {"WK000101": (2, 3), "WK000102": (1, 2)},
    "GM0002": {"WK000201": (2, 2)},
}


def _feature(props: dict[str, Any], lon: float = 5.0, lat: float = 52.0) -> dict[str, Any]:
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]}, "properties": props}


def registry_data(layout: Layout, extra: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """GeoJSON for a city: per wijk two gateways (-a, -b); lights alternate between them."""
    features = []
    for gemeente, wijken in layout.items():
        for wijk, (sensors, lights) in wijken.items():
            gateways = [f"gw-{wijk}-a", f"gw-{wijk}-b"]
            for gw in gateways:
                features.append(_feature({"role": "gateway", "id": gw, "gemeente": gemeente}))
            address = 0
            for kind, prefix, count in (("occupancy", "occ", sensors), ("street_light", "sl", lights)):
                for i in range(count):
                    address += 1
                    features.append(_feature({
                        "role": "device", "id": f"{prefix}-{wijk}-{i}", "kind": kind,
                        "gateway": gateways[i % 2] if kind == "street_light" else gateways[0],
                        "gemeente": gemeente, "wijk": wijk, "link": "lora", "address": f"{address:08X}",
                    }))
    features.extend(extra or [])
    return {"type": "FeatureCollection", "cbs_map_year": 2024, "features": features}


def make_registry(layout: Layout = SMALL, extra: list[dict[str, Any]] | None = None) -> Registry:
    """A parsed registry for the layout (plus any extra features)."""
    return parse(registry_data(layout, extra))


def rain_gauge(gemeente: str, wijk: str) -> dict[str, Any]:
    """A serial rain gauge feature on the first gateway of a wijk (a device no rule reads)."""
    return _feature({"role": "device", "id": f"rain-{wijk}", "kind": "rain_gauge", "gateway": f"gw-{wijk}-a",
                     "gemeente": gemeente, "wijk": wijk, "link": "serial", "port": "rg15"})


def rule_toml(name: str = "presence-lighting", **overrides: Any) -> str:
    """One presence_dimming rule as TOML text, the example's values overridden by keyword."""
    fields: dict[str, Any] = {
        "name": name, "type": "presence_dimming", "zone": "wijk", "sensor_kind": "occupancy",
        "sensor_metric": "presence", "target_kind": "street_light", "on_level": 100, "off_level": 20,
        "hold_seconds": 30, "reassert_seconds": 300,
    }
    fields.update(overrides)
    lines = ["[[rules]]"]
    for key, value in fields.items():
        if value is None:
            continue
        lines.append(f"{key} = {_toml(value)}")
    return "\n".join(lines) + "\n"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)
