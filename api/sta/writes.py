"""Create (with deep insert and links by ``@iot.id``) and update of SensorThings entities (OGC 18-088, 10.2-10.3).

A body is walked once inside one metadata-store transaction: each nested object with an ``@iot.id``
links an existing entity (its other members are ignored, as clients such as frost_sta_client send
whole linked objects), each without one is created (deep insert). Any error rolls the whole
request back, so a failed deep insert leaves nothing behind (req/create-update-delete/deep-insert-status-code).

How API entities relate to the registry: the registry is the truth for field devices, so what it
implies is read-only here (409). New entities may point at registry ones where that changes
nothing the registry says: a Datastream's Thing, Sensor and ObservedProperty, a Thing's or
HistoricalLocation's Locations, an Observation's Datastream and FeatureOfInterest. Giving a
registry Thing another Location or HistoricalLocation, or re-linking a registry Datastream, is refused.

Service-made entities (18-088, 10.2.1): a Thing whose Locations change gets a HistoricalLocation
(time = now, the new Locations); an Observation without a FeatureOfInterest gets the one made from
its Thing's Location (made once per Location and reused). All Observations of one API Datastream
have one FeatureOfInterest, since InfluxDB keeps one series per Datastream (another one: 501).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from api.sta.metadata_store import OWNED, Stored, Transaction
from api.sta.model import NAVIGATION, Entity, EntitySet, Source, quote_id
from api.sta.observation_writer import ObservationWrite, api_observation, observation_time, registry_observation
from api.sta.registry_entities import registry_entities
from api.sta.write_validation import SINGULAR, WriteError, bad, check_properties, iso, short, split_body
from core.registry import Registry
from ingest.series_table import SeriesTable

E = EntitySet
# Owned relations (owning set, navigation) that may name a registry entity.
REGISTRY_LINKS = frozenset({
    (E.DATASTREAMS, "Thing"), (E.DATASTREAMS, "Sensor"), (E.DATASTREAMS, "ObservedProperty"),
    (E.THINGS, "Locations"), (E.HISTORICAL_LOCATIONS, "Locations"),
})
# A navigation and the navigation back from its target.
BACK: dict[tuple[EntitySet, str], str] = {
    (E.THINGS, "Locations"): "Things", (E.LOCATIONS, "Things"): "Locations",
    (E.THINGS, "HistoricalLocations"): "Thing", (E.HISTORICAL_LOCATIONS, "Thing"): "HistoricalLocations",
    (E.THINGS, "Datastreams"): "Thing", (E.DATASTREAMS, "Thing"): "Datastreams",
    (E.LOCATIONS, "HistoricalLocations"): "Locations", (E.HISTORICAL_LOCATIONS, "Locations"): "HistoricalLocations",
    (E.DATASTREAMS, "Sensor"): "Datastreams", (E.SENSORS, "Datastreams"): "Sensor",
    (E.DATASTREAMS, "ObservedProperty"): "Datastreams", (E.OBSERVED_PROPERTIES, "Datastreams"): "ObservedProperty",
    (E.DATASTREAMS, "Observations"): "Datastream", (E.FEATURES_OF_INTEREST, "Observations"): "FeatureOfInterest",
}
MANDATORY_LINKS: dict[EntitySet, tuple[str, ...]] = {
    E.DATASTREAMS: ("Thing", "Sensor", "ObservedProperty"),
    E.HISTORICAL_LOCATIONS: ("Thing", "Locations"),
}
MAX_ENTITIES = 10_000  # entities one deep insert may create
MAX_DEPTH = 16  # nesting of a deep insert (Thing/Locations/HistoricalLocations/Thing/... could go on for ever)
FOI_OF_LOCATION = "Location"  # internal owned link: the FeatureOfInterest made from a Location


class RegistryIndex:
    """The registry's entities by set and id (public or not), and the ingest's series table."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.table = SeriesTable(registry)
        self._by_set: dict[EntitySet, dict[str, Entity]] = {s: {} for s in EntitySet}
        for entity in registry_entities(registry, ""):
            self._by_set[entity.set][entity.id] = entity
        self._all = {ident for members in self._by_set.values() for ident in members}

    def get(self, entity_set: EntitySet, ident: str) -> Entity | None:
        """A registry entity, or None."""
        return self._by_set[entity_set].get(ident)

    def taken(self, ident: str) -> bool:
        """True if any registry entity has this id (the store must not hand it out)."""
        return ident in self._all


