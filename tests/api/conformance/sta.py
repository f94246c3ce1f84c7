"""A small black-box SensorThings client for the conformance tests (httpx, no server internals)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

ROOT = "/v1.1"
SETS = ("Things", "Locations", "HistoricalLocations", "Datastreams", "Sensors", "ObservedProperties",
        "Observations", "FeaturesOfInterest")
REQ = "http://www.opengis.net/spec/iot_sensing/1.1/req/"


def q(ident: str) -> str:
    """An id as an OData string literal in a URL: quotes doubled."""
    return "'" + ident.replace("'", "''") + "'"


def path(entity_set: str, ident: str | None = None, *rest: str) -> str:
    """/v1.1/Set('id')/rest..."""
    p = f"{ROOT}/{entity_set}" + (f"({q(ident)})" if ident is not None else "")
    return "/".join((p, *rest)) if rest else p


@dataclass
class Sta:
    """GET helpers over one httpx client (anonymous or logged in)."""

    http: httpx.Client

    def get(self, url: str, **params: Any) -> httpx.Response:
        return self.http.get(url, params=params or None)

    def json(self, url: str, **params: Any) -> Any:
        """GET expecting 200 and JSON; the failure message shows what came back."""
        r = self.get(url, **params)
        assert r.status_code == 200, f"GET {r.request.url} -> {r.status_code}: {r.text[:300]}"
        return r.json()

    def pages(self, url: str, **params: Any) -> Iterator[dict[str, Any]]:
        """Each page of a collection, following @iot.nextLink (opaque, absolute) to the end."""
        body = self.json(url, **params)
        seen = 0
        while True:
            yield body
            link = body.get("@iot.nextLink")
            if link is None:
                return
            seen += 1
            assert seen < 1000, "endless nextLink chain"
            assert link.startswith("http://") or link.startswith("https://"), f"nextLink not absolute: {link}"
            r = self.http.get(link)
            assert r.status_code == 200, f"GET {link} -> {r.status_code}: {r.text[:300]}"
            body = r.json()

    def all(self, url: str, **params: Any) -> list[dict[str, Any]]:
        """Every entity of a collection over all pages."""
        return [e for page in self.pages(url, **params) for e in page["value"]]

    def ids(self, url: str, **params: Any) -> list[str]:
        """The @iot.id of every entity of a collection, in order, over all pages."""
        return [e["@iot.id"] for e in self.all(url, **params)]
