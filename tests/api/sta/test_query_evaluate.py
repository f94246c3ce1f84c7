"""Evaluation of $filter expressions with OData semantics: every operator and built-in function."""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.sta.query import QueryError, evaluate, matches
from api.sta.query.ast import Binary, Literal, Property
from api.sta.query.functions import FUNCTIONS
from api.sta.query.parser import parse_filter as _parse_filter

ENTITY = {
    ("name",): "Lamp Vissersstraat 12",
    ("description",): "  Street light  ",
    ("properties", "wijk"): "WK062600",
    ("properties", "height"): 6,
    ("properties", "ratio"): 0.25,
    ("properties", "lit"): True,
    ("properties", "missing"): None,
    ("properties", "tags"): ["a", "b"],
    ("properties", "zero"): 0,
    ("phenomenonTime",): "2026-12-01T10:30:15.250Z",
    ("interval",): "2026-12-01T00:00:00Z/2026-12-02T00:00:00Z",
    ("result",): 42.5,
    ("location",): {"type": "Point", "coordinates": [4.4, 52.1]},
    ("feature",): {"type": "Feature", "geometry": {"type": "Point", "coordinates": [4.4, 52.1]}, "properties": {}},
    ("area",): {"type": "Polygon", "coordinates": [[[4, 52], [5, 52], [5, 53], [4, 53], [4, 52]]]},
    ("broken",): {"type": "Point", "coordinates": "nonsense"},
    ("road",): {"type": "LineString", "coordinates": [[4.5, 51], [4.5, 54]]},
}


def parse_filter(text: str) -> Any:
    """The parsed tree, typed loosely: tests read its fields (``.left.value``) without narrowing."""
    return _parse_filter(text)


def resolve(path):
    return ENTITY.get(path)


def value(expr: str):
    """The value of a non-boolean expression: parsed as 'expr eq null' and evaluated on the left side."""
    node = parse_filter(f"({expr}) eq null")
    return evaluate(node.left, resolve)


def true(text: str) -> bool:
    return matches(parse_filter(text), resolve)


@pytest.mark.parametrize(("text", "expected"), [
    ("properties/height eq 6", True), ("properties/height eq 6.0", True), ("properties/height ne 6", False),
    ("properties/height gt 5", True), ("properties/height gt 6", False), ("properties/height ge 6", True),
    ("properties/height lt 6", False), ("properties/height lt 6.5", True), ("properties/height le 6", True),
    ("name eq 'Lamp Vissersstraat 12'", True), ("name ne 'x'", True), ("name gt 'Lamp'", True),
    ("name lt 'Lamp'", False), ("name ge 'Lamp Vissersstraat 12'", True), ("name le 'Lamp'", False),
    ("properties/lit eq true", True), ("properties/lit ne true", False), ("properties/lit", True),
    ("properties/lit gt false", True),
    ("phenomenonTime gt 2026-12-01T10:00:00Z", True), ("phenomenonTime lt 2026-12-01T10:00:00Z", False),
    ("phenomenonTime eq 2026-12-01T11:30:15.25+01:00", True),  # same instant, other offset
    ("phenomenonTime ge 2026-12-01", True), ("phenomenonTime le 2026-12-01", False),  # a date: midnight UTC
    ("duration'P1D' gt duration'PT23H'", True), ("duration'P1D' eq duration'PT24H'", True),
    ("10:00:00 lt 10:30:00", True), ("2026-12-01 lt 2026-12-02", True),
    # values of different types are never equal
    ("properties/height eq '6'", False), ("properties/height ne '6'", True), ("properties/lit eq 1", False),
    ("properties/tags eq 'a'", False),
    # intervals: after a time when they start after it, before a time when they end before it
    ("interval gt 2026-11-30T00:00:00Z", True), ("interval gt 2026-12-01T12:00:00Z", False),
    ("interval lt 2026-12-03T00:00:00Z", True), ("interval lt 2026-12-01T12:00:00Z", False),
    ("interval le 2026-12-02T00:00:00Z", True), ("interval ge 2026-12-01T00:00:00Z", True),
    ("interval eq 2026-12-01T00:00:00Z", False), ("interval ne 2026-12-01T00:00:00Z", True),
    ("2026-12-03T00:00:00Z gt interval", True),
])
def test_comparisons(text, expected):
    assert true(text) is expected