class IndexCache:
    """The index of the current registry, rebuilt when the registry object changes (a reload)."""

    def __init__(self) -> None:
        self._index: RegistryIndex | None = None

    def get(self, registry: Registry) -> RegistryIndex:
        """The index for registry."""
        index = self._index
        if index is None or index.registry is not registry:
            index = self._index = RegistryIndex(registry)
        return index


@dataclass(slots=True)
class PendingObservation:
    """An Observation of the body, written once every entity of the request exists."""

    datastream: str
    props: dict[str, Any]
    foi: str | None
    where: str
    write: ObservationWrite | None = None


@dataclass(slots=True)
class WriteContext:
    """The state of one write request."""

    txn: Transaction
    index: RegistryIndex
    now_us: int = field(default_factory=lambda: int(time.time() * 1_000_000))
    pending: list[PendingObservation] = field(default_factory=list)
    moved: dict[str, None] = field(default_factory=dict)  # API Things whose Locations changed
    created: int = 0
    depth: int = 0

    def api(self, entity_set: EntitySet, ident: str) -> Stored | None:
        """An API entity of the set, or None."""
        stored = self.txn.get(ident)
        return stored if stored is not None and stored.set is entity_set else None

    def exists(self, entity_set: EntitySet, ident: str) -> Source | None:
        """Where an entity of the set with this id is, or None."""
        if self.api(entity_set, ident) is not None:
            return Source.API
        return Source.REGISTRY if self.index.get(entity_set, ident) is not None else None


def registry_refusal(entity_set: EntitySet, ident: str, what: str = "changed") -> WriteError:
    """The 409 for registry-derived entities: the registry is the source of truth for field devices."""
    return WriteError(409, f"{entity_set}({quote_id(ident)[:70]}) is managed by the registry and cannot be "
                           f"{what} through the API: field devices are changed in the registry file")


def _ref_id(item: Any, where: str) -> str | None:
    if not isinstance(item, dict) or "@iot.id" not in item:
        return None
    ident = item["@iot.id"]
    if isinstance(ident, bool) or not isinstance(ident, str | int):
        raise bad(f"{where}.@iot.id", f"must be a string, got {short(ident)}")
    return str(ident)


def _items(entity_set: EntitySet, nav: str, value: Any, where: str) -> list[Any]:
    if NAVIGATION[entity_set][nav].many:
        if not isinstance(value, list):
            raise bad(where, f"must be a JSON array of {nav}, got {short(value)}")
        return value
    if not isinstance(value, dict):
        raise bad(where, f"must be a JSON object (a {SINGULAR[NAVIGATION[entity_set][nav].target]}), "
                         f"got {short(value)}")
    return [value]


def _check_target(ctx: WriteContext, owner: EntitySet, nav: str, target: str, where: str) -> None:
    target_set = NAVIGATION[owner][nav].target
    source = ctx.exists(target_set, target)
    if source is None:
        raise bad(where, f"no {target_set}({quote_id(target)[:70]})")
    if source is Source.REGISTRY and (owner, nav) not in REGISTRY_LINKS:
        raise registry_refusal(target_set, target, "linked this way")


def link_owned(ctx: WriteContext, owner: EntitySet, owner_id: str, nav: str, target: str, *, where: str,
               replace: bool) -> None:
    """Make owner.nav name target (replace: instead of what it named; to-one navigations always replace)."""
    _check_target(ctx, owner, nav, target, where)
    stored = ctx.txn.get(owner_id)
    before = stored.links.get(nav, ()) if stored else ()
    many = NAVIGATION[owner][nav].many
    after = (target,) if replace or not many else (*[t for t in before if t != target], target)
    _set_owned(ctx, owner, owner_id, nav, before=before, after=after)


