"""The SensorThings (OData) query language: ``$filter`` / ``$orderby`` parsing into a small AST, the
other query options (nested ``$expand``), evaluation against entities, and the translation of
Observation filters to InfluxQL.

Modules: ``lexer`` (tokens with positions), ``ast`` (nodes, QueryError, NotImplementedFeature),
``parser`` (Pratt parser), ``options`` (QueryOptions), ``functions`` and ``geo`` (built-in functions),
``evaluate`` (OData semantics), ``influxql`` (split and translation of Observation filters).
"""

from api.sta.query.ast import (
    Binary,
    Call,
    Literal,
    Node,
    NotImplementedFeature,
    OrderItem,
    Property,
    QueryError,
    Unary,
)
from api.sta.query.evaluate import Resolver, evaluate, matches
from api.sta.query.influxql import (
    OBSERVATION_PROPERTIES,
    influx_ident,
    influx_string,
    split_observation_filter,
    to_influxql,
)
from api.sta.query.options import ExpandItem, QueryOptions, parse_options
from api.sta.query.parser import parse_filter, parse_orderby

__all__ = [
    "OBSERVATION_PROPERTIES",
    "Binary",
    "Call",
    "ExpandItem",
    "Literal",
    "Node",
    "NotImplementedFeature",
    "OrderItem",
    "Property",
    "QueryError",
    "QueryOptions",
    "Resolver",
    "Unary",
    "evaluate",
    "influx_ident",
    "influx_string",
    "matches",
    "parse_filter",
    "parse_options",
    "parse_orderby",
    "split_observation_filter",
    "to_influxql",
]
