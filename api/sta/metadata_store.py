"""The SensorThings entities operators create through the API, in SQLite (``state_dir/sta.sqlite``, mode 0600, WAL).

The GeoJSON registry stays the source of truth for field devices: what it implies is never
written here, and the API refuses to change it (409). This store holds only what operators add
(Things without a registry device, their Locations, Sensors, ObservedProperties, Datastreams,
FeaturesOfInterest, HistoricalLocations); their Observations are in InfluxDB (``sta_observation``).

Each relation is stored once, from its owning side (``Things.Locations``, ``HistoricalLocations.Thing``
and ``.Locations``, ``Datastreams.Thing``/``.Sensor``/``.ObservedProperty``/``.FeatureOfInterest``);
``entities()`` fills the other side for links between API entities. A link may name a registry
entity (an API Datastream on a registry Thing): the graph adds the registry side of it.

Ids are ``api-<n>`` from a counter that never goes back, so a deleted entity's id is never
handed out again (a client holding an old selfLink gets 404, never someone else's entity).
``version`` is a counter in the file, bumped by every committed change, so that every process
serving the same file (uvicorn workers) sees the others' changes.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from api.settings import ApiSettings
from api.sta.model import API_MEASUREMENT, NAVIGATION, Entity, EntitySet, SeriesRef, Source
from core.kinds import Classification
from core.registry import WatchedRegistry

E = EntitySet
FILE_NAME = "sta.sqlite"
ID_PREFIX = "api-"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('version', 0), ('next_id', 1);
CREATE TABLE IF NOT EXISTS entity (
    id TEXT PRIMARY KEY,
    set_name TEXT NOT NULL,
    props TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS link (
    src TEXT NOT NULL REFERENCES entity (id) ON DELETE CASCADE,
    nav TEXT NOT NULL,
    dst TEXT NOT NULL,
    PRIMARY KEY (src, nav, dst)
);
CREATE INDEX IF NOT EXISTS link_dst ON link (dst, nav);
-- Observations of API Datastreams that were given a resultTime (18-088 8.2.7: one posted without it
-- has a null resultTime). InfluxDB keeps one time per point, and a given resultTime must equal the
-- phenomenonTime (observation_writer), so a row here is all it takes to answer resultTime.
CREATE TABLE IF NOT EXISTS result_time (
    datastream TEXT NOT NULL,
    time_us INTEGER NOT NULL,
    PRIMARY KEY (datastream, time_us)
) WITHOUT ROWID;
"""

# The owning side of each relation: (set, navigation) -> to-many?
OWNED: dict[tuple[EntitySet, str], bool] = {
    (E.THINGS, "Locations"): True,
    (E.HISTORICAL_LOCATIONS, "Thing"): False,
    (E.HISTORICAL_LOCATIONS, "Locations"): True,
    (E.DATASTREAMS, "Thing"): False,
    (E.DATASTREAMS, "Sensor"): False,
    (E.DATASTREAMS, "ObservedProperty"): False,
    (E.DATASTREAMS, "FeatureOfInterest"): False,  # the FeatureOfInterest of all its Observations
}
# The other side: (set of the target, its navigation) -> (owning set, owning navigation).
INVERSE_OF: dict[tuple[EntitySet, str], tuple[EntitySet, str]] = {
    (E.LOCATIONS, "Things"): (E.THINGS, "Locations"),
    (E.THINGS, "HistoricalLocations"): (E.HISTORICAL_LOCATIONS, "Thing"),
    (E.LOCATIONS, "HistoricalLocations"): (E.HISTORICAL_LOCATIONS, "Locations"),
    (E.THINGS, "Datastreams"): (E.DATASTREAMS, "Thing"),
    (E.SENSORS, "Datastreams"): (E.DATASTREAMS, "Sensor"),
    (E.OBSERVED_PROPERTIES, "Datastreams"): (E.DATASTREAMS, "ObservedProperty"),
}

# observationType -> the field of sta_observation its results are kept in. One field per value type:
# InfluxDB fixes a field's type per shard, and all API Datastreams share the measurement.
OM = "http://www.opengis.net/def/observationType/OGC-OM/2.0/"
RESULT_FIELDS: dict[str, str] = {
    OM + "OM_Measurement": "result",
    OM + "OM_Observation": "result",
    OM + "OM_CountObservation": "result_count",
    OM + "OM_TruthObservation": "result_truth",
    OM + "OM_CategoryObservation": "result_category",
}


def api_series(datastream: str, observation_type: str) -> SeriesRef:
    """Where an API Datastream's Observations are: sta_observation, tag datastream, the type's field."""
    return SeriesRef(API_MEASUREMENT, RESULT_FIELDS.get(observation_type, "result"), "datastream", datastream)


