"""Aggregate Datastreams: the entities, and their Observations computed by InfluxDB against a reference."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from api.sta.aggregates import (
    AGGREGATE_INTERVALS,
    AggregateRef,
    aggregate_datastreams,
    aggregate_things,
    wijk_thing_id,
)
from api.sta.model import EntitySet, SeriesRef
from api.sta.observations import ObservationStore
from api.sta.query.ast import NotImplementedFeature
from api.sta.query.parser import parse_filter, parse_orderby
from api.sta.registry_entities import registry_entities
from core import jsonfast
from core.registry import load
from smartcity.data import demo_registry_path

pytestmark = pytest.mark.integration

HOUR = 3_600_000_000
T0 = 1_700_000_000_000_000 - 1_700_000_000_000_000 % (24 * HOUR)  # a UTC midnight


@pytest.fixture
def entities(tmp_path):
    data = jsonfast.loads(demo_registry_path().read_bytes())
    for f in data["features"]:
        if f["properties"]["id"] == "vs-sl-102":
            f["properties"]["classification"] = "vertrouwelijk"
    path = tmp_path / "registry.geojson"
    path.write_bytes(jsonfast.dumps(data))
    return registry_entities(load(path), "2026-01-01T00:00:00Z")


def test_aggregates_per_public_numeric_datastream_and_per_wijk(entities):
    aggregates = aggregate_datastreams(entities)
    ids = {a.id for a in aggregates}
    assert "vs-sl-101.power.hourly" in ids and "vs-sl-101.power.daily" in ids
    assert not any(i.startswith("vs-sl-102.") for i in ids)  # classified: never aggregated
    assert not any("lamp_failure" in i or "presence" in i for i in ids)  # booleans are not aggregated
    by_id = {a.id: a for a in aggregates}
    light = next(e for e in entities if e.set is EntitySet.DATASTREAMS and e.id == "vs-sl-101.power")
    own = by_id["vs-sl-101.power.hourly"]
    assert own.links["Thing"] == light.links["Thing"]
    assert own.props["unitOfMeasurement"] == light.props["unitOfMeasurement"]
    assert own.props["observationType"].endswith("OM_ComplexObservation")
    assert isinstance(own.series, AggregateRef) and own.series.sources == ("vs-sl-101",)
    wijk = light.extra["wijk"]
    per_wijk = by_id[f"wijk.{wijk}.street_light.power.daily"]
    assert per_wijk.links["Thing"] == wijk_thing_id(wijk)
    assert isinstance(per_wijk.series, AggregateRef)
    assert "vs-sl-101" in per_wijk.series.sources and "vs-sl-102" not in per_wijk.series.sources
    assert per_wijk.series.interval == AGGREGATE_INTERVALS["daily"]
    things = {t.id: t for t in aggregate_things(entities)}
    assert per_wijk.id in things[wijk_thing_id(wijk)].links["Datastreams"]  # type: ignore[operator]
    assert all(t.public for t in things.values())


@pytest.fixture
def obs_store(influx, tmp_path: Path):
    store = ObservationStore(influx, tmp_path / "state")
    yield store
    store.close()


@pytest.fixture
def readings(influx):
    """Two lights' power over hours 0-2, a gap, and hours 500-501; a third light outside the aggregate."""
    points: dict[str, list[tuple[int, float]]] = {"a": [], "b": [], "z": []}
    lines = []
    for hour in (0, 1, 2, 500, 501):
        for i in range(6):
            t = T0 + hour * HOUR + i * 600_000_000
            for d, v in (("a", float(hour + i)), ("b", float(i) / 2), ("z", 1000.0)):
                if d == "b" and hour == 1:
                    continue
                points[d].append((t, v))
                lines.append(f"street_light,device={d} power={v!r} {t}")
    influx.write("\n".join(lines), precision="u")
    return points


