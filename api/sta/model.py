"""The SensorThings API 1.1 data model as this service holds it: entity sets, their navigation
properties, stable ids, and the one place an Observation's JSON is made.

Every entity (other than Observations, which live in InfluxDB) is an ``Entity``: its STA
properties as plain JSON values, its navigation links as ids, whether it is public, and where
it came from. Registry-derived entities have ids derived from the registry (stable across
restarts and reloads); entities that operators create through the API get ids ``"api-<n>"``
from the metadata store. Ids are strings, so URLs quote them: ``Things('vs-sl-101')``.

A Datastream carries a ``SeriesRef``: where its Observations are in InfluxDB (measurement,
field, tag filter). Registry Datastreams read the device kind's measurement (field = metric,
tag ``device``); API-created Datastreams read ``sta_observation`` (field ``result``, tag
``datastream``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

VERSION = "v1.1"


class EntitySet(StrEnum):
    """The eight entity sets of the Sensing Core (OGC 18-088, 8.2)."""

    THINGS = "Things"
    LOCATIONS = "Locations"
    HISTORICAL_LOCATIONS = "HistoricalLocations"
    DATASTREAMS = "Datastreams"
    SENSORS = "Sensors"
    OBSERVED_PROPERTIES = "ObservedProperties"
    OBSERVATIONS = "Observations"
    FEATURES_OF_INTEREST = "FeaturesOfInterest"


@dataclass(frozen=True, slots=True)
class Navigation:
    """A navigation property: the set it leads to and whether it is to-many."""

    target: EntitySet
    many: bool


E = EntitySet
# Navigation properties per entity set (OGC 18-088 Table 3 .. Table 10 / Figure 2).
NAVIGATION: dict[EntitySet, dict[str, Navigation]] = {
    E.THINGS: {"Locations": Navigation(E.LOCATIONS, True),
               "HistoricalLocations": Navigation(E.HISTORICAL_LOCATIONS, True),
               "Datastreams": Navigation(E.DATASTREAMS, True)},
    E.LOCATIONS: {"Things": Navigation(E.THINGS, True),
                  "HistoricalLocations": Navigation(E.HISTORICAL_LOCATIONS, True)},
    E.HISTORICAL_LOCATIONS: {"Thing": Navigation(E.THINGS, False),
                             "Locations": Navigation(E.LOCATIONS, True)},
    E.DATASTREAMS: {"Thing": Navigation(E.THINGS, False), "Sensor": Navigation(E.SENSORS, False),
                    "ObservedProperty": Navigation(E.OBSERVED_PROPERTIES, False),
                    "Observations": Navigation(E.OBSERVATIONS, True)},
    E.SENSORS: {"Datastreams": Navigation(E.DATASTREAMS, True)},
    E.OBSERVED_PROPERTIES: {"Datastreams": Navigation(E.DATASTREAMS, True)},
    E.OBSERVATIONS: {"Datastream": Navigation(E.DATASTREAMS, False),
                     "FeatureOfInterest": Navigation(E.FEATURES_OF_INTEREST, False)},
    E.FEATURES_OF_INTEREST: {"Observations": Navigation(E.OBSERVATIONS, True)},
}

# The STA properties of each set (besides @iot.id / @iot.selfLink), in the order they are written.
PROPERTIES: dict[EntitySet, tuple[str, ...]] = {
    E.THINGS: ("name", "description", "properties"),
    E.LOCATIONS: ("name", "description", "encodingType", "location", "properties"),
    E.HISTORICAL_LOCATIONS: ("time",),
    E.DATASTREAMS: ("name", "description", "unitOfMeasurement", "observationType", "observedArea",
                    "phenomenonTime", "resultTime", "properties"),
    E.SENSORS: ("name", "description", "encodingType", "metadata", "properties"),
    E.OBSERVED_PROPERTIES: ("name", "definition", "description", "properties"),
    E.OBSERVATIONS: ("phenomenonTime", "resultTime", "result", "resultQuality", "validTime", "parameters"),
    E.FEATURES_OF_INTEREST: ("name", "description", "encodingType", "feature", "properties"),
}


class Source(StrEnum):
    """Where an entity's truth is: the GeoJSON registry (read-only through the API) or the metadata store."""

    REGISTRY = "registry"
    API = "api"