def _set_owned(ctx: WriteContext, owner: EntitySet, owner_id: str, nav: str, *, before: tuple[str, ...],
               after: tuple[str, ...]) -> None:
    if after != before:
        ctx.txn.set_links(owner_id, nav, after)
        if owner is E.THINGS and nav == "Locations":
            ctx.moved[owner_id] = None


def link(ctx: WriteContext, entity_set: EntitySet, ident: str, nav: str, target: str, *, where: str) -> None:
    """Link entity.nav to an existing target, from whichever side owns the relation."""
    if (entity_set, nav) in OWNED:
        link_owned(ctx, entity_set, ident, nav, target, where=where, replace=False)
        return
    target_set = NAVIGATION[entity_set][nav].target
    if ctx.api(target_set, target) is None:
        if ctx.index.get(target_set, target) is not None:
            raise registry_refusal(target_set, target, "linked this way")
        raise bad(where, f"no {target_set}({quote_id(target)[:70]})")
    back = BACK[(entity_set, nav)]
    # A Location given to a Thing from the Location's side becomes the Thing's current Location.
    replace = entity_set is E.LOCATIONS and nav == "Things"
    link_owned(ctx, target_set, target, back, ident, where=where, replace=replace)


def create(ctx: WriteContext, entity_set: EntitySet, body: Any, where: str,
           parent: tuple[str, str] | None = None) -> str | PendingObservation:
    """Create an entity (and what it nests); parent = (navigation of the new entity, id) it is nested under."""
    if entity_set is E.OBSERVATIONS:
        _count(ctx, entity_set, where)
        return _create_observation(ctx, body, where, parent)
    return create_entity(ctx, entity_set, body, where, parent)


def _count(ctx: WriteContext, entity_set: EntitySet, where: str) -> None:
    ctx.created += 1
    if ctx.created > MAX_ENTITIES:
        raise bad(where or SINGULAR[entity_set], f"a request may create at most {MAX_ENTITIES} entities")


def create_entity(ctx: WriteContext, entity_set: EntitySet, body: Any, where: str,
                  parent: tuple[str, str] | None = None) -> str:
    """Create an entity other than an Observation; returns its id."""
    _count(ctx, entity_set, where)
    if ctx.depth >= MAX_DEPTH:
        raise bad(where[:80] + "...", f"a deep insert may nest at most {MAX_DEPTH} levels")
    ctx.depth += 1
    try:
        return _create_entity(ctx, entity_set, body, where, parent)
    finally:
        ctx.depth -= 1


def _create_entity(ctx: WriteContext, entity_set: EntitySet, body: Any, where: str,
                   parent: tuple[str, str] | None) -> str:
    props, navs = split_body(entity_set, body, where)
    checked = {k: v for k, v in check_properties(entity_set, props, where, full=True).items() if v is not None}
    ident = ctx.txn.new_id()
    ctx.txn.insert(entity_set, ident, checked)
    if parent is not None:
        nav, parent_id = parent
        if nav in navs:
            raise bad(_at(where, nav), f"given, but the {SINGULAR[entity_set]} is nested in its {nav}")
        link(ctx, entity_set, ident, nav, parent_id, where=_at(where, nav))
    for nav, value in navs.items():
        path = _at(where, nav)
        target_set = NAVIGATION[entity_set][nav].target
        for i, item in enumerate(_items(entity_set, nav, value, path)):
            item_path = f"{path}[{i}]" if NAVIGATION[entity_set][nav].many else path
            ref = _ref_id(item, item_path)
            if ref is not None:
                if target_set is E.OBSERVATIONS:
                    raise WriteError(501, f"{item_path}: linking existing Observations is not supported")
                link(ctx, entity_set, ident, nav, ref, where=item_path)
            elif (entity_set, nav) in OWNED:
                child = create_entity(ctx, target_set, item, item_path)
                link_owned(ctx, entity_set, ident, nav, child, where=item_path, replace=False)
            else:
                create(ctx, target_set, item, item_path, (BACK[(entity_set, nav)], ident))
    stored = ctx.txn.get(ident)
    for nav in MANDATORY_LINKS.get(entity_set, ()):
        if stored is None or not stored.links.get(nav):
            raise bad(_at(where, nav), f"missing (a {SINGULAR[entity_set]} must have its {nav})")
    return ident