@pytest.mark.parametrize(("text", "expected"), [
    # null: eq/ne treat it as a value, ordering with null is false
    ("properties/missing eq null", True), ("properties/missing ne null", False), ("name eq null", False),
    ("name ne null", True), ("null eq null", True), ("properties/missing gt 1", False),
    ("properties/missing lt 1", False), ("properties/nothing eq null", True),
    # null propagates through arithmetic and functions
    ("properties/missing add 1 eq null", True), ("length(properties/missing) eq null", True),
    ("-properties/missing eq null", True),
])
def test_null_semantics(text, expected):
    assert true(text) is expected


@pytest.mark.parametrize(("left", "op", "right", "expected"), [
    (True, "and", None, None), (False, "and", None, False), (None, "and", False, False), (None, "and", None, None),
    (True, "or", None, True), (False, "or", None, None), (None, "or", True, True), (None, "or", None, None),
    (True, "and", True, True), (True, "and", False, False), (False, "or", False, False), (False, "or", True, True),
])
def test_three_valued_logic(left, op, right, expected):
    assert evaluate(Binary(op, Literal(left), Literal(right)), resolve) is expected


def test_not_and_matches_exclude_null():
    assert evaluate(parse_filter("not properties/missing"), resolve) is None
    assert evaluate(parse_filter("not properties/lit"), resolve) is False
    assert matches(parse_filter("properties/missing"), resolve) is False
    assert matches(parse_filter("not properties/missing"), resolve) is False


def test_and_or_short_circuit():
    # the right side would be a type error; the left side decides
    assert true("properties/lit or name gt 5") is True
    assert true("not properties/lit and name gt 5") is False


@pytest.mark.parametrize(("expr", "expected"), [
    ("1 add 2", 3), ("5 sub 7", -2), ("3 mul 4", 12), ("7 div 2", 3.5), ("7 mod 3", 1), ("-7 mod 3", -1),
    ("7 mod -3", 1), ("7.5 mod 2", 1.5), ("-7.5 mod 2", -1.5), ("properties/height mul properties/ratio", 1.5),
    ("1 div 0", None), ("1 mod 0", None), ("properties/height div properties/zero", None),
    ("-properties/height", -6), ("2 add 3 mul 4", 14), ("(2 add 3) mul 4", 20),
    ("2026-12-01T10:00:00Z add duration'P1D'", dt.datetime(2026, 12, 2, 10, tzinfo=dt.UTC)),
    ("duration'P1D' add 2026-12-01T10:00:00Z", dt.datetime(2026, 12, 2, 10, tzinfo=dt.UTC)),
    ("2026-12-01T10:00:00Z sub duration'PT1H'", dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC)),
    ("2026-12-02T00:00:00Z sub 2026-12-01T12:00:00Z", dt.timedelta(hours=12)),
    ("phenomenonTime sub duration'PT30M'", dt.datetime(2026, 12, 1, 10, 0, 15, 250000, tzinfo=dt.UTC)),
    ("duration'P1D' sub duration'PT1H'", dt.timedelta(hours=23)), ("-duration'P1D'", -dt.timedelta(days=1)),
])
def test_arithmetic(expr, expected):
    assert value(expr) == expected


@pytest.mark.parametrize(("text", "problem"), [
    ("name gt 5", "cannot order text against number"),
    ("properties/tags gt 'a'", "cannot order array against text"),
    ("location lt location", "cannot order object against object"),
    ("name add 1 eq 2", "cannot add text and number"),
    ("properties/lit mul 2 eq 2", "cannot mul boolean and number"),
    ("2026-12-01T10:00:00Z add 1 eq null", "cannot add datetime and number"),
    ("-name eq null", "'-' needs a number or duration, got text"),
    ("not name", "'not' needs boolean operands, got text"),
    ("name and true", "'and' needs boolean operands, got text"),
    ("length(properties/height) eq 1", "length: expected text, got number"),
    ("year(name) eq 1", "year: expected a datetime, got text"),
    ("round(name) eq 1", "round: expected a number, got text"),
    ("substring(name, 'x') eq 'a'", "substring: expected an integer, got text"),
    ("st_within(name, area)", "st_within: "),
    ("st_within(properties/height, area)", "st_within: expected a geometry, got int"),
    ("st_relate(location, area, 'XYZ')", "st_relate needs a DE-9IM pattern"),
    ("maxdatetime() add duration'P1D' eq null", "'add': result out of range"),
    ("1e308 mul 10 eq 1", "'mul': result out of range"),
])
def test_type_errors_are_query_errors(text, problem):
    with pytest.raises(QueryError) as caught:
        true(text)
    assert problem in str(caught.value)


