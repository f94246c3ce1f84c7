"""OGC 18-088 Annex A.2.1.6: $filter, its built-in operators (Table 22, with OData precedence)
and its built-in functions (Table 23), on Observations (InfluxDB) and on metadata (registry).

The oracle is the service's own unfiltered listing: each case has a $filter and the Python
predicate that means the same; the filtered answer must be exactly the entities the predicate
keeps. Cases are chosen to discriminate (they keep some entities and drop others; a wrong
precedence keeps different ones), except the few marked as true for everything.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from typing import Any

import pytest
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry
from shapely.wkt import loads as wkt

from tests.api.conformance import data
from tests.api.conformance.sta import Sta, path

pytestmark = pytest.mark.integration

Pred = Callable[[dict[str, Any]], bool]
DIM_OBS = path("Datastreams", data.LIGHT_DIM, "Observations")


def check(anon: Sta, url: str, flt: str, pred: Pred, *, everything: bool = False, nothing: bool = False) -> None:
    """The filtered ids are exactly those the predicate keeps from the unfiltered listing."""
    listing = anon.all(url)
    expected = {e["@iot.id"] for e in listing if pred(e)}
    if not everything and not nothing:
        assert expected and len(expected) < len(listing), f"case does not discriminate: {flt}"
    if everything:
        assert len(expected) == len(listing)
    if nothing:
        assert not expected
    r = anon.get(url, **{"$filter": flt})
    assert r.status_code == 200, f"$filter={flt} -> {r.status_code}: {r.text[:300]}"
    got = {e["@iot.id"] for e in anon.all(url, **{"$filter": flt})}
    assert got == expected, f"$filter={flt}: extra {sorted(got - expected)[:5]}, missing {sorted(expected - got)[:5]}"


def res(pred: Callable[[float], bool]) -> Pred:
    return lambda o: pred(o["result"])


def when(o: dict[str, Any], key: str = "phenomenonTime") -> dt.datetime:
    return data.parse_time(o[key])


# --- $filter itself -----------------------------------------------------------------------------------


def test_request_data_filter_literals_and_properties(anon: Sta, served) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/request-data/filter

    Only entities for which the expression is true are returned; literals are strings in single
    quotes, numbers, booleans and ISO 8601 datetimes; properties may be paths into complex ones.
    """
    check(anon, DIM_OBS, "result lt 10.00", res(lambda v: v < 10))
    check(anon, path("Things"), "name eq 'Lichtmast Centrum 1'", lambda t: t["name"] == "Lichtmast Centrum 1")
    check(anon, path("Things"), "properties/wijk eq 'WK062601'", lambda t: (t.get("properties") or {}).get("wijk")
          == "WK062601")
    check(anon, path("Datastreams"), "unitOfMeasurement/symbol eq '%'",
          lambda d: d["unitOfMeasurement"]["symbol"] == "%")
    failure = path("Datastreams", data.LIGHT_FAILURE, "Observations")
    check(anon, failure, "result eq true", res(lambda v: v is True))
    check(anon, failure, "result eq false", res(lambda v: v is False))
    cut = data.iso(served.base * 1_000_000 + 600_000_000)
    check(anon, DIM_OBS, f"phenomenonTime ge {cut}", lambda o: data.time_us(o["phenomenonTime"])
          >= served.base * 1_000_000 + 600_000_000)
    check(anon, path("Things"), "name eq 'it''s not there'", lambda t: False, nothing=True)


def test_request_data_filter_null_is_not_true(anon: Sta) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/request-data/filter

    "Entities for which the expression evaluates to false or to null ... SHALL be omitted": the
    truth Datastreams have a null unit symbol, so length() of it is null, not a number.
    """
    check(anon, path("Datastreams"), "length(unitOfMeasurement/symbol) gt 0",
          lambda d: bool(d["unitOfMeasurement"]["symbol"]))


def test_request_data_filter_on_related_entities(anon: Sta) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/request-data/filter

    "clients can choose to use the properties of linked entities in the $filter predicate":
    Observations by Datastream/id, Datastreams by Thing properties, Things by their Observations.
    """
    obs = anon.all(path("Observations"), **{"$filter": f"Datastream/id eq '{data.RAIN}'"})
    assert sorted(o["result"] for o in obs) == sorted(data.RAIN_VALUES)
    obs = anon.all(path("Observations"), **{"$filter": "Datastream/Thing/id eq 'vs-rg-001' and result gt 1"})
    assert sorted(o["result"] for o in obs) == [1.5, 3.25]
    everything = anon.all(path("Datastreams"), **{"$expand": "Thing"})
    expected = {d["@iot.id"] for d in everything if (d["Thing"].get("properties") or {}).get("wijk") == "WK062601"}
    got = set(anon.ids(path("Datastreams"), **{"$filter": "Thing/properties/wijk eq 'WK062601'"}))
    assert expected and got == expected
    assert set(anon.ids(path("Things"), **{"$filter": "Datastreams/Observations/result eq 87"})) == {data.LIGHT}


