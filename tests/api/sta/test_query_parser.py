"""The $filter / $orderby lexer and parser: literals, OData precedence, positions in errors, guards."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.sta.query import (
    Binary,
    Call,
    Literal,
    Node,
    NotImplementedFeature,
    OrderItem,
    Property,
    QueryError,
    Unary,
    parse_orderby,
)
from api.sta.query.parser import MAX_LENGTH, MAX_NESTING, MAX_TREE_DEPTH
from api.sta.query.parser import parse_filter as _parse_filter

A, B, C = Property(("a",)), Property(("b",)), Property(("c",))


def parse_filter(text: str) -> Any:
    """The parsed tree, typed loosely: tests read its fields (``.left.value``) without narrowing."""
    return _parse_filter(text)


def eq(left: Node, right: Node) -> Binary:
    return Binary("eq", left, right)


@pytest.mark.parametrize(("text", "value"), [
    ("'it''s'", "it's"),
    ("''", ""),
    ("42", 42),
    ("4.25", 4.25),
    ("1e3", 1000.0),
    ("2.5E-2", 0.025),
    ("true", True),
    ("False", False),
    ("null", None),
    ("2026-12-01T10:00:00Z", dt.datetime(2026, 12, 1, 10, tzinfo=dt.UTC)),
    ("2026-12-01T10:00:00.123456789+01:00",
     dt.datetime(2026, 12, 1, 10, 0, 0, 123456, tzinfo=dt.timezone(dt.timedelta(hours=1)))),
    ("2026-12-01T10:00-05:30", dt.datetime(2026, 12, 1, 10, tzinfo=dt.timezone(-dt.timedelta(hours=5, minutes=30)))),
    ("2026-12-01T10:00:00", dt.datetime(2026, 12, 1, 10, tzinfo=dt.UTC)),  # naive: UTC
    ("2026-12-01", dt.date(2026, 12, 1)),
    ("10:30:15", dt.time(10, 30, 15)),
    ("duration'P1D'", dt.timedelta(days=1)),
    ("duration'PT1H30M'", dt.timedelta(hours=1, minutes=30)),
    ("duration'P2DT0.5S'", dt.timedelta(days=2, seconds=0.5)),
    ("duration'-P1W'", -dt.timedelta(weeks=1)),
    ("-5", -5),
    ("-2.5", -2.5),
    ("-duration'PT1M'", -dt.timedelta(minutes=1)),
])
def test_literals(text, value):
    node = parse_filter(f"x eq {text}")
    assert node == eq(Property(("x",)), Literal(value))
    assert type(node.right.value) is type(value)


def test_geography_literals_are_shapely_geometries():
    point = parse_filter("st_equals(location, geography'POINT(4.4 52.1)')").args[1].value
    assert (point.geom_type, point.x, point.y) == ("Point", 4.4, 52.1)
    polygon = parse_filter("st_within(location, geometry'SRID=4326;POLYGON((0 0, 1 0, 1 1, 0 1, 0 0))')")
    assert polygon.args[1].value.geom_type == "Polygon" and polygon.args[1].value.area == 1.0
    line = parse_filter("geo.length(geography'LINESTRING(0 0, 3 4)') gt 1").left.args[0].value
    assert line.length == 5.0


@pytest.mark.parametrize(("text", "problem", "position"), [
    ("x eq geography'POINT(4.4'", "invalid geography literal", 6),
    ("x eq geography'BLOB(1 2)'", "invalid geography literal", 6),
    ("x eq duration'P1Y'", "years or months", 6),
    ("x eq duration'P'", "invalid duration", 6),
    ("x eq duration'PT'", "invalid duration", 6),
    ("x eq 2026-13-01T00:00:00Z", "invalid datetime", 6),
    ("x eq 2026-02-30", "invalid date", 6),
    ("x eq 25:00:00", "invalid time of day", 6),
    ("x eq 2026-12-01T10:00:00+25:00", "invalid time zone offset", 6),
    ("x eq 'open", "unterminated string", 6),
    ("x gt 2026-12-01T10:00:00 01:00", "write '+' as %2B in a URL", 25),
    ("x eq 1e999", "number out of range", 6),
    ("x eq " + "9" * 50, "number too long", 6),
    ("x eq #", "unexpected character '#'", 6),
])
def test_bad_literals_name_the_problem_and_position(text, problem, position):
    with pytest.raises(QueryError) as caught:
        parse_filter(text)
    assert problem in str(caught.value)
    assert f"at character {position}" in str(caught.value)
    assert caught.value.position == position - 1


def test_property_paths():
    assert parse_filter("properties/wijk eq 'WK1'").left == Property(("properties", "wijk"))
    assert parse_filter("Datastream/Thing/name eq 'x'").left == Property(("Datastream", "Thing", "name"))
    assert parse_filter("@iot.id eq 'a'").left == Property(("@iot.id",))
    assert parse_filter("Thing/@iot.id eq 'a'").left == Property(("Thing", "@iot.id"))
    # a keyword inside a path is a property name
    assert parse_filter("properties/not eq 1").left == Property(("properties", "not"))


@pytest.mark.parametrize(("text", "tree"), [
    # and binds tighter than or
    ("a or b and c", Binary("or", A, Binary("and", B, C))),
    ("a and b or c", Binary("or", Binary("and", A, B), C)),
    # comparisons bind tighter than and
    ("a eq 1 and b eq 2", Binary("and", eq(A, Literal(1)), eq(B, Literal(2)))),
    # mul before add before comparison; left associativity
    ("a add b mul c eq 1", eq(Binary("add", A, Binary("mul", B, C)), Literal(1))),
    ("a sub b sub c eq 1", eq(Binary("sub", Binary("sub", A, B), C), Literal(1))),
    ("a div b mod c eq 1", eq(Binary("mod", Binary("div", A, B), C), Literal(1))),
    ("a divby b eq 1", eq(Binary("div", A, B), Literal(1))),
    # unary binds tighter than everything binary: 'not a eq b' is '(not a) eq b' (OData precedence table)
    ("not a eq b", eq(Unary("not", A), B)),
    ("not (a eq b)", Unary("not", eq(A, B))),
    ("-a add b eq 1", eq(Binary("add", Unary("-", A), B), Literal(1))),
    ("- (a add b) eq 1", eq(Unary("-", Binary("add", A, B)), Literal(1))),
    # relational binds tighter than equality
    ("a lt b eq true", eq(Binary("lt", A, B), Literal(True))),
    ("a eq b lt c", eq(A, Binary("lt", B, C))),
    # parentheses override
    ("(a or b) and c", Binary("and", Binary("or", A, B), C)),
    ("(a add b) mul c eq 1", eq(Binary("mul", Binary("add", A, B), C), Literal(1))),
    # operators are matched without regard to case
    ("a EQ 1 AND b Ne 2", Binary("and", eq(A, Literal(1)), Binary("ne", B, Literal(2)))),
    # 'in' is a list of 'eq' joined by 'or'
    ("a in (1, 2)", Binary("or", eq(A, Literal(1)), eq(A, Literal(2)))),
])
def test_precedence(text, tree):
    assert parse_filter(text) == tree


def test_function_calls():
    assert parse_filter("substringof('x', name)") == Call("substringof", (Literal("x"), Property(("name",))))
    assert parse_filter("year(phenomenonTime) eq 2026").left == Call("year", (Property(("phenomenonTime",)),))
    assert parse_filter("now() gt t").left == Call("now", ())
    assert parse_filter("GEO.DISTANCE(a, b) lt 1").left.name == "geo.distance"  # names are lower-cased
    assert parse_filter("substring(name, 1, 2) eq 'x'").left.args[2] == Literal(2)


@pytest.mark.parametrize(("text", "problem", "position"), [
    ("a eq", "expected an expression, found the end of input", 5),
    ("(a eq 1", "expected ')'", 8),
    ("a eq 1)", "expected an operator or the end, found ')'", 7),
    ("a eq 1 b", "expected an operator or the end, found 'b'", 8),
    ("and a", "found the operator 'and'", 1),
    ("1 and 2", "'and' needs boolean operands", 3),
    ("a eq 1 or 5", "'or' needs boolean operands", 8),
    ("not 5", "'not' needs a boolean operand", 1),
    ("-true eq a", "'-' needs a number or duration", 1),
    ("5", "must be a boolean expression", 1),
    ("a add 1", "must be a boolean expression", 1),
    ("frobnicate(a)", "unknown function 'frobnicate'", 1),
    ("length(a, b) eq 1", "length() takes 1 argument, got 2", 1),
    ("substring(a) eq 'x'", "substring() takes 2 to 3 arguments, got 1", 1),
    ("now(1) eq a", "now() takes 0 arguments, got 1", 1),
    ("a/(b) eq 1", "expected a property name after '/', found '('", 3),
    ("a/b(1) eq 1", "a function call cannot follow '/'", 3),
    ("length(a b) eq 1", "expected ',' or ')' in the arguments of length()", 10),
    ("a in 1", "expected '(' after 'in'", 6),
    ("", "expected an expression, found the end of input", 1),
])
def test_syntax_errors_name_the_problem_and_position(text, problem, position):
    with pytest.raises(QueryError) as caught:
        parse_filter(text)
    assert problem in str(caught.value)
    assert f"at character {position}" in str(caught.value)


@pytest.mark.parametrize("text", [
    "Datastreams/any(d: d/name eq 'x')",
    "a has 'x'",
    "isof(a, 'Edm.String')",
    "cast(a, 'Edm.String') eq 'x'",
])
def test_valid_odata_this_service_does_not_implement_is_501(text):
    with pytest.raises(NotImplementedFeature, match="not implemented"):
        parse_filter(text)


def test_errors_quote_at_most_40_characters_of_input():
    secret = "x" * 500
    for text in (f"a eq '{secret}", f"a eq 1 {secret}", f"{secret}(1)", f"a eq {secret} {secret}"):
        with pytest.raises(QueryError) as caught:
            parse_filter(text)
        assert "x" * 41 not in str(caught.value)
        assert len(str(caught.value)) < 160


def test_length_guard():
    parse_filter("a eq '" + "x" * (MAX_LENGTH - 7) + "'")  # exactly MAX_LENGTH: fine
    with pytest.raises(QueryError, match="too long"):
        parse_filter("a eq '" + "x" * (MAX_LENGTH - 6) + "'")


def test_nesting_guard():
    depth = MAX_NESTING
    parse_filter("(" * depth + "a eq 1" + ")" * depth)
    with pytest.raises(QueryError, match="nested more than 50 deep"):
        parse_filter("(" * (depth + 1) + "a eq 1" + ")" * (depth + 1))
    with pytest.raises(QueryError, match="nested more than 50 deep"):
        parse_filter("not " * 60 + "a")
    with pytest.raises(QueryError, match="nested more than 50 deep"):
        parse_filter("length(" * 60 + "a" + ")" * 60 + " eq 1")
    with pytest.raises(QueryError, match="nested more than 50 deep"):
        parse_filter("a eq " + "-" * 60 + "1")


def test_hostile_input_cannot_exhaust_the_stack():
    # 8 KB of parentheses, of 'not', of a long 'or' chain: QueryError, never RecursionError
    for text in ("(" * MAX_LENGTH, "not " * (MAX_LENGTH // 4), "-" * MAX_LENGTH, "length(" * (MAX_LENGTH // 7)):
        with pytest.raises(QueryError):
            parse_filter(text)
    chain = " or ".join(["a eq 1"] * (MAX_TREE_DEPTH + 1))
    with pytest.raises(QueryError, match="too deeply nested"):
        parse_filter(chain)
    parse_filter(" or ".join(["a eq 1"] * (MAX_TREE_DEPTH // 2)))


def test_orderby():
    assert parse_orderby("phenomenonTime desc, result") == (
        OrderItem(Property(("phenomenonTime",)), True), OrderItem(Property(("result",)), False))
    assert parse_orderby("name ASC") == (OrderItem(Property(("name",)), False),)
    assert parse_orderby("length(name) desc,id") == (
        OrderItem(Call("length", (Property(("name",)),)), True), OrderItem(Property(("id",)), False))
    assert parse_orderby("Thing/properties/wijk") == (OrderItem(Property(("Thing", "properties", "wijk"))),)


@pytest.mark.parametrize(("text", "problem"), [
    ("", "expected an expression"),
    ("name desc desc", "expected ',', 'asc', 'desc' or the end"),
    ("name,", "expected an expression"),
    ("name sideways", "expected ',', 'asc', 'desc' or the end"),
])
def test_orderby_errors(text, problem):
    with pytest.raises(QueryError, match=problem):
        parse_orderby(text)


_FILTER_ALPHABET = string.ascii_letters[:12] + string.digits + " '()/,-.:@$_\\\"\n\t;=+*#%&?" + "éß€\x00"
_WORDS = st.sampled_from([
    "eq", "ne", "gt", "and", "or", "not", "add", "mod", "in", "null", "true", "name", "result", "Datastream/",
    "substringof(", "geo.distance(", "st_within(", "length(", "now()", "duration'", "geography'", "POINT(",
    "2026-12-01T10:00:00Z", "10:00", "2026-01-01", "'x'", "''", "(", ")", ",", " ", "-", "1.5", "1e5", "'",
])


@settings(max_examples=int(os.environ.get("SMARTCITY_FUZZ_EXAMPLES", "2000")), deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(alphabet=_FILTER_ALPHABET, max_size=80),
                 st.lists(_WORDS, max_size=25).map("".join),
                 st.lists(_WORDS, max_size=25).map(" ".join)))
def test_fuzz_parse_filter_raises_only_query_errors(text):
    try:
        parse_filter(text)
    except QueryError as e:
        assert len(str(e)) < 200
    except NotImplementedFeature:  # valid OData this service does not implement (any(), has, cast)
        pass
    with contextlib.suppress(QueryError, NotImplementedFeature):
        parse_orderby(text)
