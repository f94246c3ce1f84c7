"""Geometry for the geospatial functions of ``$filter`` (OGC 18-088 Table 25): WKT literals, GeoJSON
values of entities (Location.location, FeatureOfInterest.feature, Datastream.observedArea) and the
functions themselves, on shapely.

Distances and lengths are planar, in the units of the coordinates (degrees for the WGS 84 positions
the registry holds), as in the reference implementations that compute on the stored geometry; a
filter that needs metres should compare against degrees or use ``st_within`` with a polygon.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np

# shapely 2 ships no type information (no py.typed, no stubs installed): these imports are untyped.
import shapely.geometry  # type: ignore[import-untyped]
import shapely.wkt  # type: ignore[import-untyped]
from shapely.errors import ShapelyError  # type: ignore[import-untyped]
from shapely.geometry.base import BaseGeometry  # type: ignore[import-untyped]

_SRID = re.compile(r"\s*SRID\s*=\s*\d+\s*;", re.IGNORECASE)
_RELATE_PATTERN = re.compile(r"[012TF*]{9}")
Geometry = BaseGeometry


def parse_wkt(body: str) -> BaseGeometry:
    """The geometry of a WKT text (an OData ``SRID=4326;`` prefix is allowed); ValueError naming why not."""
    text = _SRID.sub("", body, count=1)
    try:
        # A coordinate beyond float range ('POINT(1 1e999)') overflows in shapely's ufunc: numpy would
        # warn (an exception where warnings are errors) and make it inf. errstate is per thread.
        with np.errstate(over="raise"):
            geometry = shapely.wkt.loads(text)
    except FloatingPointError:
        raise ValueError("a coordinate is beyond float range") from None
    except (ShapelyError, ValueError, TypeError) as e:
        raise ValueError(_short(str(e)) or "not well-known text") from None
    if not isinstance(geometry, BaseGeometry):  # pragma: no cover - loads returns geometries only
        raise ValueError("not a geometry")
    return geometry


def _short(message: str) -> str:
    """GEOS's reason without its exception name, at most 40 characters (it may quote a token of the input)."""
    first = message.strip().splitlines()[0] if message.strip() else ""
    return first.split(": ", 1)[-1][:40]


def to_geometry(value: object) -> BaseGeometry | None:
    """A geometry from a literal, a GeoJSON geometry or Feature dict, or a WKT string; None for null.

    A dict that is not valid GeoJSON is treated as null (the data's problem, not the query's); a value
    of any other type is a type error in the query (QueryError is raised by the caller).
    """
    if value is None or isinstance(value, BaseGeometry):
        return value
    if isinstance(value, dict):
        if value.get("type") == "Feature":
            value = value.get("geometry")
            if not isinstance(value, dict):
                return None
        try:
            return shapely.geometry.shape(value)
        except (ShapelyError, ValueError, TypeError, KeyError, IndexError, AttributeError):
            return None
    if isinstance(value, str):
        return parse_wkt(value)
    raise TypeError(f"expected a geometry, got {type(value).__name__}")


def relate(a: BaseGeometry, b: BaseGeometry, pattern: object) -> bool:
    """st_relate: whether the DE-9IM relation of a and b matches the 9-character pattern."""
    if not isinstance(pattern, str) or not _RELATE_PATTERN.fullmatch(pattern):
        raise ValueError("st_relate needs a DE-9IM pattern of 9 characters from 0 1 2 T F *")
    return bool(a.relate_pattern(b, pattern))


# name -> (number of geometry arguments, function on them (+ the rest)).
GEO_FUNCTIONS: dict[str, tuple[int, Callable[..., Any]]] = {
    "geo.distance": (2, lambda a, b: float(a.distance(b))),
    "geo.length": (1, lambda a: float(a.length)),
    "geo.intersects": (2, lambda a, b: bool(a.intersects(b))),
    "st_equals": (2, lambda a, b: bool(a.equals(b))),
    "st_disjoint": (2, lambda a, b: bool(a.disjoint(b))),
    "st_touches": (2, lambda a, b: bool(a.touches(b))),
    "st_within": (2, lambda a, b: bool(a.within(b))),
    "st_overlaps": (2, lambda a, b: bool(a.overlaps(b))),
    "st_crosses": (2, lambda a, b: bool(a.crosses(b))),
    "st_intersects": (2, lambda a, b: bool(a.intersects(b))),
    "st_contains": (2, lambda a, b: bool(a.contains(b))),
    "st_relate": (2, relate),
}

