"""From a parsed resource path to what it addresses: one entity, one Observation, or a collection of either.

Everything is looked up in the public graph, so an entity that is not public answers exactly as
one that does not exist (404, same message): a client cannot learn that a classified device exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from api.sta.graph import EntityGraph
from api.sta.model import Entity, EntitySet, quote_id, split_observation_id
from api.sta.observation_query import ObservationReader
from api.sta.observation_scan import Row
from api.sta.resource_path import PathError, ResourcePath, short

E = EntitySet


@dataclass(frozen=True, slots=True)
class One:
    """A single graph entity."""

    entity: Entity


@dataclass(frozen=True, slots=True)
class OneObservation:
    """A single Observation and its Datastream."""

    datastream: Entity
    row: Row


@dataclass(frozen=True, slots=True)
class Many:
    """A collection of graph entities (before $filter and paging)."""

    set: EntitySet
    entities: Sequence[Entity]


@dataclass(frozen=True, slots=True)
class ManyObservations:
    """The Observations of some Datastreams."""

    datastreams: Sequence[Entity]


Target = One | OneObservation | Many | ManyObservations


def not_found(entity_set: EntitySet | str, ident: str | None = None) -> PathError:
    """The one 404 for unknown and non-public entities alike."""
    where = f"{entity_set}({quote_id(short(ident))})" if ident is not None else str(entity_set)
    return PathError(404, f"no such entity: {where}")


def _observation(graph: EntityGraph, store: ObservationReader, ident: str,
                 within: Sequence[Entity] | None) -> OneObservation:
    try:
        ds_id, time_us = split_observation_id(ident)
    except ValueError:
        raise not_found(E.OBSERVATIONS, ident) from None
    ds = graph.get(E.DATASTREAMS, ds_id)
    if ds is None or ds.series is None or (within is not None and all(d.id != ds_id for d in within)):
        raise not_found(E.OBSERVATIONS, ident)
    row = store.get(ds.id, ds.series, time_us)  # a point query: the id holds the series and the time
    if row is None:
        raise not_found(E.OBSERVATIONS, ident)
    return OneObservation(ds, row)


def resolve(graph: EntityGraph, store: ObservationReader, path: ResourcePath) -> Target:
    """What the path's entity steps address; PathError(404) when any step finds nothing."""
    first = path.steps[0]
    current: Target
    if first.set is E.OBSERVATIONS:
        streams = graph.measured_datastreams()
        current = ManyObservations(streams) if first.ident is None else _observation(graph, store, first.ident, None)
    elif first.ident is None:
        current = Many(first.set, graph.entities(first.set))
    else:
        entity = graph.get(first.set, first.ident)
        if entity is None:
            raise not_found(first.set, first.ident)
        current = One(entity)
    for step in path.steps[1:]:
        if step.nav is None:  # the parser gives every step after the first a navigation name
            raise PathError(400, "malformed path")
        if isinstance(current, OneObservation):
            target = current.datastream if step.nav == "Datastream" else graph.feature_of_interest(current.datastream)
            if target is None:
                raise not_found(step.set)
            current = One(target)
            continue
        if not isinstance(current, One):  # the parser refuses navigation from a collection
            raise PathError(400, "navigation from a collection")
        entity = current.entity
        if step.set is E.OBSERVATIONS:
            streams = [entity] if entity.set is E.DATASTREAMS else graph.datastreams_observing(entity)
            current = ManyObservations(streams) if step.ident is None \
                else _observation(graph, store, step.ident, streams)
        elif not step.many:
            one = graph.one(entity, step.nav)
            if one is None:
                raise not_found(step.set)
            current = One(one)
        elif step.ident is None:
            current = Many(step.set, graph.many(entity, step.nav))
        else:
            match = next((e for e in graph.many(entity, step.nav) if e.id == step.ident), None)
            if match is None:
                raise not_found(step.set, step.ident)
            current = One(match)
    return current
