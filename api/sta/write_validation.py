"""Validation of the properties of a POST, PATCH or PUT body (OGC 18-088, 8.2 tables and 10.2-10.3).

Each entity set has its properties with a check each: mandatory ones must be present on create and
replace (PUT), every given one must have the right JSON type (and encodingType, observationType,
times and GeoJSON their allowed values), and a name that is neither a property nor a navigation
property of the set is refused, so a misspelt ``desciption`` is an error, not silently dropped.
Every error is a 400 whose message starts with the property's path in the body.

Read-only annotations a client may echo back from a GET (``@iot.selfLink``,
``<Nav>@iot.navigationLink``) are ignored; ``@iot.id`` is handled by the caller.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from api.sta.metadata_store import RESULT_FIELDS
from api.sta.model import NAVIGATION, EntitySet

E = EntitySet
MAX_TEXT = 10_000  # characters of a name, description or URI
GEO_JSON_TYPES = ("application/geo+json", "application/vnd.geo+json")  # 1.1 and the 1.0 name
# Table 15 of 18-088 lists PDF and SensorML 2.0; HTML and plain text are what field practice adds.
SENSOR_ENCODINGS = ("application/pdf", "http://www.opengis.net/doc/IS/SensorML/2.0", "text/html", "text/plain",
                    "application/json")
GEOMETRY_TYPES = ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon",
                  "GeometryCollection")
# InfluxDB stores times from 1677-09-21 to 2262-04-11 (signed 64-bit nanoseconds).
MIN_TIME_US = -9_223_372_036_854_775
MAX_TIME_US = 9_223_372_036_854_775


class WriteError(Exception):
    """A write the service refuses; ``status`` is the HTTP status, the message is safe to show."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


MAX_NESTING = 64  # levels of JSON a body may have (deeper would exhaust the stack of copy and json)


