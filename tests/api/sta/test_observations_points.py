"""ObservationStore.get, .latest and .delete against a real influxd."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from api.sta import aggregate_latest
from api.sta.aggregates import AggregateRef
from api.sta.model import API_MEASUREMENT, SeriesRef
from api.sta.observations import ObservationRow, ObservationStore
from api.sta.query.parser import parse_orderby
from tests.api.sta.test_observations_page import CountingInflux

pytestmark = pytest.mark.integration

T0 = 1_700_000_000_000_000


@pytest.fixture
def counting(influx):
    client = CountingInflux(influx)
    yield client
    client.close()


@pytest.fixture
def obs_store(counting, tmp_path: Path):
    store = ObservationStore(counting, tmp_path / "state")
    yield store
    store.close()


def ref(device: str, metric: str, kind: str = "street_light") -> tuple[str, SeriesRef]:
    return f"{device}.{metric}", SeriesRef(kind, metric, "device", device)


@pytest.fixture
def data(influx):
    influx.write("\n".join([
        f"street_light,device=a,gateway=gw-1,wijk=WK1 power=10.5,dim_level=80.0,lamp_failure=false {T0}",
        f"street_light,device=a,gateway=gw-1,wijk=WK1 power=11.5,dim_level=70.0 {T0 + 1000}",
        f"street_light,device=b,gateway=gw-1,wijk=WK1 power=3.25 {T0 + 500}",
        f"street_light,device=b,gateway=gw-1,wijk=WK1 lamp_failure=true {T0 + 700}",
        f"rain_gauge,device=r,gateway=gw-2 accumulation=0.2,count_i=3i,label=\"x\" {T0 + 50}",
        f"rain_gauge,device=r,gateway=gw-2 accumulation=0.4 {T0 + 60}",
        f'{API_MEASUREMENT},datastream=api-7 result=1.5 {T0 + 10}',
    ]), precision="u")


def test_get_finds_one_observation_and_nothing_else(obs_store, data):
    assert obs_store.get(*ref("a", "power"), T0) == ObservationRow("a.power", T0, 10.5)
    assert obs_store.get(*ref("a", "power"), T0 + 1) is None
    assert obs_store.get(*ref("b", "power"), T0) is None  # another series' time
    assert obs_store.get(*ref("b", "lamp_failure"), T0 + 700) == ObservationRow("b.lamp_failure", T0 + 700, True)
    assert obs_store.get(*ref("a", "lamp_failure"), T0 + 1000) is None  # the point lacks the field
    api = SeriesRef(API_MEASUREMENT, "result", "datastream", "api-7")
    assert obs_store.get("api-7", api, T0 + 10) == ObservationRow("api-7", T0 + 10, 1.5)


def test_latest_of_many_datastreams_in_one_request(obs_store, data, counting):
    series = [ref("a", "power"), ref("a", "dim_level"), ref("a", "lamp_failure"), ref("b", "power"),
              ref("b", "lamp_failure"), ref("r", "accumulation", "rain_gauge"), ref("nodata", "power")]
    counting.requests.clear()
    latest = obs_store.latest(series)
    assert len(counting.requests) == 5  # old data: the last day, 8, 64, 512 days, then all before
    assert latest == {
        "a.power": ObservationRow("a.power", T0 + 1000, 11.5),
        "a.dim_level": ObservationRow("a.dim_level", T0 + 1000, 70),
        "a.lamp_failure": ObservationRow("a.lamp_failure", T0, False),
        "b.power": ObservationRow("b.power", T0 + 500, 3.25),
        "b.lamp_failure": ObservationRow("b.lamp_failure", T0 + 700, True),
        "r.accumulation": ObservationRow("r.accumulation", T0 + 60, 0.4),
    }
    assert obs_store.latest([]) == {}


def test_latest_of_live_datastreams_is_one_request_over_the_last_day(obs_store, influx, counting):
    now_us = int(time.time() * 1e6)
    influx.write("\n".join([f"street_light,device=d{i} power={i}.0,dim_level=5.0 {now_us - i * 1_000_000}"
                            for i in range(50)] + [f"street_light,device=d0 power=1.0 {T0}"]), precision="u")
    counting.requests.clear()
    series = [ref(f"d{i}", m) for i in range(50) for m in ("power", "dim_level")]
    latest = obs_store.latest(series)
    assert len(counting.requests) == 1
    assert "time >= " in counting.requests[0]  # a bounded window, not every shard
    assert latest["d7.power"] == ObservationRow("d7.power", now_us - 7_000_000, 7.0)
    assert len(latest) == 100


def test_latest_of_aggregates_is_the_interval_of_the_newest_reading(obs_store, influx, counting):
    now_us = int(time.time() * 1e6)
    hour = 3_600_000_000
    influx.write("\n".join([f"street_light,device=a power=2.0 {now_us - 2 * hour}",
                            f"street_light,device=b power=4.0 {now_us - 10}",
                            f"street_light,device=b power=6.0 {now_us - 20}"]), precision="u")
    hourly = AggregateRef("street_light", "power", "device", "wijk:W", "1h", ("a", "b"))
    counting.requests.clear()
    got = obs_store.latest([("w.hourly", hourly), ref("a", "power")])
    assert len(counting.requests) == 2  # the raw last() of the sources and the plain series, then the interval
    start = (now_us - 10) - (now_us - 10) % hour
    row = got["w.hourly"]
    assert (row.time_us, row.end_us) == (start, start + hour)
    expected = [v for t, v in ((now_us - 10, 4.0), (now_us - 20, 6.0), (now_us - 2 * hour, 2.0)) if t >= start]
    assert row.result["count"] == len(expected) and row.result["sum"] == sum(expected)
    assert got["a.power"].result == 2.0


def test_latest_of_single_source_aggregates_batched(obs_store, influx, counting):
    now_us = int(time.time() * 1e6)
    hour = 3_600_000_000
    influx.write("\n".join([f"street_light,device=a power=2.0 {now_us - 30 * hour}",
                            f"street_light,device=a power=3.0 {now_us - 30 * hour + 1}",
                            f"street_light,device=b power=4.0 {now_us - 10}",
                            f"street_light,device=b power=6.0 {now_us - 2 * hour}",
                            f"street_light,device=c dim_level=1.0 {now_us - 400 * 24 * hour}"]), precision="u")

    def agg(d: str, interval: str, field: str = "power") -> tuple[str, AggregateRef]:
        return f"{d}.{field}.{interval}", AggregateRef("street_light", field, "device", d, interval, (d,))

    series = [agg("a", "1h"), agg("b", "1h"), agg("a", "1d"), agg("b", "1d"), agg("c", "1h", "dim_level"),
              agg("nodata", "1h")]
    counting.requests.clear()
    got = obs_store.latest(series)
    assert set(got) == {"a.power.1h", "b.power.1h", "a.power.1d", "b.power.1d", "c.dim_level.1h"}

    def start(t: int, step: int) -> int:
        return t - t % step

    a_hour = start(now_us - 30 * hour, hour)
    assert (got["a.power.1h"].time_us, got["a.power.1h"].result["sum"]) == (a_hour, 5.0)
    assert got["b.power.1h"].result["count"] == 1
    day = 24 * hour
    b_day = start(now_us - 10, day)
    assert got["b.power.1d"].time_us == b_day
    assert got["b.power.1d"].result["count"] == (2 if now_us - 2 * hour >= b_day else 1)
    assert got["c.dim_level.1h"].end_us == got["c.dim_level.1h"].time_us + hour


def test_delete_removes_one_field_and_keeps_the_point_s_others(obs_store, data, influx):
    assert obs_store.delete(*ref("a", "power"), T0)
    assert obs_store.get(*ref("a", "power"), T0) is None
    assert obs_store.get(*ref("a", "dim_level"), T0) == ObservationRow("a.dim_level", T0, 80)
    assert obs_store.get(*ref("a", "lamp_failure"), T0) == ObservationRow("a.lamp_failure", T0, False)
    assert obs_store.get(*ref("a", "power"), T0 + 1000) is not None  # other times untouched
    tags = influx.query(f"SELECT * FROM street_light WHERE time = {T0}u GROUP BY *", epoch="u")[0].tags
    assert tags == {"device": "a", "gateway": "gw-1", "wijk": "WK1"}  # rewritten with its tags
    assert not obs_store.delete(*ref("a", "power"), T0)  # gone


def test_delete_keeps_integer_and_string_fields_in_their_types(obs_store, data, influx):
    assert obs_store.delete(*ref("r", "accumulation", "rain_gauge"), T0 + 50)
    rows = influx.query(f"SELECT * FROM rain_gauge WHERE time = {T0 + 50}u", epoch="u")[0].rows()
    assert rows[0]["count_i"] == 3 and rows[0]["label"] == "x" and rows[0]["accumulation"] is None
    # an integer written back as a float would be refused by InfluxDB as a type conflict:
    influx.write(f"rain_gauge,device=r count_i=4i {T0 + 99}", precision="u")


def test_delete_of_the_only_field_leaves_no_point(obs_store, data, influx):
    api = SeriesRef(API_MEASUREMENT, "result", "datastream", "api-7")
    assert obs_store.delete("api-7", api, T0 + 10)
    assert influx.query(f"SELECT * FROM {API_MEASUREMENT}", epoch="u") == []


@pytest.mark.parametrize("raw_limit", [200_000, 3])
def test_latest_aggregates_agree_with_influxdb_s_own_aggregation(obs_store, influx, monkeypatch, raw_limit):
    """latest() computes the newest intervals from raw readings in Python (or, past RAW_LIMIT readings, by
    InfluxDB); page(desc, top=1) has InfluxDB compute them: both must agree."""
    monkeypatch.setattr(aggregate_latest, "RAW_LIMIT", raw_limit)
    now_us = int(time.time() * 1e6)
    lines = [f"street_light,device={d} power={(i * 7 + len(d)) % 11 + 0.25!r},dim_level={i % 5}.0 "
             f"{now_us - i * 600_000_000 - len(d)}" for d in ("a", "b", "cc") for i in range(30)]
    influx.write("\n".join(lines), precision="u")
    aggs = [(f"{d}.{f}.{iv}", AggregateRef("street_light", f, "device", d, iv, (d,)))
            for d in ("a", "b", "cc") for f in ("power", "dim_level") for iv in ("1h", "1d")]
    aggs += [(f"w.{iv}", AggregateRef("street_light", "power", "device", "wijk:W", iv, ("a", "b", "cc")))
             for iv in ("1h", "1d")]
    got = obs_store.latest(aggs)
    assert set(got) == {i for i, _ in aggs}
    for ident, agg in aggs:
        page = obs_store.page([(ident, agg)], None, parse_orderby("phenomenonTime desc"), 1, 0, None)
        ref_row = page.rows[0]
        assert (got[ident].time_us, got[ident].end_us) == (ref_row.time_us, ref_row.end_us), ident
        for k, v in ref_row.result.items():
            assert got[ident].result[k] == pytest.approx(v), (ident, k)