def reference(points, devices, step):  # type: ignore[no-untyped-def]
    buckets: dict[int, list[float]] = {}
    for d in devices:
        for t, v in points[d]:
            buckets.setdefault(t - t % step, []).append(v)
    return [(start, {"mean": statistics.fmean(vs), "min": min(vs), "max": max(vs), "sum": sum(vs),
                     "count": len(vs)}) for start, vs in sorted(buckets.items())]


WIJK_HOURLY = ("w.hourly", AggregateRef("street_light", "power", "device", "wijk:W", "1h", ("a", "b")))
A_DAILY = ("a.daily", AggregateRef("street_light", "power", "device", "a", "1d", ("a",)))


def close(rows, expected):  # type: ignore[no-untyped-def]
    assert [r.time_us for r in rows] == [s for s, _ in expected]
    for r, (start, res) in zip(rows, expected, strict=True):
        assert r.end_us == start + (HOUR if r.datastream == "w.hourly" else 24 * HOUR)
        assert r.result.keys() == res.keys()
        for k in res:
            assert r.result[k] == pytest.approx(res[k])


@pytest.mark.parametrize("top", [1, 2, 100])
def test_aggregate_pages_match_the_reference_across_gaps(obs_store, readings, top):
    expected = reference(readings, ("a", "b"), HOUR)
    rows, token = [], None
    while True:
        page = obs_store.page([WIJK_HOURLY], None, (), top, 0, token)
        rows += page.rows
        token = page.next_token
        if token is None:
            break
    close(rows, expected)


def test_aggregate_pages_descending_and_daily(obs_store, readings):
    expected = reference(readings, ("a", "b"), HOUR)[::-1]
    page = obs_store.page([WIJK_HOURLY], None, parse_orderby("phenomenonTime desc"), 3, 0, None)
    close(page.rows, expected[:3])
    page = obs_store.page([WIJK_HOURLY], None, parse_orderby("phenomenonTime desc"), 3, 0, page.next_token)
    close(page.rows, expected[3:])
    daily = obs_store.page([A_DAILY], None, (), 10, 0, None).rows
    assert [(r.time_us, r.result["count"]) for r in daily] == [(s, r["count"]) for s, r in
                                                               reference(readings, ("a",), 24 * HOUR)]


def test_aggregates_mixed_with_plain_series_in_one_order(obs_store, readings):
    plain = ("a.power", SeriesRef("street_light", "power", "device", "a"))
    page = obs_store.page([plain, A_DAILY], None, (), 3, 0, None)
    assert [(r.datastream, r.time_us) for r in page.rows] == [
        ("a.daily", T0), ("a.power", T0), ("a.power", T0 + 600_000_000)]  # ties by datastream id


def test_get_latest_and_count_of_aggregates(obs_store, readings):
    expected = reference(readings, ("a", "b"), HOUR)
    row = obs_store.get(*WIJK_HOURLY, expected[1][0])
    assert row is not None and row.result["sum"] == pytest.approx(expected[1][1]["sum"])
    assert obs_store.get(*WIJK_HOURLY, expected[1][0] + 1) is None  # not an interval start
    latest = obs_store.latest([WIJK_HOURLY, A_DAILY])
    assert latest["w.hourly"].time_us == expected[-1][0]
    assert obs_store.count([WIJK_HOURLY], None) == len(expected)
    assert not obs_store.delete(*WIJK_HOURLY, expected[0][0])


def test_time_filters_apply_to_aggregates_result_filters_do_not(obs_store, readings):
    where = parse_filter("phenomenonTime ge 2023-11-14T01:00:00Z")  # T0 is 2023-11-14T00:00Z
    rows = obs_store.page([WIJK_HOURLY], where, (), 100, 0, None).rows
    assert [r.time_us for r in rows] == [s for s, _ in reference(readings, ("a", "b"), HOUR)][1:]
    with pytest.raises(NotImplementedFeature, match="aggregate"):
        obs_store.page([WIJK_HOURLY], parse_filter("result gt 1"), (), 10, 0, None)
