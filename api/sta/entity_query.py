"""``$filter`` and ``$orderby`` over graph entities (everything but Observations).

A property path is resolved on the entity at hand: ``name``, ``properties/wijk`` (into JSON
objects), ``@iot.id`` / ``id``, and through to-one navigation (``Thing/properties/wijk`` on a
Datastream). A path through a to-many navigation (``Datastreams/ObservedProperty/name`` on a
Thing) has "any" semantics, as FROST-Server gives it: the entity matches when the filter holds for
at least one of the related entities. One such to-many step per filter is supported; paths
into Observations from other entities are not (501), since they would need a time-series query per
candidate entity.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from api.sta.graph import EntityGraph
from api.sta.model import NAVIGATION, PROPERTIES, Entity, EntitySet
from api.sta.query.ast import (
    Binary,
    Literal,
    Node,
    NotImplementedFeature,
    OrderItem,
    Property,
    QueryError,
    properties,
    quote,
)
from api.sta.query.evaluate import evaluate, matches

Resolver = Callable[[tuple[str, ...]], Any]
_UNSET = object()


def _walk_json(value: Any, keys: Sequence[str]) -> Any:
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def observation_prefix(entity_set: EntitySet, path: tuple[str, ...]) -> tuple[str, ...] | None:
    """The path up to and including an ``Observations`` step (``Datastreams/Observations`` on a Thing), or None."""
    current = entity_set
    for i, part in enumerate(path):
        nav = NAVIGATION[current].get(part)
        if nav is None:
            return None
        if nav.target is EntitySet.OBSERVATIONS:
            return path[: i + 1]
        current = nav.target
    return None


def _many_prefix(entity_set: EntitySet, path: tuple[str, ...]) -> tuple[str, ...] | None:
    """The path up to its first to-many navigation step, or None; checks the path names real things."""
    current = entity_set
    for i, part in enumerate(path):
        nav = NAVIGATION[current].get(part)
        if nav is None:
            if part not in PROPERTIES[current] and part not in ("@iot.id", "id"):
                raise QueryError(f"{current} has no property {quote(part)}")
            return None
        if nav.target is EntitySet.OBSERVATIONS:
            raise NotImplementedFeature(f"$filter or $orderby on the Observations of {current}")
        if nav.many:
            return path[: i + 1]
        current = nav.target
    return None


class EntityResolver:
    """Resolves property paths on one entity, with optionally one to-many prefix bound to a related entity."""

    def __init__(self, graph: EntityGraph, entity: Entity, bound: tuple[tuple[str, ...], Entity | None] | None = None):
        self.graph = graph
        self.entity = entity
        self.bound = bound

    def __call__(self, path: tuple[str, ...]) -> Any:
        entity: Entity | None = self.entity
        start = 0
        if self.bound is not None and path[: len(self.bound[0])] == self.bound[0]:
            entity, start = self.bound[1], len(self.bound[0])
        return resolve_on(self.graph, entity, path[start:])


def resolve_on(graph: EntityGraph, entity: Entity | None, path: Sequence[str]) -> Any:
    """The value of a path on an entity, following to-one navigation; None where anything is missing."""
    i = 0
    while entity is not None and i < len(path):
        part = path[i]
        if part in ("@iot.id", "id") and i == len(path) - 1:
            return entity.id
        nav = NAVIGATION[entity.set].get(part)
        if nav is None:
            if part not in PROPERTIES[entity.set]:
                raise QueryError(f"{entity.set} has no property {quote(part)}")
            return _walk_json(entity.props.get(part), path[i + 1:])
        if nav.many or nav.target is EntitySet.OBSERVATIONS:
            raise NotImplementedFeature(f"more than one to-many navigation in one $filter ({part})")
        entity = graph.one(entity, part)
        i += 1
    return None  # a path that ends on a navigation property has no value of its own


def entity_filter(graph: EntityGraph, entity_set: EntitySet, node: Node) -> Callable[[Entity], bool]:
    """A predicate for ``node`` on entities of ``entity_set``."""
    prefixes = {p for p in (_many_prefix(entity_set, path) for path in properties(node)) if p is not None}
    if len(prefixes) > 1:
        raise NotImplementedFeature("$filter through more than one to-many navigation path")
    if not prefixes:
        return lambda e: matches(node, EntityResolver(graph, e))
    prefix = next(iter(prefixes))

    def related(entity: Entity) -> list[Entity]:
        current: list[Entity] = [entity]
        for part in prefix:
            nav = NAVIGATION[current[0].set][part] if current else None
            if nav is None:
                return []
            nxt: list[Entity] = []
            for e in current:
                if nav.many:
                    nxt.extend(graph.many(e, part))
                else:
                    one = graph.one(e, part)
                    if one is not None:
                        nxt.append(one)
            current = nxt
        return current

    def predicate(entity: Entity) -> bool:
        candidates: list[Entity | None] = [*related(entity)] or [None]
        return any(matches(node, EntityResolver(graph, entity, (prefix, c))) for c in candidates)

    return predicate


def _compare(a: Any, b: Any) -> int:
    """OData ordering: null sorts first; values of different types by type name, so sorting never fails."""
    if a is None or b is None:
        return (a is not None) - (b is not None)
    try:
        return int(a > b) - int(a < b)
    except TypeError:
        ta, tb = type(a).__name__, type(b).__name__
        return (ta > tb) - (ta < tb)


def sort_entities(graph: EntityGraph, entities: list[Entity], orderby: tuple[OrderItem, ...]) -> list[Entity]:
    """Entities sorted by $orderby (stable: ties keep the graph's order)."""
    if not orderby or not entities:
        return entities
    for item in orderby:
        for path in properties(item.expr):
            if _many_prefix(entities[0].set, path) is not None:
                raise NotImplementedFeature("$orderby through a to-many navigation")
    keyed = [([evaluate(item.expr, EntityResolver(graph, e)) for item in orderby], e) for e in entities]

    def cmp(x: tuple[list[Any], Entity], y: tuple[list[Any], Entity]) -> int:
        for item, a, b in zip(orderby, x[0], y[0], strict=True):
            c = _compare(a, b)
            if c:
                return -c if item.descending else c
        return 0

    keyed.sort(key=functools.cmp_to_key(cmp))
    return [e for _, e in keyed]


def _conjuncts(node: Node) -> list[Node]:
    if isinstance(node, Binary) and node.op == "and":
        return [*_conjuncts(node.left), *_conjuncts(node.right)]
    return [node]


def _indexed_candidates(graph: EntityGraph, entity_set: EntitySet, node: Node) -> list[Entity] | None:
    """The entities a top-level ``<path> eq '<string>'`` conjunct allows, from the graph's index; None
    when the filter has no such conjunct. A superset of the matches: the whole filter still decides."""
    for part in _conjuncts(node):
        if not isinstance(part, Binary) or part.op != "eq":
            continue
        sides = (part.left, part.right)
        prop = next((x for x in sides if isinstance(x, Property)), None)
        lit = next((x for x in sides if isinstance(x, Literal)), None)
        if prop is None or lit is None or not isinstance(lit.value, str) \
                or _many_prefix(entity_set, prop.path) is not None:
            continue
        path = prop.path
        if path in (("@iot.id",), ("id",)):
            one = graph.get(entity_set, lit.value)
            return [one] if one is not None else []

        def value_of(layer: EntityGraph, entity: Entity, path: tuple[str, ...] = path) -> object:
            return resolve_on(layer, entity, path)

        return graph.index(entity_set, path, value_of).get(lit.value, [])
    return None


# (set, path prefix through Observations, the conjuncts on those Observations with paths relative to an
# Observation) -> a test whether an entity has at least one such Observation (observation_filter.py).
ObservationHook = Callable[[EntitySet, tuple[str, ...], Node], Callable[[Entity], bool]]


def _and(parts: Sequence[Node]) -> Node | None:
    if not parts:
        return None
    out = parts[0]
    for part in parts[1:]:
        out = Binary("and", out, part)
    return out


def _split_observation_conjuncts(entity_set: EntitySet, node: Node) -> tuple[Node | None, tuple[str, ...] | None,
                                                                                Node | None]:
    """(the conjuncts on entities, the Observations prefix, the conjuncts through it)."""
    plain: list[Node] = []
    through: list[Node] = []
    prefix: tuple[str, ...] | None = None
    for part in _conjuncts(node):
        found = {observation_prefix(entity_set, path) for path in properties(part)}
        if found == {None} or not found:
            plain.append(part)
            continue
        if None in found or len(found) > 1 or (prefix is not None and found != {prefix}):
            raise NotImplementedFeature("$filter mixing Observations of related entities with other paths in one "
                                        "condition (join them with 'and')")
        prefix = next(iter(found))
        through.append(part)
    return _and(plain), prefix, _and(through)


def select_entities(graph: EntityGraph, entity_set: EntitySet, entities: Sequence[Entity],
                    node: Node | None, orderby: tuple[OrderItem, ...], *, whole_set: bool = False,
                    observations: ObservationHook | None = None) -> Sequence[Entity]:
    """The entities $filter keeps, in $orderby order. ``whole_set``: ``entities`` is all of the set in
    graph order, so an equality conjunct may answer from the graph's index instead of a scan.
    ``observations`` answers conjuncts through related Observations (``Datastreams/Observations/result
    gt 5``); they are tested last, on what the other conjuncts left."""
    if node is not None:
        plain, prefix, through = _split_observation_conjuncts(entity_set, node)
        if plain is not None:
            keep = entity_filter(graph, entity_set, plain)
            candidates = _indexed_candidates(graph, entity_set, plain) if whole_set else None
            entities = [e for e in (entities if candidates is None else candidates) if keep(e)]
        if prefix is not None and through is not None:
            if observations is None:
                raise NotImplementedFeature("$filter on related Observations here")
            has = observations(entity_set, prefix, through)
            entities = [e for e in entities if has(e)]
    return sort_entities(graph, list(entities), orderby) if orderby else entities