@dataclass(frozen=True, slots=True)
class SeriesRef:
    """Where a Datastream's Observations are: ``SELECT "<field>" FROM "<measurement>" WHERE <tag>='<value>'``."""

    measurement: str
    field: str
    tag: str
    value: str


REGISTRY_OBSERVATIONS = None  # registry Datastreams: SeriesRef(kind, metric, "device", device id)
API_MEASUREMENT = "sta_observation"  # API-created Datastreams: field "result", tag "datastream"


@dataclass(slots=True)
class Entity:
    """One non-Observation entity.

    ``props`` holds the STA properties (keys of PROPERTIES[set]); ``links`` the navigation
    properties as ids: a str (or None) for to-one, a tuple of str for to-many (Observations are
    never listed here: a Datastream's ``series`` finds them). ``public`` is False for anything
    derived from a device not classified openbaar; such entities never leave an open endpoint.
    """

    set: EntitySet
    id: str
    props: dict[str, Any]
    links: dict[str, str | tuple[str, ...] | None]
    public: bool = True
    source: Source = Source.REGISTRY
    series: SeriesRef | None = None  # Datastreams only
    extra: dict[str, Any] = field(default_factory=dict)  # internal facts (device id, kind, metric, wijk)


# --- ids of registry-derived entities (stable: made from registry ids, kind and metric names) ---

def thing_id(device: str) -> str:
    """A device's Thing (and its Location and FeatureOfInterest share the id)."""
    return device


def datastream_id(device: str, metric: str) -> str:
    """One device x metric."""
    return f"{device}.{metric}"


def sensor_id(kind: str) -> str:
    """One Sensor per device kind (the model of the field device)."""
    return kind


def observed_property_id(metric: str) -> str:
    """One ObservedProperty per metric name."""
    return metric


def historical_location_id(device: str) -> str:
    """The registry knows one location per device: one HistoricalLocation at the registry's time."""
    return f"{device}.0"


def observation_id(datastream: str, time_us: int) -> str:
    """An Observation is one (Datastream, time): InfluxDB keeps one value per series and timestamp."""
    return f"{datastream}.{time_us}"


def split_observation_id(ident: str) -> tuple[str, int]:
    """(datastream id, time in microseconds) of an observation id; ValueError when it is not one."""
    datastream, _, time_part = ident.rpartition(".")
    if not datastream or not time_part.isdigit():
        raise ValueError(f"not an observation id: {ident[:80]!r}")
    return datastream, int(time_part)


def iso_time(time_us: int) -> str:
    """ISO 8601 UTC with microseconds when they are not zero (STA times are ISO 8601)."""
    t = dt.datetime.fromtimestamp(time_us // 1_000_000, dt.UTC).replace(microsecond=time_us % 1_000_000)
    text = t.isoformat(timespec="microseconds" if time_us % 1_000_000 else "seconds")
    return text.replace("+00:00", "Z")


def quote_id(ident: str) -> str:
    """An id as it appears in a URL: ``'it''s'`` (OData string literal, quotes doubled)."""
    return "'" + ident.replace("'", "''") + "'"


def self_link(base_url: str, entity_set: EntitySet | str, ident: str) -> str:
    """Absolute ``@iot.selfLink``; base_url is the service root without a trailing slash, e.g. http://host/v1.1."""
    return f"{base_url}/{entity_set}({quote_id(ident)})"


def observation_json(base_url: str, datastream: str, time_us: int, result: Any,
                     result_time_us: int | None = None, *, null_result_time: bool = False) -> dict[str, Any]:
    """An Observation as STA JSON: the same object from the HTTP API and the MQTT extension.

    A device's result is generated when it measures: resultTime defaults to phenomenonTime. An
    Observation posted through the API without a resultTime has a null one (``null_result_time``).
    """
    ident = observation_id(datastream, time_us)
    link = self_link(base_url, E.OBSERVATIONS, ident)
    phenomenon = iso_time(time_us)
    return {
        "@iot.id": ident,
        "@iot.selfLink": link,
        "phenomenonTime": phenomenon,
        "resultTime": None if null_result_time else iso_time(result_time_us) if result_time_us is not None
        else phenomenon,
        "result": result,
        "Datastream@iot.navigationLink": f"{link}/Datastream",
        "FeatureOfInterest@iot.navigationLink": f"{link}/FeatureOfInterest",
    }