@dataclass(frozen=True, slots=True)
class Stored:
    """One stored entity: its set, properties and owned links (to-one: a 1-tuple or empty)."""

    set: EntitySet
    id: str
    props: dict[str, Any]
    links: dict[str, tuple[str, ...]]


class Transaction:
    """The writes of one request; all of them commit or none (the store's ``transaction()``)."""

    def __init__(self, db: sqlite3.Connection, taken: Callable[[str], bool]) -> None:
        self._db = db
        self._taken = taken

    def new_id(self) -> str:
        """A fresh id ``api-<n>`` (skipping any id the registry already uses)."""
        while True:
            n = int(self._db.execute("SELECT value FROM meta WHERE key = 'next_id'").fetchone()[0])
            self._db.execute("UPDATE meta SET value = ? WHERE key = 'next_id'", (n + 1,))
            ident = f"{ID_PREFIX}{n}"
            if not self._taken(ident):
                return ident

    def insert(self, entity_set: EntitySet, ident: str, props: dict[str, Any]) -> None:
        """Add an entity."""
        self._db.execute("INSERT INTO entity VALUES (?, ?, ?)", (ident, entity_set.value, _dumps(props)))

    def update(self, ident: str, props: dict[str, Any]) -> None:
        """Replace an entity's properties."""
        self._db.execute("UPDATE entity SET props = ? WHERE id = ?", (_dumps(props), ident))

    def set_links(self, src: str, nav: str, targets: tuple[str, ...]) -> None:
        """Replace the owned links src.nav with targets."""
        self._db.execute("DELETE FROM link WHERE src = ? AND nav = ?", (src, nav))
        self._db.executemany("INSERT OR IGNORE INTO link VALUES (?, ?, ?)", [(src, nav, t) for t in targets])

    def unlink_target(self, nav: str, dst: str) -> None:
        """Drop every owned link nav -> dst (the target is going away)."""
        self._db.execute("DELETE FROM link WHERE nav = ? AND dst = ?", (nav, dst))

    def delete(self, ident: str) -> None:
        """Remove an entity and the links it owns."""
        self._db.execute("DELETE FROM link WHERE src = ?", (ident,))
        self._db.execute("DELETE FROM entity WHERE id = ?", (ident,))

    def set_result_time(self, datastream: str, time_us: int, given: bool) -> None:
        """Record whether the Observation (datastream, time) was given a resultTime (else it is null)."""
        if given:
            self._db.execute("INSERT OR IGNORE INTO result_time VALUES (?, ?)", (datastream, time_us))
        else:
            self._db.execute("DELETE FROM result_time WHERE datastream = ? AND time_us = ?", (datastream, time_us))

    def get(self, ident: str) -> Stored | None:
        """An entity as this transaction sees it."""
        return _get(self._db, ident)

    def sources(self, nav: str, dst: str) -> list[str]:
        """The ids whose owned link nav names dst."""
        return [r[0] for r in self._db.execute("SELECT src FROM link WHERE nav = ? AND dst = ? ORDER BY src",
                                               (nav, dst))]


class MetadataStore:
    """The API-created entities; thread-safe (the API's worker threads share one connection)."""

    def __init__(self, path: Path, registry_public: Callable[[str], bool | None] | None = None) -> None:
        """registry_public(thing id): True/False for a registry Thing's public flag, None if it is not one."""
        self.path = path
        self._registry_public = registry_public or (lambda _ident: None)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Created 0600 before SQLite opens it; SQLite gives the -wal and -shm files the same mode.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        os.chmod(path, 0o600)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        # Reads (version on every request of the read routes, entities) use their own connection: under
        # WAL they see the last commit and never wait for a write in progress (which may be waiting
        # for InfluxDB).
        self._reader = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10.0)
        self._read_lock = threading.Lock()

    def close(self) -> None:
        """Close the database."""
        with self._lock, self._read_lock:
            self._db.close()
            self._reader.close()

    @property
    def version(self) -> int:
        """Bumped by every committed change (by any process using the file)."""
        with self._read_lock:
            return int(self._reader.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()[0])

    @contextmanager
    def transaction(self, taken: Callable[[str], bool] = lambda _ident: False) -> Iterator[Transaction]:
        """A write transaction (BEGIN IMMEDIATE): committed when the block ends, rolled back if it raises.

        Work that must succeed with it (writing or deleting Observations in InfluxDB) goes inside
        the block, so a failure there leaves the metadata as it was.
        """
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield Transaction(self._db, taken)
                self._db.execute("UPDATE meta SET value = value + 1 WHERE key = 'version'")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def result_time_given(self, datastream: str, time_us: int) -> bool:
        """Whether an Observation of an API Datastream was posted with a resultTime (False: it is null)."""
        with self._read_lock:
            return self._reader.execute("SELECT 1 FROM result_time WHERE datastream = ? AND time_us = ?",
                                        (datastream, time_us)).fetchone() is not None

    def get(self, ident: str) -> Stored | None:
        """One stored entity (as last committed)."""
        with self._read_lock:
            return _get(self._reader, ident)

    def entities(self) -> list[Entity]:
        """All API-created entities with links filled both ways, built afresh.

        Not cached here: the graph calls this only when the store's version or the registry
        changed, and the public flags follow the registry (a Datastream on a registry Thing is
        public only while that device is classified openbaar).
        """
        with self._read_lock:
            # One read transaction, so the rows and links are of the same commit.
            self._reader.execute("BEGIN")
            try:
                rows = self._reader.execute("SELECT id, set_name, props FROM entity ORDER BY rowid").fetchall()
                link_rows = self._reader.execute("SELECT src, nav, dst FROM link ORDER BY rowid").fetchall()
            finally:
                self._reader.execute("COMMIT")
        return _build(rows, link_rows, self._registry_public)


