"""Helpers of the Create-Update-Delete tests: minimal valid entities and POST/GET as an operator."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.api.conformance import data
from tests.api.conformance.sta import ROOT, path

OM_MEASUREMENT = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"
POINT = {"type": "Point", "coordinates": [4.45, 52.13]}


def thing(name: str = "conformance thing") -> dict[str, Any]:
    return {"name": name, "description": "made by the conformance tests", "properties": {"purpose": "test"}}


def location(lon: float = 4.45) -> dict[str, Any]:
    return {"name": f"spot {lon}", "description": "a test spot", "encodingType": "application/geo+json",
            "location": {"type": "Point", "coordinates": [lon, 52.13]}}


def sensor(name: str = "thermometer") -> dict[str, Any]:
    return {"name": name, "description": "a test sensor", "encodingType": "application/pdf",
            "metadata": "https://example.org/datasheet.pdf"}


def observed_property(name: str = "air temperature") -> dict[str, Any]:
    return {"name": name, "definition": "http://qudt.org/vocab/quantitykind/Temperature",
            "description": "temperature of the air"}


def feature() -> dict[str, Any]:
    return {"name": "test feature", "description": "where it is observed", "encodingType": "application/geo+json",
            "feature": POINT}


def datastream(**links: Any) -> dict[str, Any]:
    return {"name": "test temperature", "description": "a test datastream",
            "unitOfMeasurement": {"name": "degree Celsius", "symbol": "Cel",
                                  "definition": "http://qudt.org/vocab/unit/DEG_C"},
            "observationType": OM_MEASUREMENT, **links}


def recent(seconds_ago: float = 60) -> str:
    """An ISO instant a little while ago (inside the ingest's lateness window)."""
    return data.iso(int(time.time() - seconds_ago) * 1_000_000)


def ref(ident: str) -> dict[str, str]:
    return {"@iot.id": ident}


def create(op: httpx.Client, url: str, body: dict[str, Any], status: tuple[int, ...] = (201, 204)) -> str:
    """POST an entity; check the status and the Location header; the created entity's id."""
    r = op.post(url if url.startswith(ROOT) else path(url), json=body)
    assert r.status_code in status, f"POST {url} -> {r.status_code}: {r.text[:300]}"
    where = r.headers.get("location")
    assert where, f"POST {url}: no Location header"
    got = op.get(where)
    assert got.status_code == 200, f"GET Location {where} -> {got.status_code}"
    entity = got.json()
    assert entity["@iot.selfLink"] == where, f"Location {where} is not the selfLink {entity['@iot.selfLink']}"
    return str(entity["@iot.id"])


def get(op: httpx.Client, url: str, **params: Any) -> Any:
    r = op.get(url, params=params or None)
    assert r.status_code == 200, f"GET {url} -> {r.status_code}: {r.text[:300]}"
    return r.json()


def count(op: httpx.Client, entity_set: str) -> int:
    return int(get(op, path(entity_set), **{"$count": "true", "$top": "0"})["@iot.count"])


def counts(op: httpx.Client) -> dict[str, int]:
    return {s: count(op, s) for s in ("Things", "Locations", "HistoricalLocations", "Datastreams", "Sensors",
                                      "ObservedProperties", "FeaturesOfInterest")}


def linked_datastream(op: httpx.Client) -> tuple[str, str]:
    """A Thing (with a Location) and a Datastream of it, made for a test: (thing id, datastream id)."""
    t = create(op, "Things", {**thing(), "Locations": [location()]})
    ds = create(op, "Datastreams", datastream(Thing=ref(t), Sensor=sensor(), ObservedProperty=observed_property()))
    return t, ds
