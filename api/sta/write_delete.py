"""DELETE of API-created entities with the integrity rules of SensorThings (OGC 18-088, 10.4).

What cannot exist without the deleted entity goes with it, as the reference server does:

- a Thing takes its Datastreams (and their Observations) and its HistoricalLocations;
- a Location takes the HistoricalLocations that named only it, and leaves its Things without it;
- a Sensor or an ObservedProperty takes the Datastreams that use it;
- a Datastream takes its Observations;
- a FeatureOfInterest takes the Observations of it (here: every Observation of the Datastreams
  whose FeatureOfInterest it is, since a Datastream's Observations share one).

The metadata changes and the InfluxDB deletes happen in one store transaction (the caller deletes
the Observations before it commits), so a failing InfluxDB leaves everything as it was.
"""

from __future__ import annotations

from api.sta.metadata_store import Stored
from api.sta.model import EntitySet
from api.sta.writes import FOI_OF_LOCATION, WriteContext

E = EntitySet


def delete(ctx: WriteContext, stored: Stored) -> list[str]:
    """Delete an API entity and what depends on it; returns the Datastreams whose Observations must go."""
    dropped: list[str] = []
    _delete(ctx, stored, dropped)
    return list(dict.fromkeys(dropped))


def _dependants(ctx: WriteContext, nav: str, ident: str, entity_set: EntitySet) -> list[Stored]:
    out = []
    for src in ctx.txn.sources(nav, ident):
        found = ctx.txn.get(src)
        if found is not None and found.set is entity_set:
            out.append(found)
    return out


def _delete(ctx: WriteContext, stored: Stored, dropped: list[str]) -> None:
    ident = stored.id
    if stored.set is E.THINGS:
        for child in (*_dependants(ctx, "Thing", ident, E.DATASTREAMS),
                      *_dependants(ctx, "Thing", ident, E.HISTORICAL_LOCATIONS)):
            _delete(ctx, child, dropped)
    elif stored.set is E.LOCATIONS:
        for hist in _dependants(ctx, "Locations", ident, E.HISTORICAL_LOCATIONS):
            if hist.links.get("Locations", ()) == (ident,):
                _delete(ctx, hist, dropped)
        ctx.txn.unlink_target("Locations", ident)
        ctx.txn.unlink_target(FOI_OF_LOCATION, ident)
    elif stored.set is E.SENSORS:
        for stream in _dependants(ctx, "Sensor", ident, E.DATASTREAMS):
            _delete(ctx, stream, dropped)
    elif stored.set is E.OBSERVED_PROPERTIES:
        for stream in _dependants(ctx, "ObservedProperty", ident, E.DATASTREAMS):
            _delete(ctx, stream, dropped)
    elif stored.set is E.DATASTREAMS:
        dropped.append(ident)
    elif stored.set is E.FEATURES_OF_INTEREST:
        for stream in _dependants(ctx, "FeatureOfInterest", ident, E.DATASTREAMS):
            dropped.append(stream.id)
            ctx.txn.set_links(stream.id, "FeatureOfInterest", ())
    ctx.txn.delete(ident)