def _dumps(props: dict[str, Any]) -> str:
    return json.dumps(props, ensure_ascii=False, separators=(",", ":"))


def _get(db: sqlite3.Connection, ident: str) -> Stored | None:
    row = db.execute("SELECT set_name, props FROM entity WHERE id = ?", (ident,)).fetchone()
    if row is None:
        return None
    links: dict[str, list[str]] = {}
    for nav, dst in db.execute("SELECT nav, dst FROM link WHERE src = ? ORDER BY rowid", (ident,)):
        links.setdefault(nav, []).append(dst)
    return Stored(EntitySet(row[0]), ident, json.loads(row[1]), {k: tuple(v) for k, v in links.items()})


def _build(rows: list[tuple[str, str, str]], link_rows: list[tuple[str, str, str]],
           registry_public: Callable[[str], bool | None]) -> list[Entity]:
    sets = {ident: EntitySet(set_name) for ident, set_name, _ in rows}
    owned: dict[str, dict[str, list[str]]] = {}
    # (dst, owning set, owning nav) -> srcs: "Thing" is owned by Datastreams and HistoricalLocations alike
    reverse: dict[tuple[str, EntitySet, str], list[str]] = {}
    for src, nav, dst in link_rows:
        owned.setdefault(src, {}).setdefault(nav, []).append(dst)
        reverse.setdefault((dst, sets[src], nav), []).append(src)
    out: list[Entity] = []
    for ident, set_name, props_text in rows:
        entity_set = EntitySet(set_name)
        mine = owned.get(ident, {})
        links: dict[str, str | tuple[str, ...] | None] = {}
        for nav, navigation in NAVIGATION[entity_set].items():
            if navigation.target is E.OBSERVATIONS:
                continue  # Observations are in InfluxDB, found through the Datastream's series
            if (entity_set, nav) in OWNED:
                targets = tuple(mine.get(nav, ()))
            else:
                owner_set, owner_nav = INVERSE_OF[(entity_set, nav)]
                targets = tuple(reverse.get((ident, owner_set, owner_nav), ()))
            links[nav] = targets if navigation.many else (targets[0] if targets else None)
        entity = Entity(entity_set, ident, json.loads(props_text), links, source=Source.API)
        if entity_set is E.DATASTREAMS:
            foi = mine.get("FeatureOfInterest")
            entity.extra["feature_of_interest"] = foi[0] if foi else None
            entity.series = api_series(ident, str(entity.props.get("observationType", "")))
        if entity_set in (E.DATASTREAMS, E.HISTORICAL_LOCATIONS):
            # Nothing hangs off a Thing not classified openbaar in the open view, whoever created it.
            thing = mine.get("Thing", [None])[0]
            entity.public = _thing_public(thing, sets, registry_public)
        out.append(entity)
    return out


def _thing_public(thing: str | None, sets: dict[str, EntitySet],
                  registry_public: Callable[[str], bool | None]) -> bool:
    if thing is None or sets.get(thing) is E.THINGS:
        return True
    public = registry_public(thing)
    return public is not False


def open_store(settings: ApiSettings, registry: WatchedRegistry | None = None) -> MetadataStore:
    """The store at settings.state_path / sta.sqlite; registry (app.state.registry; else one is opened
    from settings.registry_path) tells which registry Things are public."""
    watched = registry if registry is not None else WatchedRegistry(settings.registry_path)

    def public(thing: str) -> bool | None:
        device = watched.get().devices.get(thing)
        return None if device is None else device.classification is Classification.OPENBAAR

    return MetadataStore(settings.state_path / FILE_NAME, public)