# --- Built-in filter operators (Table 22) -----------------------------------------------------------


OPERATOR_CASES: list[tuple[str, Pred]] = [
    ("result eq 6", res(lambda v: v == 6)),
    ("result ne 6", res(lambda v: v != 6)),
    ("result gt 60", res(lambda v: v > 60)),
    ("result ge 60", res(lambda v: v >= 60)),
    ("result lt 9", res(lambda v: v < 9)),
    ("result le 9", res(lambda v: v <= 9)),
    ("result gt 10 and result lt 20", res(lambda v: 10 < v < 20)),
    ("result lt 6 or result gt 80", res(lambda v: v < 6 or v > 80)),
    ("not (result lt 45)", res(lambda v: not v < 45)),
    ("result add 5 gt 50", res(lambda v: v + 5 > 50)),
    ("result sub 5 gt 50", res(lambda v: v - 5 > 50)),
    ("result mul 2 gt 100", res(lambda v: v * 2 > 100)),
    ("result div 2 gt 20", res(lambda v: v / 2 > 20)),
    ("result mod 2 eq 0", res(lambda v: v % 2 == 0)),
    ("(result sub 5) gt 10", res(lambda v: v - 5 > 10)),
]
# Pairs of operators of adjacent precedence (OData URL conventions 5.1.1.8): mul/div before add/sub,
# left to right within a level; and before or; not (unary, above all binary operators) before and.
PRECEDENCE_CASES: list[tuple[str, Pred]] = [
    ("result add 3 mul 2 eq 15", res(lambda v: v + 3 * 2 == 15)),
    ("(result add 3) mul 2 eq 30", res(lambda v: (v + 3) * 2 == 30)),
    ("result sub 3 sub 3 eq 0", res(lambda v: v - 3 - 3 == 0)),
    ("result div 3 mul 2 eq 4", res(lambda v: v / 3 * 2 == 4)),
    ("result eq 0 or result eq 3 and result eq 6", res(lambda v: v == 0 or (v == 3 and v == 6))),
    ("not (result lt 45) and result lt 60", res(lambda v: (not v < 45) and v < 60)),
    ("result mod 4 eq 1 or result gt 84", res(lambda v: v % 4 == 1 or v > 84)),
]


@pytest.mark.parametrize(("flt", "pred"), OPERATOR_CASES, ids=[c[0] for c in OPERATOR_CASES])
def test_request_data_built_in_filter_operations(anon: Sta, flt: str, pred: Pred) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/request-data/built-in-filter-operations

    Each operator of Table 22 (comparison, logical, arithmetic, grouping) on Observations' result,
    with the Table's own examples' shapes.
    """
    check(anon, DIM_OBS, flt, pred)


@pytest.mark.parametrize(("flt", "pred"), PRECEDENCE_CASES, ids=[c[0] for c in PRECEDENCE_CASES])
def test_request_data_built_in_filter_operations_precedence(anon: Sta, flt: str, pred: Pred) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/request-data/built-in-filter-operations

    "The operator precedence is described in OData Version 4.0 Part 2: URL Conventions 5.1.1.8".
    """
    check(anon, DIM_OBS, flt, pred)


