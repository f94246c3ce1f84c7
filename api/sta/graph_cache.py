"""The current EntityGraph, rebuilt only when the registry object or the metadata store's version changes."""

from __future__ import annotations

import datetime as dt
import gc
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol

from api.sta.graph import EntityGraph
from api.sta.model import Entity, EntitySet
from api.sta.registry_entities import registry_entities
from core.registry import Registry, WatchedRegistry

log = logging.getLogger(__name__)

# Derives more entities (Part D's aggregate Datastreams and their Things) from the base ones.
Derive = Callable[[Sequence[Entity]], list[Entity]]


class EntitySource(Protocol):
    """What the graph needs of the metadata store (api.sta.metadata_store.MetadataStore)."""

    @property
    def version(self) -> int: ...

    def entities(self) -> list[Entity]: ...


class GraphCache:
    """Hands out the graph of the current registry and store; each rebuild happens once, under a lock.

    The registry layer (registry entities and the aggregates derived from them) is rebuilt only when
    the registry object changes; the metadata store's layer whenever its version does.
    """

    def __init__(self, registry: WatchedRegistry, store: EntitySource | None, derive: Derive | None = None) -> None:
        self._registry = registry
        self._store = store
        self._derive = derive
        self._lock = threading.Lock()
        self._base: tuple[Registry, EntityGraph] | None = None
        self._current: tuple[Registry, int, EntityGraph] | None = None

    def get(self) -> EntityGraph:
        """The graph for the registry and store as they are now."""
        registry = self._registry.get()
        version = self._store.version if self._store is not None else 0
        current = self._current
        # Identity, not equality: a reload makes a new Registry object; comparing content would cost a scan.
        if current is not None and current[0] is registry and current[1] == version:
            return current[2]
        with self._lock:
            current = self._current
            if current is not None and current[0] is registry and current[1] == version:
                return current[2]
            with _no_gc():
                base = self._base[1] if self._base is not None and self._base[0] is registry else None
                if base is None:
                    base = self._build_base(registry)
                    self._base = (registry, base)
                graph = EntityGraph(self._store.entities(), base) if self._store is not None else base
            self._current = (registry, version, graph)
            return graph

    def _build_base(self, registry: Registry) -> EntityGraph:
        try:
            mtime = self._registry.path.stat().st_mtime
        except OSError:
            mtime = 0.0
        time = dt.datetime.fromtimestamp(int(mtime), dt.UTC).isoformat().replace("+00:00", "Z")
        base = registry_entities(registry, time)
        if self._derive is not None:
            base.extend(self._derive([e for e in base if e.set in (EntitySet.DATASTREAMS, EntitySet.THINGS)]))
        graph = EntityGraph(base)
        log.info("SensorThings registry graph built: %d public entities", graph.size())
        return graph


@contextmanager
def _no_gc() -> Iterator[None]:
    """The cyclic collector off while a graph is built: building allocates millions of small objects
    (none of them in cycles), and the collections that triggers cost more than the build itself."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
