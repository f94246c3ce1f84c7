"""The SensorThings API part: its routers (reads here, writes from write_routes) and its state.

At start-up it opens the metadata store (API-created entities, SQLite), the ObservationStore
(Observations in InfluxDB) and the graph cache that joins registry, store and aggregate entities.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from fastapi import APIRouter, FastAPI

from api.settings import ApiSettings
from api.sta import read_routes, write_routes
from api.sta.aggregates import aggregate_datastreams, aggregate_things
from api.sta.graph_cache import GraphCache
from api.sta.metadata_store import open_store
from api.sta.model import Entity
from api.sta.observations import ObservationStore


def routers() -> list[APIRouter]:
    """Writes first: their POST/PATCH/DELETE routes must not be shadowed by the reads' catch-all path."""
    return [write_routes.router, read_routes.router]


def derived_entities(base: Sequence[Entity]) -> list[Entity]:
    """The aggregate Datastreams and the per-wijk Things that carry some of them."""
    return [*aggregate_datastreams(base), *aggregate_things(base)]


def open_state(app: FastAPI, settings: ApiSettings) -> Callable[[], None]:
    """Open the metadata store, the ObservationStore and the graph cache on app.state."""
    settings.state_path.mkdir(parents=True, exist_ok=True)
    store = open_store(settings, app.state.registry)
    app.state.sta_store = store
    observations = ObservationStore(app.state.influx, settings.state_path, app.state.influx_writer)
    app.state.sta_observations = observations
    app.state.sta_graph = GraphCache(app.state.registry, store, derived_entities)

    def close() -> None:
        observations.close()
        store.close()

    return close
