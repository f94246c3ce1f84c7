"""The open view of all SensorThings entities: registry-derived, API-created and aggregate ones, public only.

Built once and then only read: every request looks entities up in dicts by id and follows
precomputed link lists, so nothing is rescanned per request (at city scale there are ~500,000
Datastreams). Non-public entities never enter the graph, and links to them are dropped while it is
built, so no route, option or navigation can reach them.

Two layers: a base graph of the registry (and the aggregates derived from it), built when the
registry changes, and a small graph of the API-created entities on top of it (``base=``), built
whenever the metadata store changes. An operator's write therefore costs a rebuild of what
operators made, not of the city's 100,000 devices.

Links are made whole in both directions here rather than trusted to be: an API Datastream on a
registry Thing names the Thing, but the registry Thing cannot name the Datastream; the upper layer
keeps such additions to base entities' links.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from api.sta.model import NAVIGATION, Entity, EntitySet

E = EntitySet

_PAIRS = (
    ((E.THINGS, "Locations"), (E.LOCATIONS, "Things")),
    ((E.THINGS, "HistoricalLocations"), (E.HISTORICAL_LOCATIONS, "Thing")),
    ((E.THINGS, "Datastreams"), (E.DATASTREAMS, "Thing")),
    ((E.LOCATIONS, "HistoricalLocations"), (E.HISTORICAL_LOCATIONS, "Locations")),
    ((E.DATASTREAMS, "Sensor"), (E.SENSORS, "Datastreams")),
    ((E.DATASTREAMS, "ObservedProperty"), (E.OBSERVED_PROPERTIES, "Datastreams")),
)
# (set, navigation) -> (target set, the target's navigation back)
INVERSE: dict[tuple[EntitySet, str], tuple[EntitySet, str]] = {**dict(_PAIRS), **{b: a for a, b in _PAIRS}}

Key = tuple[EntitySet, str]
Index = dict[str, list[Entity]]


def _is_measured(ds: Entity) -> bool:
    # /Observations lists what was measured: aggregate Observations are derived from those (counting
    # them too would count every reading three times) and are read through their own Datastream.
    return "aggregate" not in ds.extra


class EntityGraph:
    """Public entities by set and id, their links, and which Datastreams observe which FeatureOfInterest."""

    def __init__(self, entities: Iterable[Entity], base: EntityGraph | None = None) -> None:
        self._base = base
        own: dict[EntitySet, dict[str, Entity]] = {s: {} for s in EntitySet}
        for entity in entities:
            if entity.public and entity.set is not E.OBSERVATIONS and self._in_base(entity.set, entity.id) is None:
                own[entity.set].setdefault(entity.id, entity)
        self._own = own
        # For own entities: all their links. For base entities: what this layer adds to them.
        self._links: dict[Key, dict[str, tuple[str, ...]]] = {}
        missing: dict[Key, dict[str, list[str]]] = {}  # reverse links the target does not list itself
        for entity_set, members in own.items():
            for entity in members.values():
                mine: dict[str, tuple[str, ...]] = {}
                for nav, value in entity.links.items():
                    pair = INVERSE.get((entity_set, nav))
                    if pair is None:
                        continue  # Observations and FeatureOfInterest links are not entity links
                    target_set, back = pair
                    ids = (value,) if isinstance(value, str) else (value or ())
                    kept = tuple(t for t in ids if self.get(target_set, t) is not None)
                    if kept:
                        mine[nav] = kept
                    for t in kept:
                        target = self.get(target_set, t)
                        listed = target.links.get(back) if target is not None else None
                        if listed != entity.id and (not isinstance(listed, tuple) or entity.id not in listed):
                            missing.setdefault((target_set, t), {}).setdefault(back, []).append(entity.id)
                if mine:
                    self._links[(entity_set, entity.id)] = mine
        for key, navs in missing.items():
            have = self._links.setdefault(key, {})
            for nav, extra in navs.items():
                before = have.get(nav, ())
                seen = set(before)
                have[nav] = (*before, *(i for i in dict.fromkeys(extra) if i not in seen))
        lists = {s: list(m.values()) for s, m in own.items()}
        measured = [ds for ds in lists[E.DATASTREAMS] if _is_measured(ds)]
        foi_streams: dict[str, list[Entity]] = {}
        for ds in lists[E.DATASTREAMS]:
            foi = ds.extra.get("feature_of_interest")
            if isinstance(foi, str) and self.get(E.FEATURES_OF_INTEREST, foi) is not None:
                foi_streams.setdefault(foi, []).append(ds)
        self._own_lists = lists
        if base is None:
            self._lists, self._measured, self._foi_streams = lists, measured, foi_streams
        else:
            self._lists = {s: [*base.entities(s), *lists[s]] if lists[s] else base.entities(s) for s in EntitySet}
            self._measured = [*base.measured_datastreams(), *measured] if measured else base.measured_datastreams()
            self._foi_streams = dict(base._foi_streams)
            for foi, streams in foi_streams.items():
                self._foi_streams[foi] = [*self._foi_streams.get(foi, []), *streams]
        self._indexes: dict[tuple[EntitySet, tuple[str, ...]], Index] = {}

    def _in_base(self, entity_set: EntitySet, ident: str) -> Entity | None:
        return self._base.get(entity_set, ident) if self._base is not None else None

    def entities(self, entity_set: EntitySet) -> list[Entity]:
        """All public entities of a set, in a stable order (do not modify the list)."""
        return self._lists[entity_set]

    def measured_datastreams(self) -> list[Entity]:
        """The Datastreams whose Observations were measured (all but the aggregates), for /Observations."""
        return self._measured

    def get(self, entity_set: EntitySet, ident: str) -> Entity | None:
        """A public entity, or None (unknown and non-public are the same to callers)."""
        found = self._own[entity_set].get(ident)
        return found if found is not None else self._in_base(entity_set, ident)

    def link_ids(self, entity: Entity, nav: str) -> tuple[str, ...]:
        """The ids a navigation property leads to (public targets only)."""
        mine = self._links.get((entity.set, entity.id), {}).get(nav, ())
        if self._base is None or self._own[entity.set].get(entity.id) is entity:
            return mine
        below = self._base.link_ids(entity, nav)
        return (*below, *mine) if mine else below

    def many(self, entity: Entity, nav: str) -> list[Entity]:
        """The entities of a to-many navigation property (not Observations)."""
        target = NAVIGATION[entity.set][nav].target
        return [e for e in (self.get(target, i) for i in self.link_ids(entity, nav)) if e is not None]

    def one(self, entity: Entity, nav: str) -> Entity | None:
        """The entity of a to-one navigation property (not FeatureOfInterest of an Observation)."""
        ids = self.link_ids(entity, nav)
        return self.get(NAVIGATION[entity.set][nav].target, ids[0]) if ids else None

    def feature_of_interest(self, datastream: Entity) -> Entity | None:
        """The FeatureOfInterest of a Datastream's Observations."""
        foi = datastream.extra.get("feature_of_interest")
        return self.get(E.FEATURES_OF_INTEREST, foi) if isinstance(foi, str) else None

    def datastreams_observing(self, foi: Entity) -> list[Entity]:
        """The Datastreams whose Observations have this FeatureOfInterest."""
        return self._foi_streams.get(foi.id, [])

    def index(self, entity_set: EntitySet, path: tuple[str, ...],
              value_of: Callable[[EntityGraph, Entity], object]) -> Index:
        """Entities of a set by the string value of a path, in graph order; made on first use, then kept
        (the graph never changes), so ``properties/wijk eq '...'`` costs what the answer holds."""
        key = (entity_set, path)
        found = self._indexes.get(key)
        if found is not None:
            return found
        mine: Index = {}
        for entity in self._own_lists[entity_set]:
            value = value_of(self, entity)  # each layer reads its entities through itself
            if isinstance(value, str):
                mine.setdefault(value, []).append(entity)
        if self._base is not None:
            below = self._base.index(entity_set, path, value_of)
            if mine:
                merged = dict(below)
                for value, entities in mine.items():
                    merged[value] = [*below.get(value, []), *entities]
                mine = merged
            else:
                mine = below
        self._indexes[key] = mine  # two threads may both build it: the same content either way
        return mine

    def size(self) -> int:
        """How many public entities there are."""
        below = self._base.size() if self._base is not None else 0
        return below + sum(len(m) for m in self._own.values())