def test_request_data_built_in_filter_operations_on_metadata(anon: Sta) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/request-data/built-in-filter-operations

    The operators on registry metadata (strings compare lexicographically).
    """
    things = path("Things")
    kind: Callable[[dict[str, Any]], Any] = lambda t: (t.get("properties") or {}).get("kind")  # noqa: E731
    check(anon, things, "properties/kind ne 'street_light'", lambda t: kind(t) != "street_light")
    check(anon, things, "name gt 'P'", lambda t: t["name"] > "P")
    exact = "Lichtmast Noord 1"  # an existing name in the middle: gt / ge and lt / le differ on it
    check(anon, things, f"name gt '{exact}'", lambda t: t["name"] > exact)
    check(anon, things, f"name ge '{exact}'", lambda t: t["name"] >= exact)
    check(anon, things, f"name lt '{exact}'", lambda t: t["name"] < exact)
    check(anon, things, "name le 'Lichtmast Noord 1'", lambda t: t["name"] <= "Lichtmast Noord 1")
    check(anon, things, "properties/kind eq 'rain_gauge' or properties/kind eq 'occupancy'",
          lambda t: kind(t) in ("rain_gauge", "occupancy"))
    check(anon, things, "not (properties/kind eq 'street_light') and properties/wijk eq 'WK062600'",
          lambda t: kind(t) != "street_light" and (t.get("properties") or {}).get("wijk") == "WK062600")


# --- Built-in query functions (Table 23) --------------------------------------------------------------


STRING_CASES: list[tuple[str, Pred]] = [
    ("substringof('Noord',name)", lambda t: "Noord" in t["name"]),
    ("endswith(name,'1')", lambda t: t["name"].endswith("1")),
    ("startswith(name,'Regen')", lambda t: t["name"].startswith("Regen")),
    ("length(name) eq 19", lambda t: len(t["name"]) == 19),
    ("indexof(name,'Centrum') eq 10", lambda t: t["name"].find("Centrum") == 10),
    ("substring(name,10) eq 'Centrum 1'", lambda t: t["name"][10:] == "Centrum 1"),
    ("substring(name,10,5) eq 'Noord'", lambda t: t["name"][10:15] == "Noord"),
    ("tolower(name) eq 'lichtmast centrum 1'", lambda t: t["name"].lower() == "lichtmast centrum 1"),
    ("toupper(name) eq 'LICHTMAST DORP 2'", lambda t: t["name"].upper() == "LICHTMAST DORP 2"),
    ("trim(concat('  ',name)) eq 'Regenmeter Wassenaar'", lambda t: t["name"].strip() == "Regenmeter Wassenaar"),
    ("concat(concat(properties/gemeente,', '),properties/wijk) eq 'GM0629, WK062901'",
     lambda t: (t.get("properties") or {}).get("wijk") == "WK062901"),
    ("not startswith(description,'x')", lambda t: not t["description"].startswith("x")),
]


@pytest.mark.parametrize(("flt", "pred"), STRING_CASES, ids=[c[0] for c in STRING_CASES])
def test_request_data_built_in_query_functions_string(anon: Sta, flt: str, pred: Pred) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/request-data/built-in-query-functions

    String functions (OData canonical functions: zero-based indexof/substring).
    """
    check(anon, path("Things"), flt, pred, everything=flt.startswith("not startswith"))


def date_cases(base: int) -> list[tuple[str, Pred, bool]]:
    t = dt.datetime.fromtimestamp(base + 600, dt.UTC)
    return [
        (f"year(phenomenonTime) eq {t.year}", lambda o: when(o).year == t.year, True),
        (f"month(phenomenonTime) eq {t.month}", lambda o: when(o).month == t.month, True),
        (f"day(phenomenonTime) eq {t.day}", lambda o: when(o).day == t.day, False),
        (f"hour(phenomenonTime) eq {t.hour}", lambda o: when(o).hour == t.hour, False),
        (f"minute(phenomenonTime) eq {t.minute}", lambda o: when(o).minute == t.minute, False),
        ("second(phenomenonTime) eq 0", lambda o: when(o).second == 0, True),
        ("fractionalseconds(phenomenonTime) eq 0", lambda o: when(o).microsecond == 0, True),
        (f"date(phenomenonTime) eq {t.date().isoformat()}", lambda o: when(o).date() == t.date(), False),
        (f"time(phenomenonTime) eq {t.strftime('%H:%M:%S')}", lambda o: when(o).time() == t.time(), False),
        ("totaloffsetminutes(phenomenonTime) eq 0", lambda o: True, True),
        ("phenomenonTime lt now()", lambda o: True, True),
        ("phenomenonTime gt now()", lambda o: False, True),
        ("phenomenonTime gt mindatetime()", lambda o: True, True),
        ("phenomenonTime lt maxdatetime()", lambda o: True, True),
    ]


@pytest.mark.parametrize("i", range(14))
def test_request_data_built_in_query_functions_date_on_observations(anon: Sta, served, i: int) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/request-data/built-in-query-functions

    Date functions (year ... maxdatetime) on Observations' phenomenonTime (Table 23's own examples
    use resultTime of Observations).
    """
    flt, pred, _ = date_cases(served.base)[i]
    listing = anon.all(DIM_OBS)
    expected = {o["@iot.id"] for o in listing if pred(o)}
    # day(), hour(), date() keep every reading unless the series crosses midnight or an hour: then
    # the case checks the function is understood, not that it discriminates.
    got = anon.get(DIM_OBS, **{"$filter": flt})
    assert got.status_code == 200, f"$filter={flt} -> {got.status_code}: {got.text[:300]}"
    assert set(anon.ids(DIM_OBS, **{"$filter": flt})) == expected, flt


def test_request_data_built_in_query_functions_date_on_metadata(anon: Sta) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/request-data/built-in-query-functions

    Date functions on HistoricalLocations' time (registry metadata).
    """
    hls = anon.all(path("HistoricalLocations"))
    t = data.parse_time(hls[0]["time"])
    url = path("HistoricalLocations")
    check(anon, url, f"year(time) eq {t.year}", lambda h: when(h, "time").year == t.year, everything=True)
    check(anon, url, f"year(time) ne {t.year}", lambda h: when(h, "time").year != t.year, nothing=True)
    check(anon, url, "time lt now()", lambda h: when(h, "time") < dt.datetime.now(dt.UTC), everything=True)