def _create_observation(ctx: WriteContext, body: Any, where: str,
                        parent: tuple[str, str] | None) -> PendingObservation:
    props, navs = split_body(E.OBSERVATIONS, body, where)
    given: dict[str, str | None] = {"Datastream": None, "FeatureOfInterest": None}
    if parent is not None:
        if parent[0] in navs:
            raise bad(_at(where, parent[0]), f"given, but the Observation is nested in its {parent[0]}")
        given[parent[0]] = parent[1]
    for nav, value in navs.items():
        path = _at(where, nav)
        item = _items(E.OBSERVATIONS, nav, value, path)[0]
        ref = _ref_id(item, path)
        target_set = NAVIGATION[E.OBSERVATIONS][nav].target
        if ref is None:
            ref = create_entity(ctx, target_set, item, path)
        elif ctx.exists(target_set, ref) is None:
            raise bad(path, f"no {target_set}({quote_id(ref)[:70]})")
        given[nav] = ref
    datastream = given["Datastream"]
    if datastream is None:
        raise bad(_at(where, "Datastream"), "missing (an Observation must have its Datastream)")
    pending = PendingObservation(datastream, props, given["FeatureOfInterest"], where)
    ctx.pending.append(pending)
    return pending


def finish(ctx: WriteContext) -> list[ObservationWrite]:
    """After a body is walked: the service-made HistoricalLocations and the Observations' points."""
    for thing in ctx.moved:
        stored = ctx.txn.get(thing)
        locations = stored.links.get("Locations", ()) if stored else ()
        if locations:
            hist = ctx.txn.new_id()
            ctx.txn.insert(E.HISTORICAL_LOCATIONS, hist, {"time": iso(ctx.now_us)})
            ctx.txn.set_links(hist, "Thing", (thing,))
            ctx.txn.set_links(hist, "Locations", locations)
    ctx.moved.clear()
    writes = []
    for pending in ctx.pending:
        pending.write = _observation_write(ctx, pending)
        writes.append(pending.write)
    return writes


def _observation_write(ctx: WriteContext, pending: PendingObservation) -> ObservationWrite:
    when = observation_time(pending.props, pending.where, ctx.now_us)
    result = pending.props["result"]
    stream = ctx.api(E.DATASTREAMS, pending.datastream)
    if stream is None:
        entity = ctx.index.get(E.DATASTREAMS, pending.datastream)
        if entity is None:
            raise bad(_at(pending.where, "Datastream"), f"no Datastreams({quote_id(pending.datastream)[:70]})")
        foi = entity.extra["feature_of_interest"]
        if pending.foi is not None and pending.foi != foi:
            raise bad(_at(pending.where, "FeatureOfInterest"),
                      f"the Observations of this registry Datastream are of FeaturesOfInterest({quote_id(foi)})")
        return registry_observation(ctx.index.table, entity, when, result, where=pending.where,
                                    now=ctx.now_us / 1_000_000)
    current = stream.links.get("FeatureOfInterest", ())
    foi = pending.foi or (current[0] if current else _derived_foi(ctx, stream, pending.where))
    if current and current[0] != foi:
        raise WriteError(501, f"{_at(pending.where, 'FeatureOfInterest')}: all Observations of a Datastream "
                              f"have one FeatureOfInterest here (this one's is {quote_id(current[0])})")
    if not current:
        ctx.txn.set_links(stream.id, "FeatureOfInterest", (foi,))
    ctx.txn.set_result_time(stream.id, when, pending.props.get("resultTime") is not None)
    return api_observation(stream.id, str(stream.props["observationType"]), when, result, pending.where)


