"""``$filter`` on Observations that InfluxQL cannot express, evaluated in Python over a bounded scan
(api.sta.observation_scan), end to end: the full app on a real uvicorn against a real influxd.

Every answer is compared with a brute-force evaluation of the same filter over all stored points."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from api.app import create_app
from api.sta import observation_scan
from api.sta.query.evaluate import matches
from api.sta.query.parser import parse_filter
from core.influx import InfluxClient
from tests.api.sta.conftest import CLASSIFIED, serve

pytestmark = pytest.mark.integration

START = dt.datetime(2025, 12, 31, 12, 0, tzinfo=dt.UTC)  # the points cross into 2026
STEP = dt.timedelta(minutes=37)
N = 240
# Two public street lights (vs-sl-103 only in 2025, until 20:38) and the classified one, which must never show.
POINTS: dict[str, list[tuple[dt.datetime, float]]] = {
    "vs-sl-101": [(START + i * STEP, float(i % 17) + (0.25 if i % 3 else 0.75)) for i in range(N)],
    "vs-sl-103": [(START + i * STEP + dt.timedelta(seconds=1), float(i % 11)) for i in range(15)],
    CLASSIFIED: [(START + i * STEP, 3.0) for i in range(N)],
}
PUBLIC = ("vs-sl-101", "vs-sl-103")


def micros(t: dt.datetime) -> int:
    return (t - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)


def expected(text: str, devices: tuple[str, ...] = PUBLIC, desc: bool = False) -> list[tuple[str, float]]:
    """(Observation id, result) of every stored public point the filter matches, in the API's order."""
    node = parse_filter(text)
    rows = []
    for device in devices:
        ds = f"{device}.power"
        for t, v in POINTS[device]:
            values: dict[str, Any] = {"phenomenonTime": t, "resultTime": t, "result": v,
                                      "@iot.id": f"{ds}.{micros(t)}"}
            if matches(node, lambda path, values=values: values[path[0]]):  # type: ignore[misc]
                rows.append((micros(t), ds, v))
    rows.sort(key=lambda r: (r[0], r[1]), reverse=desc)
    return [(f"{ds}.{t}", v) for t, ds, v in rows]


@pytest.fixture
def client(sta_settings: Any, influx: InfluxClient) -> Iterator[httpx.Client]:
    lines = [f"street_light,device={d},gateway=gw-vs-01 power={v} {micros(t)}"
             for d, pts in POINTS.items() for t, v in pts]
    influx.write("\n".join(lines), precision="u")
    for url in serve(create_app(sta_settings)):
        with httpx.Client(base_url=f"{url}/v1.1", timeout=30) as c:
            yield c


def get(c: httpx.Client, path: str, **params: str) -> dict[str, Any]:
    resp = c.get(path, params=params)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def follow(c: httpx.Client, link: str) -> dict[str, Any]:
    parts = urlsplit(link)
    resp = c.get(f"{parts.scheme}://{parts.netloc}{parts.path}?{parts.query}")
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def walk(c: httpx.Client, path: str, **params: str) -> tuple[list[tuple[str, float]], list[int]]:
    """Every Observation through the nextLinks, and the size of each page."""
    body = get(c, path, **params)
    seen, sizes = [], []
    while True:
        seen += [(o["@iot.id"], o["result"]) for o in body["value"]]
        sizes.append(len(body["value"]))
        if "@iot.nextLink" not in body:
            return seen, sizes
        body = follow(c, body["@iot.nextLink"])


FILTERS = [
    "result add 5 gt 15",
    "round(result) eq 3",
    "year(phenomenonTime) eq 2026",
    "hour(phenomenonTime) eq 3",
    "hour(phenomenonTime) ge 20 and result gt 8",  # one conjunct in InfluxDB, one in Python
    "phenomenonTime lt 2025-12-31T14:00:00Z or result ge 16",  # a time condition inside 'or'
    "floor(result) ne result and minute(phenomenonTime) mod 2 eq 0",
    "substringof('.75', @iot.id) or result mul 2 eq 8",
]


@pytest.mark.parametrize("text", FILTERS)
def test_observations_match_the_python_evaluation_of_all_points(client: httpx.Client, text: str) -> None:
    want = expected(text)
    assert want, "the filter should match something"
    body = get(client, "/Observations", **{"$filter": text, "$top": "1000"})
    assert [(o["@iot.id"], o["result"]) for o in body["value"]] == want
    assert "@iot.nextLink" not in body
    assert not any(CLASSIFIED in o["@iot.id"] for o in body["value"])


def test_navigation_and_descending_order(client: httpx.Client) -> None:
    text = "round(result) eq 3 or year(phenomenonTime) eq 2026 and result lt 2"
    got, _ = walk(client, "/Datastreams('vs-sl-101.power')/Observations",
                  **{"$filter": text, "$top": "5", "$orderby": "phenomenonTime desc"})
    assert got == expected(text, ("vs-sl-101",), desc=True)