def half_away(x: float) -> float:
    return math.floor(x + 0.5) if x >= 0 else math.ceil(x - 0.5)


MATH_CASES: list[tuple[str, Pred]] = [
    ("round(result div 4) eq 2", res(lambda v: half_away(v / 4) == 2)),
    ("floor(result div 4) eq 2", res(lambda v: math.floor(v / 4) == 2)),
    ("ceiling(result div 4) eq 2", res(lambda v: math.ceil(v / 4) == 2)),
]


@pytest.mark.parametrize(("flt", "pred"), MATH_CASES, ids=[c[0] for c in MATH_CASES])
def test_request_data_built_in_query_functions_math(anon: Sta, flt: str, pred: Pred) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/request-data/built-in-query-functions

    Math functions round, floor, ceiling on Observations' result.
    """
    check(anon, DIM_OBS, flt, pred)


def geometry(value: dict[str, Any]) -> BaseGeometry:
    """A Location's GeoJSON (a geometry or a Feature) as shapely."""
    return shape(value.get("geometry", value))


HERE = "POINT(4.4455 52.1279)"  # vs-sl-101's location
CENTRUM = "POLYGON((4.444 52.127,4.449 52.127,4.449 52.1282,4.444 52.1282,4.444 52.127))"
THROUGH = "LINESTRING(4.4455 52.1279,4.5 52.2)"
GEO_CASES: list[tuple[str, Callable[[BaseGeometry], bool]]] = [
    (f"geo.distance(location,geography'{HERE}') lt 0.0001", lambda g: g.distance(wkt(HERE)) < 0.0001),
    (f"geo.intersects(location,geography'{CENTRUM}')", lambda g: g.intersects(wkt(CENTRUM))),
    (f"st_equals(location,geography'{HERE}')", lambda g: g.equals(wkt(HERE))),
    (f"st_disjoint(location,geography'{CENTRUM}')", lambda g: g.disjoint(wkt(CENTRUM))),
    (f"st_touches(location,geography'{THROUGH}')", lambda g: g.touches(wkt(THROUGH))),
    (f"st_within(location,geography'{CENTRUM}')", lambda g: g.within(wkt(CENTRUM))),
    (f"st_overlaps(location,geography'{CENTRUM}')", lambda g: g.overlaps(wkt(CENTRUM))),
    (f"st_crosses(location,geography'{THROUGH}')", lambda g: g.crosses(wkt(THROUGH))),
    (f"st_intersects(location,geography'{THROUGH}')", lambda g: g.intersects(wkt(THROUGH))),
    (f"st_contains(location,geography'{HERE}')", lambda g: g.contains(wkt(HERE))),
    (f"st_relate(location,geography'{CENTRUM}','T********')", lambda g: g.relate_pattern(wkt(CENTRUM), "T********")),
    ("geo.length(geography'LINESTRING(4.44 52.12,4.45 52.12)') gt 0", lambda g: True),
]


@pytest.mark.parametrize(("flt", "pred"), GEO_CASES, ids=[c[0][:40] for c in GEO_CASES])
def test_request_data_built_in_query_functions_geospatial(anon: Sta, flt: str,
                                                          pred: Callable[[BaseGeometry], bool]) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/request-data/built-in-query-functions

    geo.distance, geo.length, geo.intersects and the nine st_ functions (WKT geography literals)
    on Locations, checked against shapely on the Locations' own GeoJSON.
    """
    listing = anon.all(path("Locations"))
    expected = {loc["@iot.id"] for loc in listing if pred(geometry(loc["location"]))}
    r = anon.get(path("Locations"), **{"$filter": flt})
    assert r.status_code == 200, f"$filter={flt} -> {r.status_code}: {r.text[:300]}"
    assert set(anon.ids(path("Locations"), **{"$filter": flt})) == expected, flt


def test_request_data_built_in_query_functions_geospatial_via_navigation(anon: Sta) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/request-data/built-in-query-functions

    Things by their Locations (18-088 9.3.3.5 example 3: geo.distance(Locations/location, ...)).
    """
    things = anon.all(path("Things"), **{"$expand": "Locations"})
    inside = {t["@iot.id"] for t in things
              if any(geometry(loc["location"]).within(wkt(CENTRUM)) for loc in t.get("Locations", []))}
    assert data.LIGHT in inside and len(inside) < len(things)
    got = set(anon.ids(path("Things"), **{"$filter": f"st_within(Locations/location,geography'{CENTRUM}')"}))
    assert got == inside
    near = set(anon.ids(path("Things"), **{"$filter": f"geo.distance(Locations/location,geography'{HERE}') lt 0.0001"}))
    assert near == {data.LIGHT}
    assert Point(4.4455, 52.1279).within(wkt(CENTRUM))
