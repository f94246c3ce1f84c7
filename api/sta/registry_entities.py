"""The SensorThings entities the GeoJSON registry implies: the registry is the truth for field devices.

Per device: a Thing, its Location (GeoJSON Point), one HistoricalLocation (the registry knows one
place per device, at the time of the registry file), a FeatureOfInterest at the same point (what
the device observes is its surroundings) and a Datastream per metric of its kind. Per kind one
Sensor, per metric one ObservedProperty. Ids come from registry ids, kinds and metrics (model.py),
so they are stable across restarts and reloads.

Everything derived from a device not classified openbaar has ``public=False``; a Sensor or
ObservedProperty is public only when at least one public Datastream uses it, so even the kinds a
municipality keeps to itself do not show.
"""

from __future__ import annotations

from api.sta import definitions
from api.sta.model import (
    Entity,
    EntitySet,
    SeriesRef,
    Source,
    datastream_id,
    historical_location_id,
    observed_property_id,
    sensor_id,
    thing_id,
)
from core.kinds import KINDS, Classification
from core.registry import Device, Registry

GEO_JSON = "application/geo+json"
E = EntitySet


def _point(device: Device) -> dict[str, object]:
    return {"type": "Point", "coordinates": [device.lon, device.lat]}


def _device_entities(device: Device, time: str) -> list[Entity]:
    public = device.classification is Classification.OPENBAAR
    ident = thing_id(device.id)
    kind = KINDS[device.kind]
    streams = tuple(datastream_id(device.id, m) for m in kind.metrics)
    hist = historical_location_id(device.id)
    codes: dict[str, object] = {"gemeente": device.gemeente, "wijk": device.wijk, "kind": device.kind,
                                "gateway": device.gateway}
    if device.buurt is not None:
        codes["buurt"] = device.buurt
    out = [
        Entity(E.THINGS, ident, {"name": device.name, "description": kind.description, "properties": codes},
               {"Locations": (ident,), "HistoricalLocations": (hist,), "Datastreams": streams}, public),
        Entity(E.LOCATIONS, ident,
               {"name": device.name, "description": f"location of {device.name}", "encodingType": GEO_JSON,
                "location": _point(device), "properties": {"gemeente": device.gemeente, "wijk": device.wijk}},
               {"Things": (ident,), "HistoricalLocations": (hist,)}, public),
        Entity(E.HISTORICAL_LOCATIONS, hist, {"time": time}, {"Thing": ident, "Locations": (ident,)}, public),
        Entity(E.FEATURES_OF_INTEREST, ident,
               {"name": device.name, "description": f"surroundings of {device.name}", "encodingType": GEO_JSON,
                "feature": _point(device)}, {}, public),
    ]
    for metric_name, metric in kind.metrics.items():
        out.append(Entity(
            E.DATASTREAMS, datastream_id(device.id, metric_name),
            {"name": f"{device.name} {metric_name}", "description": metric.description,
             "unitOfMeasurement": definitions.unit_json(device.kind, metric_name),
             "observationType": definitions.observation_type(device.kind, metric_name),
             "properties": {"kind": device.kind, "metric": metric_name, **codes}},
            {"Thing": ident, "Sensor": sensor_id(device.kind), "ObservedProperty": observed_property_id(metric_name)},
            public, Source.REGISTRY, SeriesRef(device.kind, metric_name, "device", device.id),
            {"device": device.id, "kind": device.kind, "metric": metric_name, "wijk": device.wijk,
             "gemeente": device.gemeente, "feature_of_interest": ident},
        ))
    return out


def registry_entities(registry: Registry, time: str) -> list[Entity]:
    """All entities of the registry; ``time`` (ISO 8601) is the HistoricalLocations' time."""
    out: list[Entity] = []
    public_kinds: set[str] = set()
    public_metrics: set[str] = set()
    used_kinds: set[str] = set()
    used_metrics: set[str] = set()
    for device in sorted(registry.devices.values(), key=lambda d: d.id):
        out.extend(_device_entities(device, time))
        used_kinds.add(device.kind)
        used_metrics.update(KINDS[device.kind].metrics)
        if device.classification is Classification.OPENBAAR:
            public_kinds.add(device.kind)
            public_metrics.update(KINDS[device.kind].metrics)
    for kind_name in sorted(used_kinds):
        kind = KINDS[kind_name]
        out.append(Entity(E.SENSORS, sensor_id(kind_name),
                          {"name": kind_name, "description": kind.description, "encodingType": "text/plain",
                           "metadata": kind.description}, {}, kind_name in public_kinds))
    for metric_name in sorted(used_metrics):
        name, definition = definitions.observed_property(metric_name)
        description = next(k.metrics[metric_name].description for k in KINDS.values() if metric_name in k.metrics)
        out.append(Entity(E.OBSERVED_PROPERTIES, observed_property_id(metric_name),
                          {"name": name, "definition": definition, "description": description}, {},
                          metric_name in public_metrics))
    return out
