"""ObservationStore.count against a real influxd: exact, cached for closed days, recounted after deletes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from api.sta import count_cache, observation_count
from api.sta.aggregates import AggregateRef
from api.sta.count_cache import DAY_US
from api.sta.model import SeriesRef
from api.sta.observation_count import closed_until, settled_until
from api.sta.observations import ObservationStore
from api.sta.query.parser import parse_filter
from core.influx import InfluxClient
from ingest.points import ALL_MEASUREMENTS, SETTLE_S, late_line

pytestmark = pytest.mark.integration

OLD = 1_700_000_000_000_000 - 1_700_000_000_000_000 % DAY_US  # a closed day (2023-11-14)


@pytest.fixture
def obs_store(influx, tmp_path: Path):
    store = ObservationStore(influx, tmp_path / "state")
    yield store
    store.close()


def light(device: str, metric: str = "power") -> tuple[str, SeriesRef]:
    return f"{device}.{metric}", SeriesRef("street_light", metric, "device", device)


def write(influx: InfluxClient, lines: list[str]) -> None:
    influx.write("\n".join(lines), precision="u")


@pytest.fixture
def data(influx):
    """Three closed days and the open tail, for two lights; a third light not asked for."""
    now_us = int(time.time() * 1e6)
    lines = []
    for day in range(3):
        for i in range(10 + day):
            t = OLD + day * DAY_US + i * 60_000_000
            lines += [f"street_light,device=a power={i}.0,dim_level=1.0 {t}", f"street_light,device=b power={i}.5 {t}",
                      f"street_light,device=z power=1.0 {t}"]
    for i in range(7):
        lines += [f"street_light,device=a power={i}.0 {now_us - i * 1_000_000}"]
    write(influx, lines)
    return now_us


def test_count_is_exact_over_closed_days_and_the_tail(obs_store, data):
    assert obs_store.count([light("a"), light("b")], None) == (10 + 11 + 12) * 2 + 7
    assert obs_store.count([light("a", "dim_level")], None) == 33
    assert obs_store.count([light("z")], None) == 33
    assert obs_store.count([], None) == 0


def test_closed_days_are_read_from_the_cache(influx, obs_store, data):
    series = [light("a"), light("b")]
    first = obs_store.count(series, None)
    # A point slipped into a closed day behind the cache's back (the ingest would refuse it): the cached
    # count does not see it, which shows the closed days were not counted again...
    write(influx, [f"street_light,device=a power=5.0 {OLD + 5}"])
    assert obs_store.count(series, None) == first
    # ... while the open tail is counted live.
    write(influx, [f"street_light,device=b power=5.0 {data - 30_000_000}"])
    assert obs_store.count(series, None) == first + 1
    # A store on the same state directory (another worker) shares the cache.
    other = ObservationStore(influx, obs_store.cache.path.parent)
    assert other.count(series, None) == first + 1
    other.close()


def test_a_delete_makes_its_day_counted_again(influx, obs_store, data):
    series = [light("a"), light("b")]
    first = obs_store.count(series, None)
    write(influx, [f"street_light,device=b power=5.0 {OLD + 5}",  # unseen by the cache (see above)
                   f"street_light,device=b power=5.0 {OLD + 6}"])
    assert obs_store.count(series, None) == first
    assert obs_store.delete("b.power", light("b")[1], OLD)  # same day: it is counted again
    assert obs_store.count(series, None) == first - 1 + 2
    assert obs_store.count(series, None) == first + 1  # and cached again


def test_count_with_a_filter_is_cached_per_filter(influx, obs_store, data):
    where = parse_filter("result ge 5")
    expected = sum(1 for day in range(3) for i in range(10 + day) if i >= 5) * 2 - 0  # a: i, b: i.5
    expected += sum(1 for i in range(7) if i >= 5)
    assert obs_store.count([light("a"), light("b")], where) == expected
    assert obs_store.count([light("a"), light("b")], where) == expected
    assert obs_store.count([light("a"), light("b")], None) == 33 * 2 + 7


def test_filters_on_time_are_counted_live(influx, obs_store, data):
    where = parse_filter("phenomenonTime ge 2023-11-15T00:00:00Z")
    assert obs_store.count([light("a")], where) == 11 + 12 + 7
    write(influx, [f"street_light,device=a power=5.0 {OLD + DAY_US + 5}"])  # behind the cache's back
    assert obs_store.count([light("a")], where) == 11 + 12 + 7 + 1
    recent = parse_filter("phenomenonTime gt now() sub duration'P1D'")
    assert obs_store.count([light("a")], recent) == 7


def test_the_cache_keeps_a_bounded_number_of_filters(influx, obs_store, data, monkeypatch):
    monkeypatch.setattr(count_cache, "MAX_VARIANTS", 2)
    for v in (1, 2, 3):
        obs_store.count([light("a")], parse_filter(f"result ge {v}"))
    with obs_store.cache._db as db:  # the file's contents are what is bounded
        variants = {r[0] for r in db.execute("SELECT variant FROM coverage")}
    assert len(variants) == 2
    write(influx, [f"street_light,device=a power=5.0 {OLD + 5}"])
    assert obs_store.count([light("a")], parse_filter("result ge 3")) == 1 + sum(
        1 for day in range(3) for i in range(10 + day) if i >= 3) + sum(1 for i in range(7) if i >= 3)


def test_aggregate_counts_are_intervals(obs_store, data):
    hourly = AggregateRef("street_light", "power", "device", "a", "1h", ("a",))
    daily = AggregateRef("street_light", "power", "device", "wijk:x", "1d", ("a", "b"))
    # closed days: 10..12 readings a minute apart from midnight, all in the first hour; the tail: 7 s
    hours_tail = len({(data - i * 1_000_000) // 3_600_000_000 for i in range(7)})
    assert obs_store.count([("a.power.hourly", hourly)], None) == 3 + hours_tail
    days_tail = len({(data - i * 1_000_000) // DAY_US for i in range(7)})
    assert obs_store.count([("w.daily", daily)], None) == 3 + days_tail
    assert obs_store.count([("w.daily", daily)], None) == 3 + days_tail  # from the cache


def test_closed_until_leaves_the_ingest_lateness_open():
    now = 1_800_000_000.0
    cutoff = closed_until(now)
    assert cutoff % DAY_US == 0
    assert (now * 1e6 - cutoff) > 8 * DAY_US  # 7 days of lateness and a margin are never cached


def test_counts_of_mixed_fields_and_shared_series(obs_store, data):
    """b has no dim_level Datastream here, so the tail is counted per series; a Datastream id reading the
    same series twice counts it twice (as two Datastreams would list it)."""
    mixed = [light("a"), light("a", "dim_level"), light("b")]
    assert obs_store.count(mixed, None) == (33 + 7) + 33 + 33
    assert obs_store.count(mixed, None) == (33 + 7) + 33 + 33  # warm
    shared = [light("a"), ("alias.power", light("a")[1])]
    assert obs_store.count(shared, None) == 2 * (33 + 7)


def test_settled_days_are_cached_until_a_late_write_marker_names_them(influx, obs_store, monkeypatch):
    """Days older than the ingest's settle horizon are cached although the ingest still admits readings
    for them: a late reading comes with a late_write marker (ingest.points), and its day is counted again."""
    now = time.time()
    day = settled_until(now) - 2 * DAY_US  # settled, inside the 7-day lateness
    assert day >= closed_until(now)
    write(influx, [f"street_light,device=y power=1.0 {day + i * 60_000_000}" for i in range(5)])
    assert obs_store.count([light("y")], None) == 5
    write(influx, [f"street_light,device=y power=1.0 {day + 3_600_000_000}"])  # no marker: not seen
    assert obs_store.count([light("y")], None) == 5  # the settled day is cached
    write(influx, [f"street_light,device=y power=1.0 {day + 7_200_000_000}",
                   late_line("gw", "street_light", day, 1, int(now * 1e6))])
    assert obs_store.count([light("y")], None) == 7
    write(influx, [f"street_light,device=y power=1.0 {day + 7_300_000_000}",
                   late_line("spool", ALL_MEASUREMENTS, day, 0, int(now * 1e6) + 1)])
    assert obs_store.count([light("y")], None) == 8
    assert obs_store.count([light("y")], None) == 8
    monkeypatch.setattr(observation_count, "MARKER_SETTLE_S", 0.0)  # markers seen are settled at once
    write(influx, [late_line("gw", "rain_gauge", day, 1, int(now * 1e6) + 2)])  # another measurement's day
    write(influx, [f"street_light,device=y power=1.0 {day + 7_400_000_000}"])
    assert obs_store.count([light("y")], None) == 8
    monkeypatch.setattr(observation_count, "MARKER_SETTLE_S", 60.0)  # within it a new marker's day is recounted
    assert obs_store.count([light("y")], None) == 9


def test_settled_until_caches_all_but_the_last_hours():
    now = 1_800_000_000.0
    cutoff = settled_until(now)
    assert cutoff % DAY_US == 0 and now * 1e6 - cutoff >= (SETTLE_S + 3600) * 1e6
    assert now * 1e6 - cutoff < DAY_US + (SETTLE_S + 3600) * 1e6