def check_nesting(body: Any) -> None:
    """400 for a body nested deeper than MAX_NESTING (checked without recursion)."""
    stack: list[tuple[Any, int]] = [(body, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_NESTING:
            raise WriteError(400, f"the body is nested deeper than {MAX_NESTING} levels")
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)


def bad(where: str, problem: str) -> WriteError:
    """A 400 naming the property."""
    return WriteError(400, f"{where}: {problem}")


def short(value: Any, limit: int = 40) -> str:
    """A value shortened for an error message."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


Check = Callable[[Any, str], Any]


def text(value: Any, where: str) -> str:
    """A non-empty string."""
    if not isinstance(value, str):
        raise bad(where, f"must be a string, got {short(value)}")
    if not value.strip():
        raise bad(where, "must not be empty")
    if len(value) > MAX_TEXT:
        raise bad(where, f"longer than {MAX_TEXT} characters")
    return value


def json_object(value: Any, where: str) -> dict[str, Any]:
    """A JSON object (properties, parameters)."""
    if not isinstance(value, dict):
        raise bad(where, f"must be a JSON object, got {short(value)}")
    return value


def any_value(value: Any, where: str) -> Any:
    """Any JSON value but null."""
    if value is None:
        raise bad(where, "must not be null")
    return value


def one_of(*allowed: str) -> Check:
    """A string from a fixed list."""
    def check(value: Any, where: str) -> str:
        if value not in allowed:
            raise bad(where, f"must be one of {', '.join(allowed)}; got {short(value)}")
        return str(value)
    return check


def time_us(value: Any, where: str) -> int:
    """An ISO 8601 instant with a time zone, as microseconds since the epoch."""
    if not isinstance(value, str):
        raise bad(where, f"must be an ISO 8601 time string, got {short(value)}")
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise bad(where, f"not an ISO 8601 time: {short(value)}") from None
    if parsed.tzinfo is None:
        raise bad(where, f"must name its time zone (e.g. 'Z'): {short(value)}")
    try:
        delta = parsed - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    except OverflowError:  # year 1 with a positive offset is before datetime.min in UTC
        raise bad(where, f"outside the years 1677-2262 that can be stored: {short(value)}") from None
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    if not MIN_TIME_US <= micros <= MAX_TIME_US:
        raise bad(where, f"outside the years 1677-2262 that can be stored: {short(value)}")
    return micros


def iso(micros: int) -> str:
    """Microseconds since the epoch as ISO 8601 UTC (what the service writes back)."""
    t = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=micros)
    return t.isoformat(timespec="microseconds" if micros % 1_000_000 else "seconds").replace("+00:00", "Z")


def instant(value: Any, where: str) -> str:
    """An ISO 8601 instant, normalised to UTC."""
    return iso(time_us(value, where))


def interval(value: Any, where: str) -> str:
    """An ISO 8601 interval ``start/end`` (start not after end), normalised to UTC."""
    if not isinstance(value, str) or value.count("/") != 1:
        raise bad(where, f"must be an ISO 8601 interval 'start/end', got {short(value)}")
    start, end = (time_us(part, where) for part in value.split("/"))
    if start > end:
        raise bad(where, "the interval ends before it starts")
    return f"{iso(start)}/{iso(end)}"


def geometry(value: Any, where: str) -> dict[str, Any]:
    """A GeoJSON geometry (or a Feature with one) that shapely can read, with finite coordinates."""
    # shapely loads GEOS: only writes need it here. shapely 2 ships no type information.
    from shapely.errors import ShapelyError  # type: ignore[import-untyped]  # noqa: PLC0415
    from shapely.geometry import shape  # type: ignore[import-untyped]  # noqa: PLC0415

    if not isinstance(value, dict):
        raise bad(where, f"must be a GeoJSON object, got {short(value)}")
    geom = value.get("geometry") if value.get("type") == "Feature" else value
    if not isinstance(geom, dict) or geom.get("type") not in GEOMETRY_TYPES:
        raise bad(where, f"must be a GeoJSON geometry (type one of {', '.join(GEOMETRY_TYPES)}) or a Feature")
    try:
        shaped = shape(geom)
    except (ShapelyError, ValueError, TypeError, KeyError, IndexError, AttributeError):
        raise bad(where, "not a valid GeoJSON geometry (check the coordinates)") from None
    if shaped.is_empty or not all(math.isfinite(c) for c in shaped.bounds):
        raise bad(where, "the geometry has no finite coordinates")
    return value


def unit_of_measurement(value: Any, where: str) -> dict[str, Any]:
    """{name, symbol, definition}: strings or null (18-088 Table 12), nothing else."""
    if not isinstance(value, dict):
        raise bad(where, f"must be a JSON object with name, symbol and definition, got {short(value)}")
    for key, item in value.items():
        if key not in ("name", "symbol", "definition"):
            raise bad(f"{where}.{str(key)[:40]}", "unknown property (unitOfMeasurement has name, symbol, definition)")
        if item is not None and not isinstance(item, str):
            raise bad(f"{where}.{key}", f"must be a string or null, got {short(item)}")
    return {"name": value.get("name"), "symbol": value.get("symbol"), "definition": value.get("definition")}


@dataclass(frozen=True, slots=True)
class Prop:
    """One property of a set: its check and whether create/replace needs it."""

    check: Check
    mandatory: bool = False


M = True
PROPERTY_SPECS: dict[EntitySet, dict[str, Prop]] = {
    E.THINGS: {"name": Prop(text, M), "description": Prop(text, M), "properties": Prop(json_object)},
    E.LOCATIONS: {"name": Prop(text, M), "description": Prop(text, M),
                  "encodingType": Prop(one_of(*GEO_JSON_TYPES), M), "location": Prop(geometry, M),
                  "properties": Prop(json_object)},
    E.HISTORICAL_LOCATIONS: {"time": Prop(instant, M)},
    E.DATASTREAMS: {"name": Prop(text, M), "description": Prop(text, M),
                    "unitOfMeasurement": Prop(unit_of_measurement, M),
                    "observationType": Prop(one_of(*RESULT_FIELDS), M), "observedArea": Prop(geometry),
                    "phenomenonTime": Prop(interval), "resultTime": Prop(interval),
                    "properties": Prop(json_object)},
    E.SENSORS: {"name": Prop(text, M), "description": Prop(text, M),
                "encodingType": Prop(one_of(*SENSOR_ENCODINGS), M), "metadata": Prop(any_value, M),
                "properties": Prop(json_object)},
    E.OBSERVED_PROPERTIES: {"name": Prop(text, M), "definition": Prop(text, M), "description": Prop(text, M),
                            "properties": Prop(json_object)},
    E.FEATURES_OF_INTEREST: {"name": Prop(text, M), "description": Prop(text, M),
                             "encodingType": Prop(one_of(*GEO_JSON_TYPES), M), "feature": Prop(geometry, M),
                             "properties": Prop(json_object)},
}
OBSERVATION_PROPERTIES = ("phenomenonTime", "resultTime", "result", "resultQuality", "validTime", "parameters")
SINGULAR: dict[EntitySet, str] = {
    E.THINGS: "Thing", E.LOCATIONS: "Location", E.HISTORICAL_LOCATIONS: "HistoricalLocation",
    E.DATASTREAMS: "Datastream", E.SENSORS: "Sensor", E.OBSERVED_PROPERTIES: "ObservedProperty",
    E.OBSERVATIONS: "Observation", E.FEATURES_OF_INTEREST: "FeatureOfInterest",
}


def is_annotation(key: str) -> bool:
    """Read-only annotations a client may send back unchanged: ignored."""
    return key == "@iot.selfLink" or key.endswith("@iot.navigationLink")


def split_body(entity_set: EntitySet, body: Any, where: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(properties, navigation values) of a body; 400 for a non-object or an unknown name."""
    if not isinstance(body, dict):
        raise bad(where or SINGULAR[entity_set], f"must be a JSON object, got {short(body)}")
    known = OBSERVATION_PROPERTIES if entity_set is E.OBSERVATIONS else tuple(PROPERTY_SPECS[entity_set])
    props: dict[str, Any] = {}
    navs: dict[str, Any] = {}
    for key, value in body.items():
        if key == "@iot.id" or is_annotation(key):
            continue
        if key in NAVIGATION[entity_set]:
            navs[key] = value
        elif key in known:
            props[key] = value
        else:
            raise bad(_join(where, str(key)[:60]), f"unknown property of a {SINGULAR[entity_set]}")
    return props, navs


def check_properties(entity_set: EntitySet, given: dict[str, Any], where: str, *, full: bool) -> dict[str, Any]:
    """The checked (normalised) properties; full: every mandatory one must be there (create, PUT)."""
    specs = PROPERTY_SPECS[entity_set]
    out: dict[str, Any] = {}
    for name, prop in specs.items():
        path = _join(where, name)
        if name not in given:
            if full and prop.mandatory:
                raise bad(path, f"missing (mandatory for a {SINGULAR[entity_set]})")
            continue
        value = given[name]
        if value is None:
            if prop.mandatory:
                raise bad(path, "must not be null")
            out[name] = None  # PATCH with null removes an optional property
            continue
        out[name] = prop.check(value, path)
    return out


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name
