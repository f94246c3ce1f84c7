"""The metadata store: transactions, version, ids, links both ways, public flags, file mode."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from api.sta.metadata_store import MetadataStore, api_series
from api.sta.model import EntitySet, SeriesRef, Source

E = EntitySet
OM = "http://www.opengis.net/def/observationType/OGC-OM/2.0/"


@pytest.fixture
def store(tmp_path: Path) -> MetadataStore:
    public = {"dev-open": True, "dev-secret": False}
    s = MetadataStore(tmp_path / "state" / "sta.sqlite", public.get)
    yield s
    s.close()


def test_a_commit_bumps_the_version_and_a_failure_rolls_everything_back(store):
    assert store.version == 0
    with store.transaction() as txn:
        ident = txn.new_id()
        txn.insert(E.THINGS, ident, {"name": "a", "description": "b"})
    assert store.version == 1
    assert store.get(ident).props == {"name": "a", "description": "b"}
    with pytest.raises(RuntimeError), store.transaction() as txn:
        other = txn.new_id()
        txn.insert(E.THINGS, other, {"name": "c", "description": "d"})
        raise RuntimeError("InfluxDB failed")
    assert store.version == 1
    assert store.get(other) is None
    assert [e.id for e in store.entities()] == [ident]


def test_ids_skip_what_the_registry_uses_and_are_never_reused(store):
    with store.transaction(lambda i: i == "api-2") as txn:
        ids = [txn.new_id() for _ in range(3)]
    assert ids == ["api-1", "api-3", "api-4"]
    with store.transaction() as txn:
        assert txn.new_id() == "api-5"


def test_entities_have_links_both_ways_and_series(store):
    with store.transaction() as txn:
        for ident, entity_set in (("api-1", E.THINGS), ("api-2", E.LOCATIONS), ("api-3", E.SENSORS),
                                  ("api-4", E.DATASTREAMS), ("api-5", E.HISTORICAL_LOCATIONS)):
            txn.insert(entity_set, ident, {"observationType": OM + "OM_TruthObservation"}
                       if entity_set is E.DATASTREAMS else {})
        txn.set_links("api-1", "Locations", ("api-2",))
        txn.set_links("api-4", "Thing", ("api-1",))
        txn.set_links("api-4", "Sensor", ("api-3",))
        txn.set_links("api-4", "ObservedProperty", ("wind",))  # a registry ObservedProperty
        txn.set_links("api-5", "Thing", ("api-1",))
        txn.set_links("api-5", "Locations", ("api-2",))
    by_id = {e.id: e for e in store.entities()}
    assert all(e.source is Source.API for e in by_id.values())
    assert by_id["api-1"].links == {"Locations": ("api-2",), "HistoricalLocations": ("api-5",),
                                    "Datastreams": ("api-4",)}
    assert by_id["api-2"].links == {"Things": ("api-1",), "HistoricalLocations": ("api-5",)}
    assert by_id["api-3"].links == {"Datastreams": ("api-4",)}
    assert by_id["api-4"].links == {"Thing": "api-1", "Sensor": "api-3", "ObservedProperty": "wind"}
    assert by_id["api-4"].series == SeriesRef("sta_observation", "result_truth", "datastream", "api-4")
    assert by_id["api-4"].extra == {"feature_of_interest": None}
    assert by_id["api-5"].links == {"Thing": "api-1", "Locations": ("api-2",)}


def test_datastreams_on_classified_registry_things_are_not_public(store):
    with store.transaction() as txn:
        for ident, thing in (("api-1", "dev-open"), ("api-2", "dev-secret"), ("api-3", "unknown")):
            txn.insert(E.DATASTREAMS, ident, {"observationType": OM + "OM_Measurement"})
            txn.set_links(ident, "Thing", (thing,))
        txn.insert(E.HISTORICAL_LOCATIONS, "api-4", {"time": "2025-01-01T00:00:00Z"})
        txn.set_links("api-4", "Thing", ("dev-secret",))
    public = {e.id: e.public for e in store.entities()}
    assert public == {"api-1": True, "api-2": False, "api-3": True, "api-4": False}


def test_the_file_is_0600_in_wal_mode(store):
    with store.transaction() as txn:
        txn.insert(E.THINGS, txn.new_id(), {})
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    wal = store.path.with_name("sta.sqlite-wal")
    assert wal.exists() and stat.S_IMODE(wal.stat().st_mode) == 0o600


def test_a_second_store_on_the_same_file_sees_the_version(store):
    other = MetadataStore(store.path)
    try:
        with store.transaction() as txn:
            txn.insert(E.THINGS, txn.new_id(), {"name": "x"})
        assert other.version == store.version == 1
        assert [e.props for e in other.entities()] == [{"name": "x"}]
    finally:
        other.close()


def test_api_series_by_observation_type():
    assert api_series("api-1", OM + "OM_Measurement").field == "result"
    assert api_series("api-1", OM + "OM_CountObservation").field == "result_count"
    assert api_series("api-1", OM + "OM_CategoryObservation").field == "result_category"