@pytest.mark.parametrize(("expr", "expected"), [
    ("substringof('Visser', name)", True), ("substringof('visser', name)", False),
    ("contains(name, 'Visser')", True), ("endswith(name, '12')", True), ("endswith(name, '1')", False),
    ("startswith(name, 'Lamp')", True), ("startswith(name, 'amp')", False), ("length(name)", 21),
    ("indexof(name, 'Visser')", 5), ("indexof(name, 'nope')", -1), ("substring(name, 5)", "Vissersstraat 12"),
    ("substring(name, 5, 7)", "Vissers"), ("substring(name, 100)", ""), ("substring(name, -3, 4)", "Lamp"),
    ("tolower(name)", "lamp vissersstraat 12"), ("toupper('aB')", "AB"), ("trim(description)", "Street light"),
    ("concat(concat(properties/wijk, '/'), 'x')", "WK062600/x"),
    ("round(2.5)", 3.0), ("round(-2.5)", -3.0), ("round(2.4)", 2.0), ("round(7)", 7), ("floor(2.7)", 2.0),
    ("floor(-2.1)", -3.0), ("ceiling(2.1)", 3.0), ("ceiling(-2.7)", -2.0), ("ceiling(4)", 4),
    ("year(phenomenonTime)", 2026), ("month(phenomenonTime)", 12), ("day(phenomenonTime)", 1),
    ("hour(phenomenonTime)", 10), ("minute(phenomenonTime)", 30), ("second(phenomenonTime)", 15),
    ("fractionalseconds(phenomenonTime)", 0.25), ("date(phenomenonTime)", dt.date(2026, 12, 1)),
    ("time(phenomenonTime)", dt.time(10, 30, 15, 250000)),
    ("totaloffsetminutes(2026-12-01T10:00:00+01:30)", 90), ("totaloffsetminutes(phenomenonTime)", 0),
    ("hour(2026-12-01T10:00:00+01:00)", 10), ("year(2026-12-01)", 2026), ("hour(08:15:00)", 8),
    ("mindatetime()", dt.datetime(1, 1, 1, tzinfo=dt.UTC)),
    ("maxdatetime()", dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC)),
])
def test_functions(expr, expected):
    result = value(expr)
    assert result == expected
    assert type(result) is type(expected)


def test_now_is_the_current_utc_time():
    before = dt.datetime.now(dt.UTC)
    now = value("now()")
    assert before <= now <= dt.datetime.now(dt.UTC)
    assert true("now() sub duration'P1D' lt phenomenonTime") is (before - dt.timedelta(days=1) < dt.datetime(
        2026, 12, 1, 10, 30, 15, 250000, tzinfo=dt.UTC))


def test_date_function_results_compare_with_literals():
    assert true("date(phenomenonTime) eq 2026-12-01")
    assert true("time(phenomenonTime) gt 10:00:00")
    assert true("year(phenomenonTime) eq 2026 and month(phenomenonTime) ge 12")