def _derived_foi(ctx: WriteContext, stream: Stored, where: str) -> str:
    """The FeatureOfInterest made from the Location of the Datastream's Thing (18-088, 10.2.1)."""
    thing = stream.links.get("Thing", ("",))[0]
    if ctx.index.get(E.THINGS, thing) is not None:
        return thing  # a registry Thing's FeatureOfInterest has its id
    owner = ctx.txn.get(thing)
    locations = owner.links.get("Locations", ()) if owner is not None else ()
    if not locations:
        raise bad(_at(where, "FeatureOfInterest"), "missing, and the Datastream's Thing has no Location to make "
                                                   "one from")
    location = locations[0]
    if ctx.index.get(E.LOCATIONS, location) is not None:
        return location  # the registry's FeatureOfInterest at the device's Location
    for made in ctx.txn.sources(FOI_OF_LOCATION, location):
        if ctx.api(E.FEATURES_OF_INTEREST, made) is not None:
            return made
    loc = ctx.txn.get(location)
    props = loc.props if loc else {}
    foi = ctx.txn.new_id()
    ctx.txn.insert(E.FEATURES_OF_INTEREST, foi, {
        "name": props.get("name", location), "description": props.get("description", ""),
        "encodingType": props.get("encodingType", "application/geo+json"), "feature": props.get("location")})
    ctx.txn.set_links(foi, FOI_OF_LOCATION, (location,))
    return foi


def update(ctx: WriteContext, stored: Stored, body: Any, *, full: bool) -> None:
    """PATCH (full=False: the given properties change) or PUT (full: the body replaces all properties).

    Navigation properties may link existing entities by @iot.id; creating entities is for POST.
    """
    # An @iot.id in the body is ignored (18-088, 10.3.1): the URL names the entity, ids never change.
    props, navs = split_body(stored.set, body, "")
    uom = props.get("unitOfMeasurement")
    if not full and isinstance(uom, dict) and isinstance(stored.props.get("unitOfMeasurement"), dict):
        # A complex property's members that a PATCH leaves out stay as they were (18-088, 10.3.1).
        props["unitOfMeasurement"] = {**stored.props["unitOfMeasurement"], **uom}
    checked = check_properties(stored.set, props, "", full=full)
    merged = checked if full else {**stored.props, **checked}
    merged = {k: v for k, v in merged.items() if v is not None}
    if stored.set is E.DATASTREAMS and merged.get("observationType") != stored.props.get("observationType"):
        raise bad("observationType", "cannot change: the Datastream's Observations are stored by their type")
    ctx.txn.update(stored.id, merged)
    for nav, value in navs.items():
        target_set = NAVIGATION[stored.set][nav].target
        if target_set is E.OBSERVATIONS:
            raise bad(nav, "Observations are created with POST, not linked by an update")
        items = _items(stored.set, nav, value, nav)
        refs = []
        for i, item in enumerate(items):
            path = f"{nav}[{i}]" if NAVIGATION[stored.set][nav].many else nav
            ref = _ref_id(item, path)
            if ref is None:
                raise bad(path, "an update links existing entities by @iot.id; create new ones with POST")
            refs.append(ref)
        if (stored.set, nav) in OWNED:
            if not refs and nav in MANDATORY_LINKS.get(stored.set, ()):
                raise bad(nav, f"a {SINGULAR[stored.set]} must have its {nav}")
            for i, ref in enumerate(refs):
                _check_target(ctx, stored.set, nav, ref, f"{nav}[{i}]" if len(items) > 1 else nav)
            _set_owned(ctx, stored.set, stored.id, nav, before=stored.links.get(nav, ()),
                       after=tuple(dict.fromkeys(refs)))
        else:
            for ref in refs:
                link(ctx, stored.set, stored.id, nav, ref, where=nav)


def _at(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name
