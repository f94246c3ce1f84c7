"""The query options of a request: all of them, nested $expand, and the errors of malformed ones."""

from __future__ import annotations

import pytest

from api.sta.query import ExpandItem, OrderItem, Property, QueryError, QueryOptions, parse_filter, parse_options


def test_no_options():
    assert parse_options([]) == QueryOptions()
    assert parse_options([("foo", "bar"), ("top", "5")]) == QueryOptions()  # non-$ parameters are not ours


def test_every_option():
    options = parse_options([
        ("$filter", "result gt 5"), ("$orderby", "phenomenonTime desc"), ("$top", "10"), ("$skip", "20"),
        ("$count", "true"), ("$select", "id, name,@iot.id"), ("$expand", "Datastreams"), ("$skiptoken", "abc"),
        ("$resultFormat", "dataArray"),
    ])
    assert options == QueryOptions(
        filter=parse_filter("result gt 5"), orderby=(OrderItem(Property(("phenomenonTime",)), True),), top=10,
        skip=20, count=True, select=("id", "name", "@iot.id"), expand=(ExpandItem(("Datastreams",), QueryOptions()),),
        skiptoken="abc", result_format="dataArray")


def test_option_names_ignore_case():
    assert parse_options([("$TOP", "3"), ("$Filter", "a eq 1")]) == QueryOptions(top=3, filter=parse_filter("a eq 1"))


def test_nested_expand():
    options = parse_options([("$expand", "Datastreams($select=id;$top=2;$expand=Observations($top=1;"
                                          "$orderby=phenomenonTime desc;$filter=result gt 1)),Locations,"
                                          "Datastreams/ObservedProperty($select=name)")])
    observations = QueryOptions(top=1, orderby=(OrderItem(Property(("phenomenonTime",)), True),),
                                filter=parse_filter("result gt 1"))
    assert options.expand == (
        ExpandItem(("Datastreams",), QueryOptions(select=("id",), top=2,
                                                  expand=(ExpandItem(("Observations",), observations),))),
        ExpandItem(("Locations",), QueryOptions()),
        ExpandItem(("Datastreams", "ObservedProperty"), QueryOptions(select=("name",))),
    )


def test_expand_filters_may_hold_separators_in_strings():
    options = parse_options([("$expand", "Datastreams($filter=name eq 'a;b,c(d)''e';$count=true)")])
    assert options.expand[0].options == QueryOptions(filter=parse_filter("name eq 'a;b,c(d)''e'"), count=True)
    # and in nested function calls with commas
    options = parse_options([("$expand", "Things($filter=substringof('x', name) and length(name) gt 1)")])
    assert options.expand[0].options.filter == parse_filter("substringof('x', name) and length(name) gt 1")


@pytest.mark.parametrize(("params", "problem"), [
    ([("$frobnicate", "1")], "unknown query option '$frobnicate'"),
    ([("$top", "1"), ("$top", "2")], "$top given more than once"),
    ([("$filter", "a eq 1"), ("$FILTER", "b eq 1")], "$filter given more than once"),
    ([("$top", "-1")], "$top: expected a non-negative integer, got '-1'"),
    ([("$top", "ten")], "$top: expected a non-negative integer"),
    ([("$top", "")], "$top: expected a non-negative integer"),
    ([("$top", "9" * 30)], "$top: expected a non-negative integer"),
    ([("$skip", "1.5")], "$skip: expected a non-negative integer"),
    ([("$count", "yes")], "$count: expected true or false, got 'yes'"),
    ([("$select", "")], "$select: expected property names"),
    ([("$select", "id,,name")], "$select: expected property names"),
    ([("$select", "na me")], "$select: expected property names separated by ','"),
    ([("$filter", "a eq")], "$filter: expected an expression, found the end of input at character 5"),
    ([("$orderby", "a sideways")], "$orderby: expected ',', 'asc', 'desc' or the end at character 3"),
    ([("$skiptoken", "")], "$skiptoken: empty value"),
    ([("$expand", "")], "$expand: expected a navigation path"),
    ([("$expand", "Datastreams,")], "$expand: expected a navigation path"),
    ([("$expand", "Data streams")], "$expand: expected a navigation path"),
    ([("$expand", "Datastreams($top=1")], "$expand: unbalanced parentheses"),
    ([("$expand", "Datastreams($top=1))")], "$expand: unbalanced parentheses"),
    ([("$expand", "Datastreams($top=1)x")], "$expand: unbalanced parentheses after 'Datastreams'"),
    ([("$expand", "Datastreams($filter=name eq 'x)")], "$expand: unterminated string"),
    ([("$expand", "Datastreams(top=1)")], "expected $option=value inside 'Datastreams'(...)"),
    ([("$expand", "Datastreams($top=x)")], "$expand: in Datastreams(...): $top: expected a non-negative integer"),
    ([("$expand", "Datastreams($top=1;$top=2)")], "in Datastreams(...): query option $top given more than once"),
    ([("$expand", "Datastreams($skiptoken=x)")], "$skiptoken is not allowed inside $expand"),
    ([("$expand", "Datastreams($resultFormat=dataArray)")], "$resultFormat is not allowed inside $expand"),
    ([("$expand", "Datastreams($expand=Observations($filter=result gt))")],
     "in Datastreams(...): $expand: in Observations(...): $filter: expected an expression"),
])
def test_malformed_options(params, problem):
    with pytest.raises(QueryError) as caught:
        parse_options(params)
    assert problem in str(caught.value)


def test_expand_depth_guard():
    def nested(depth: int) -> str:
        return "".join("Datastreams($expand=" for _ in range(depth)) + "Thing" + ")" * depth

    parse_options([("$expand", nested(9))])
    with pytest.raises(QueryError, match="nested more than 10 deep"):
        parse_options([("$expand", nested(10))])


def test_long_values_are_refused_before_parsing():
    with pytest.raises(QueryError, match=r"\$expand too long"):
        parse_options([("$expand", "Datastreams," * 1000)])
    with pytest.raises(QueryError, match=r"\$filter too long"):
        parse_options([("$filter", "a eq 1 or " * 1000 + "a eq 1")])


def test_error_messages_quote_little_input():
    with pytest.raises(QueryError) as caught:
        parse_options([("$top", "x" * 5000)])
    assert len(str(caught.value)) < 120
    with pytest.raises(QueryError) as caught:
        parse_options([("$" + "y" * 5000, "1")])
    assert len(str(caught.value)) < 120
