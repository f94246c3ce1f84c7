"""Observations: which Datastreams a request reads, and the calls to the ObservationStore (Part D).

A ``$filter`` on Observations is split (Part A ``split_observation_filter``): the part on the
Observation's own properties goes to InfluxDB through the store; the part on ``Datastream/...`` or
``FeatureOfInterest/...`` chooses the Datastreams, evaluated once per Datastream entity here, so a
filter on related entities never costs a time-series query per Observation. Of the own part, what
InfluxQL cannot express is evaluated in Python over a bounded scan (observation_scan).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from api.sta.entity_query import resolve_on, select_entities
from api.sta.graph import EntityGraph
from api.sta.model import Entity, EntitySet, SeriesRef
from api.sta.observation_scan import Budget, Page, Row, Series, page_of, plan, scan_all, scan_page
from api.sta.query.ast import Binary, Call, Node, OrderItem, Property, QueryError, Unary, properties, quote
from api.sta.query.evaluate import matches
from api.sta.query.influxql import split_observation_filter

DEFAULT_TOP = 100
MAX_TOP = 10_000




class ObservationReader(Protocol):
    """The read side of api.sta.observations.ObservationStore."""

    def page(self, series: Series, where: Node | None, orderby: tuple[OrderItem, ...],  # noqa: PLR0917 - contract
             top: int, skip: int, token: str | None) -> Page: ...
    def count(self, series: Series, where: Node | None) -> int: ...
    def get(self, datastream: str, ref: SeriesRef, time_us: int) -> Row | None: ...
    def latest(self, series: Series) -> dict[str, Row]: ...


def page_size(top: int | None) -> int:
    """$top with the default and the cap applied (a larger $top is served as the cap, as FROST does)."""
    return DEFAULT_TOP if top is None else min(top, MAX_TOP)


def series_of(datastreams: Sequence[Entity]) -> list[tuple[str, SeriesRef]]:
    """The InfluxDB series of Datastreams (those without one have no Observations)."""
    return [(ds.id, ds.series) for ds in datastreams if ds.series is not None]


def split_filter(node: Node | None) -> tuple[Node | None, Node | None]:
    """(the Observation-own part, the Datastream / FeatureOfInterest part) of an Observations $filter."""
    if node is None:
        return None, None
    return split_observation_filter(node)


def rebase(node: Node, prefix: tuple[str, ...]) -> Node:
    """The expression with ``prefix`` taken off every property path that starts with it."""
    if isinstance(node, Property):
        return Property(node.path[len(prefix):]) if node.path[: len(prefix)] == prefix else node
    if isinstance(node, Call):
        return Call(node.name, tuple(rebase(a, prefix) for a in node.args))
    if isinstance(node, Unary):
        return Unary(node.op, rebase(node.operand, prefix))
    if isinstance(node, Binary):
        return Binary(node.op, rebase(node.left, prefix), rebase(node.right, prefix))
    return node


def choose_datastreams(graph: EntityGraph, datastreams: Sequence[Entity], nav: Node | None) -> list[Entity]:
    """The Datastreams for which the navigation part of a filter holds."""
    if nav is None:
        return list(datastreams)
    if all(path[0] == "Datastream" and len(path) > 1 for path in properties(nav)):
        # A filter on the Datastream alone is a filter on Datastreams: it can use the graph's indexes
        # (Datastream/Thing/properties/wijk eq '...' on /Observations must not scan every Datastream).
        everything = graph.entities(EntitySet.DATASTREAMS)
        chosen = select_entities(graph, EntitySet.DATASTREAMS, everything, rebase(nav, ("Datastream",)), (),
                                 whole_set=True)
        if datastreams is graph.measured_datastreams():
            return [ds for ds in chosen if "aggregate" not in ds.extra]
        if datastreams is everything:
            return list(chosen)
        wanted = {ds.id for ds in datastreams}
        return [ds for ds in chosen if ds.id in wanted]

    def resolver(ds: Entity) -> Any:
        def resolve(path: tuple[str, ...]) -> Any:
            if path[0] == "Datastream":
                return resolve_on(graph, ds, path[1:])
            if path[0] == "FeatureOfInterest":
                return resolve_on(graph, graph.feature_of_interest(ds), path[1:])
            raise QueryError(f"Observations have no property {quote('/'.join(path))}")
        return resolve

    return [ds for ds in datastreams if matches(nav, resolver(ds))]


@dataclass(frozen=True, slots=True)
class ObservationSlice:
    """One page of Observations with what the response needs besides them."""

    rows: Sequence[Row]
    next_token: str | None
    count: int | None


def read_observations(graph: EntityGraph, store: ObservationReader, datastreams: Sequence[Entity], *,
                      where: Node | None, orderby: tuple[OrderItem, ...], top: int, skip: int,
                      token: str | None, with_count: bool, budget: Budget | None = None) -> ObservationSlice:
    """A page (and the total, if asked) of the Observations of ``datastreams`` that match ``where``.

    Conditions InfluxQL cannot express are evaluated in Python over a bounded scan (observation_scan):
    such a page may hold fewer than ``top`` rows when a next token follows.
    """
    own, nav = split_filter(where)
    series = series_of(choose_datastreams(graph, datastreams, nav))
    if not series:
        return ObservationSlice([], None, 0 if with_count else None)
    plan_ = plan(own, series)
    skip = 0 if token else skip
    if plan_.residual is None:
        count = store.count(series, own) if with_count else None
        if top == 0:
            return ObservationSlice([], None, count)
        page = store.page(series, own, orderby, top, skip, token)
        return ObservationSlice(page.rows, page.next_token, count)
    if with_count:
        # Counting reads every match anyway: the first page is cut from the same rows.
        everything = scan_all(store, series, plan_, orderby if token is None else ())
        if top == 0:
            return ObservationSlice([], None, len(everything))
        if token is None:
            got = page_of(everything, orderby, top, skip)
            return ObservationSlice(got.rows, got.next_token, len(everything))
        got = scan_page(store, series, plan_, orderby, top, skip, token, budget)
        return ObservationSlice(got.rows, got.next_token, len(everything))
    if top == 0:
        return ObservationSlice([], None, None)
    got = scan_page(store, series, plan_, orderby, top, skip, token, budget)
    return ObservationSlice(got.rows, got.next_token, None)