@pytest.mark.parametrize(("expr", "expected"), [
    ("geo.distance(location, geography'POINT(4.4 53.1)')", 1.0),
    ("geo.distance(feature, geography'POINT(7.4 56.1)')", 5.0),  # a GeoJSON Feature: its geometry
    ("geo.length(road)", 3.0),
    ("geo.length(geography'LINESTRING(0 0, 3 4)')", 5.0),
    ("geo.intersects(road, area)", True), ("geo.intersects(location, road)", False),
    ("st_within(location, area)", True), ("st_within(area, location)", False),
    ("st_contains(area, location)", True), ("st_contains(location, area)", False),
    ("st_intersects(area, geography'POINT(4.5 52.5)')", True),
    ("st_intersects(area, geography'POINT(6 52.5)')", False),
    ("st_disjoint(area, geography'POINT(6 52.5)')", True), ("st_disjoint(area, location)", False),
    ("st_equals(location, geography'POINT(4.4 52.1)')", True), ("st_equals(location, area)", False),
    ("st_touches(area, geography'POINT(4 52.5)')", True), ("st_touches(area, location)", False),
    ("st_crosses(road, area)", True), ("st_crosses(geography'LINESTRING(4.1 52.1, 4.2 52.2)', area)", False),
    ("st_overlaps(area, geography'POLYGON((4.5 52.5, 6 52.5, 6 54, 4.5 54, 4.5 52.5))')", True),
    ("st_overlaps(area, geography'POLYGON((4.1 52.1, 4.2 52.1, 4.2 52.2, 4.1 52.1))')", False),
    ("st_relate(location, area, 'T*F**F***')", True), ("st_relate(area, location, 'T*F**F***')", False),
    ("st_within(location, 'POLYGON((4 52, 5 52, 5 53, 4 52))')", True),  # plain WKT text is read too
    ("st_within(broken, area)", None),  # GeoJSON the data holds that shapely cannot read: null
    ("st_within(properties/missing, area)", None),
])
def test_geo_functions(expr, expected):
    result = value(expr)
    assert result == pytest.approx(expected) if isinstance(expected, float) else result is expected


def test_geo_filter_selects_by_area():
    assert true("st_within(location, geography'POLYGON((4 52, 5 52, 5 53, 4 53, 4 52))')")
    assert not true("st_within(location, geography'POLYGON((0 0, 1 0, 1 1, 0 1, 0 0))')")
    assert true("geo.distance(location, geography'POINT(4.4 52.2)') lt 0.2")


def test_geometries_compare_equal_topologically():
    assert true("location eq geography'POINT(4.4 52.1)'")
    assert evaluate(Binary("eq", Literal(value("geography'POINT(1 2)'")), Property(("location",))),
                    resolve) is False


def test_resolver_sees_the_paths():
    seen = []

    def record(path):
        seen.append(path)
        return 1

    assert matches(parse_filter("Datastream/Thing/properties/wijk eq 1 and @iot.id eq 1"), record)
    assert seen == [("Datastream", "Thing", "properties", "wijk"), ("@iot.id",)]


_MIXED = [None, True, 0, -3, 2.5, 1e308, "", "text", "2026-12-01T10:00:00Z",
          "2026-12-01T00:00:00Z/2026-12-02T00:00:00Z", [1], {"a": 1}, {"type": "Point", "coordinates": [4.4, 52.1]},
          {"type": "Polygon", "coordinates": "x"}]
_ATOMS = ["a", "b", "c", "d", "null", "1", "0", "-2.5", "'x'", "'2026-12-01T10:00:00Z'", "2026-12-01T10:00:00Z",
          "2026-12-01", "10:00:00", "duration'P1D'", "geography'POINT(4 52)'", "true", "now()", "maxdatetime()"]
_OPERATORS = ["eq", "ne", "gt", "ge", "lt", "le", "and", "or", "add", "sub", "mul", "div", "mod"]


def _expressions() -> st.SearchStrategy[str]:
    """Random expressions: every operator and function over properties of any JSON type and literals."""
    def grow(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        def call(name: str) -> st.SearchStrategy[str]:
            low, high = FUNCTIONS[name][:2]
            return st.lists(inner, min_size=low, max_size=high).map(lambda args: f"{name}({', '.join(args)})")
        return st.one_of(
            st.tuples(inner, st.sampled_from(_OPERATORS), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
            inner.map(lambda t: f"not {t}"), inner.map(lambda t: f"-{t}"),
            st.sampled_from(sorted(FUNCTIONS)).flatmap(call))
    return st.recursive(st.sampled_from(_ATOMS), grow, max_leaves=8)


@settings(max_examples=1000, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(_expressions(), st.permutations(range(len(_MIXED))))
def test_fuzz_evaluate_raises_only_query_errors(text, order):
    """Whatever parses evaluates to a value or a QueryError against values of every JSON type."""
    try:
        node = parse_filter(f"({text}) eq null")
    except QueryError:
        return
    values = {name: _MIXED[order[i]] for i, name in enumerate("abcd")}
    with contextlib.suppress(QueryError):
        evaluate(node.left, lambda path: values.get(path[0]))