def test_paging_returns_every_match_once_in_order(client: httpx.Client) -> None:
    text = "result add 1 gt 12"
    got, sizes = walk(client, "/Observations", **{"$filter": text, "$top": "7"})
    assert got == expected(text)
    assert all(s == 7 for s in sizes[:-1])


def test_scan_bound_gives_short_pages_with_next_links(client: httpx.Client,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(observation_scan, "SCAN_LIMIT", 50)
    text = "hour(phenomenonTime) eq 3"
    first = get(client, "/Observations", **{"$filter": text, "$top": "100"})
    # The first page holds exactly the matches among the first 50 rows read, and a link to go on.
    all_ids = [i for i, _ in expected("true")]
    assert [o["@iot.id"] for o in first["value"]] == [i for i, _ in expected(text) if i in all_ids[:50]]
    assert "@iot.nextLink" in first
    got, sizes = walk(client, "/Observations", **{"$filter": text, "$top": "100"})
    assert got == expected(text)
    assert len(sizes) >= len(all_ids) // 50  # one page per bound's worth of rows
    assert 0 in sizes  # a stretch of 50 rows without a match is a page without rows, not the end


def test_skip_with_a_residual_skips_matches(client: httpx.Client) -> None:
    text = "round(result) eq 3"
    body = get(client, "/Observations", **{"$filter": text, "$skip": "3", "$top": "4"})
    assert [(o["@iot.id"], o["result"]) for o in body["value"]] == expected(text)[3:7]


def test_count_with_a_residual(client: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    text = "year(phenomenonTime) eq 2026 and result gt 2"
    body = get(client, "/Observations", **{"$filter": text, "$count": "true", "$top": "3"})
    assert body["@iot.count"] == len(expected(text))
    assert [o["@iot.id"] for o in body["value"]] == [i for i, _ in expected(text)[:3]]
    nxt = follow(client, body["@iot.nextLink"])
    assert nxt["@iot.count"] == len(expected(text))
    assert [o["@iot.id"] for o in nxt["value"]] == [i for i, _ in expected(text)[3:6]]
    skipped = get(client, "/Observations", **{"$filter": text, "$count": "true", "$skip": "2", "$top": "3"})
    assert [o["@iot.id"] for o in skipped["value"]] == [i for i, _ in expected(text)[2:5]]
    assert get(client, "/Observations", **{"$filter": text, "$count": "true", "$top": "0"})[
        "@iot.count"] == len(expected(text))
    monkeypatch.setattr(observation_scan, "COUNT_LIMIT", 100)
    resp = client.get("/Observations", params={"$filter": text, "$count": "true"})
    assert resp.status_code == 501
    assert "too expensive to count" in resp.text
    # A translated part that narrows below the bound can be counted.
    narrow = "phenomenonTime lt 2026-01-01T08:00:00Z and minute(phenomenonTime) lt 30"
    assert get(client, "/Observations", **{"$filter": narrow, "$count": "true"})["@iot.count"] == len(
        expected(narrow))


def test_expand_observations_with_a_residual(client: httpx.Client) -> None:
    text = "round(result) eq 3"
    body = get(client, "/Datastreams('vs-sl-101.power')",
               **{"$expand": f"Observations($filter={text};$top=1000;$count=true)"})
    assert [(o["@iot.id"], o["result"]) for o in body["Observations"]] == expected(text, ("vs-sl-101",))
    assert body["Observations@iot.count"] == len(expected(text, ("vs-sl-101",)))


def test_entities_filtered_through_observations_with_a_residual(client: httpx.Client,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    body = get(client, "/Things", **{"$filter": "year(Datastreams/Observations/phenomenonTime) eq 2026",
                                     "$select": "id"})
    ids = {t["@iot.id"] for t in body["value"]}
    assert "vs-sl-101" in ids and "vs-sl-103" not in ids and CLASSIFIED not in ids
    monkeypatch.setattr(observation_scan, "SCAN_LIMIT", 10)
    resp = client.get("/Things", params={"$filter": "year(Datastreams/Observations/phenomenonTime) eq 2026"})
    assert resp.status_code == 501


def test_a_type_error_on_some_rows_means_those_rows_do_not_match(client: httpx.Client,
                                                                  influx: InfluxClient) -> None:
    """/Observations mixes Datastreams of every type: round(result) skips the booleans, not the request."""
    influx.write("\n".join(f"street_light,device=vs-sl-101,gateway=gw-vs-01 lamp_failure={str(i % 2 == 0).lower()} "
                           f"{micros(START + i * STEP) + 5}" for i in range(20)), precision="u")
    got, _ = walk(client, "/Observations", **{"$filter": "round(result) eq 3", "$top": "50"})
    assert got == expected("round(result) eq 3")
    assert got  # the filter does match numbers
