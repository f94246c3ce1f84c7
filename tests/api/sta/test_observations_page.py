"""ObservationStore.page against a real influxd: order, keyset paging, ties, $skip, filters, tokens."""

from __future__ import annotations

import base64
import itertools
import json
import time
from pathlib import Path

import pytest

from api.sta import observations
from api.sta.model import SeriesRef, iso_time, observation_id
from api.sta.observations import ObservationStore
from api.sta.query.ast import NotImplementedFeature, QueryError
from api.sta.query.parser import parse_filter, parse_orderby
from core.influx import InfluxClient
from core.line_protocol import escape_tag

pytestmark = pytest.mark.integration

T0 = 1_700_000_000_000_000  # 2023-11-14, µs


class CountingInflux(InfluxClient):
    """The real client, counting requests and the rows InfluxDB sent back."""

    def __init__(self, other: InfluxClient) -> None:
        super().__init__(other.config)
        self.requests: list[str] = []
        self.rows = 0

    def query(self, q, epoch="ms"):  # type: ignore[no-untyped-def]
        self.requests.append(q)
        out = super().query(q, epoch)
        self.rows += sum(len(s.values) for s in out)
        return out


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


def light(device: str, metric: str = "power") -> tuple[str, SeriesRef]:
    return f"{device}.{metric}", SeriesRef("street_light", metric, "device", device)


def write(influx: InfluxClient, lines: list[str]) -> None:
    for i in range(0, len(lines), 5000):
        influx.write("\n".join(lines[i:i + 5000]), precision="u")


def reference(points: dict[tuple[str, int], object], key) -> list[tuple[str, int, object]]:  # type: ignore[no-untyped-def]
    rows = [(ds, t, v) for (ds, t), v in points.items()]
    return sorted(rows, key=key)


def walk(store, series, top, orderby="", where=None):  # type: ignore[no-untyped-def]
    order = parse_orderby(orderby) if orderby else ()
    out, token, pages = [], None, 0
    while True:
        page = store.page(series, where, order, top, 0, token)
        out.extend((r.datastream, r.time_us, r.result) for r in page.rows)
        pages += 1
        assert len(page.rows) <= top
        token = page.next_token
        if token is None:
            return out, pages
        assert len(page.rows) == top  # a page with a next link is full
        assert pages < 10_000


@pytest.fixture
def tied(influx):
    """Five lights with power and dim_level at shared timestamps (ties across series), plus a sixth light
    that is not asked for (it must never appear), and a lamp_failure boolean."""
    points: dict[tuple[str, int], object] = {}
    lines = []
    for i in range(40):
        t = T0 + (i // 3) * 1_000_000  # three rows per timestamp per series
        t += i % 3  # ... at three distinct microseconds
        for d in ("a", "b", "a-1", "c", "d"):
            if (i + len(d)) % 7 == 0:
                continue  # gaps
            power = float((i * 7 + ord(d[0])) % 13)
            lines.append(f"street_light,device={d},wijk=WK1 power={power!r},dim_level={i}.0,"
                         f"lamp_failure={'true' if i % 2 else 'false'} {t}")
            points[(f"{d}.power", t)] = power
        lines.append(f"street_light,device=secret power=99.0 {t}")
    write(influx, lines)
    return points


SERIES = [light(d) for d in ("a", "b", "a-1", "c", "d")]


def by_time(r):  # type: ignore[no-untyped-def]
    return (r[1], r[0] + ".")


@pytest.mark.parametrize("top", [1, 3, 7, 1000])
def test_keyset_walk_in_time_order_gives_every_observation_once(obs_store, tied, top):
    rows, _ = walk(obs_store, SERIES, top)
    assert rows == reference(tied, by_time)
    assert all(ds != "secret.power" for ds, _, _ in rows)


@pytest.mark.parametrize(("orderby", "key"), [
    ("phenomenonTime desc", lambda r: (-r[1], r[0] + ".")),
    ("resultTime desc,@iot.id desc", lambda r: (r[1], r[0] + ".")),  # reversed below
    ("@iot.id", lambda r: observation_id(r[0], r[1])),
    ("@iot.id desc", lambda r: observation_id(r[0], r[1])),  # reversed below
    ("result,phenomenonTime desc", lambda r: (r[2], -r[1], r[0] + ".")),
    ("result desc", lambda r: (-r[2], r[1], r[0] + ".")),
])
def test_keyset_walk_in_every_supported_order(obs_store, tied, orderby, key):
    expected = reference(tied, key)
    if orderby in ("resultTime desc,@iot.id desc", "@iot.id desc"):
        expected.reverse()
    rows, _ = walk(obs_store, SERIES, 4, orderby)
    assert rows == expected


def test_ties_of_many_series_at_one_time_are_paged_exactly(influx, obs_store):
    """InfluxDB's LIMIT cuts a tie anywhere: 60 series sharing every timestamp, pages of 7."""
    devices = [f"x{i:02d}" for i in range(60)]
    write(influx, [f"street_light,device={d} power={j}.0 {T0 + j * 10}" for j in range(5) for d in devices])
    series = [light(d) for d in devices]
    rows, pages = walk(obs_store, series, 7)
    assert [(ds, t) for ds, t, _ in rows] == [(f"{d}.power", T0 + j * 10) for j in range(5) for d in devices]
    assert pages == -(-300 // 7)


def test_results_keep_their_types_booleans_are_bools(obs_store, tied):
    page = obs_store.page([light("a", "lamp_failure"), light("a", "dim_level")], None, (), 4, 0, None)
    kinds = {r.datastream: type(r.result) for r in page.rows}
    assert kinds["a.lamp_failure"] is bool
    assert all(isinstance(r.result, int | float) and not isinstance(r.result, bool)
               for r in page.rows if r.datastream == "a.dim_level")


def test_skip_small_and_deep(obs_store, tied, monkeypatch):
    expected = reference(tied, by_time)
    page = obs_store.page(SERIES, None, (), 5, 12, None)
    assert [(r.datastream, r.time_us) for r in page.rows] == [(d, t) for d, t, _ in expected[12:17]]
    monkeypatch.setattr(observations, "INLINE_SKIP", 10)  # make 37 a "deep" skip: walked in keyset steps
    page = obs_store.page(SERIES, None, (), 5, 37, None)
    assert [(r.datastream, r.time_us) for r in page.rows] == [(d, t) for d, t, _ in expected[37:42]]
    with pytest.raises(NotImplementedFeature, match="nextLink"):
        obs_store.page(SERIES, None, (), 5, observations.MAX_SKIP + 1, None)


def test_the_last_page_has_no_token_and_an_exact_fit_needs_no_empty_page(obs_store, tied):
    total = len(tied)
    page = obs_store.page(SERIES, None, (), total, 0, None)
    assert len(page.rows) == total and page.next_token is None
    page = obs_store.page(SERIES, None, (), total - 1, 0, None)
    assert page.next_token is not None


def test_filter_on_result_and_time_goes_to_influxdb(obs_store, tied, counting):
    where = parse_filter("result gt 6 and phenomenonTime ge 2023-11-14T22:13:25Z")
    rows, _ = walk(obs_store, SERIES, 5, where=where)
    expected = [r for r in reference(tied, by_time) if r[2] > 6 and r[1] >= T0 + 5_000_000]
    assert rows == expected and rows
    assert any('"power" > 6' in q for q in counting.requests)


def test_filter_on_the_observation_id_selects_that_observation(obs_store, tied):
    ds, t = next(iter(tied))
    page = obs_store.page(SERIES, parse_filter(f"@iot.id eq '{observation_id(ds, t)}'"), (), 10, 0, None)
    assert [(r.datastream, r.time_us) for r in page.rows] == [(ds, t)]


def b64(body: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")


@pytest.mark.parametrize("token", [
    "=", "x", "!!!", b64([]), b64({"a": 1}), b64([1, "t++", 1, "a.power"]) + "A" * 2000,
    b64([2, "t++", 1, "a.power"]),  # another version
    b64([1, "t++", "1", "a.power"]),  # time as a string
    b64([1, "t++", True, "a.power"]),  # time as a boolean
    b64([1, "t++", 10**30, "a.power"]),  # time out of range
    b64([1, "t++", 1, ""]),  # no datastream
    b64([1, "t++", 1, "a.power", {"x": 1}]),  # a result that no Observation has
    base64.urlsafe_b64encode(b"\xff\xfe").decode(),  # not UTF-8
])
def test_bad_tokens_are_query_errors(obs_store, tied, token):
    with pytest.raises(QueryError):
        obs_store.page(SERIES, None, (), 5, 0, token)


def test_a_valid_forged_token_only_moves_the_position(obs_store, tied):
    rows = obs_store.page(SERIES, None, (), 3, 0, b64([1, "t++", T0 + 5_000_000, "a.power"])).rows
    assert [(r.datastream, r.time_us) for r in rows] == [(d, t) for d, t, _ in reference(tied, by_time)
                                                          if (t, d + ".") > (T0 + 5_000_000, "a.power.")][:3]


def test_a_token_of_another_order_is_refused(obs_store, tied):
    token = obs_store.page(SERIES, None, (), 5, 0, None).next_token
    with pytest.raises(QueryError, match="skiptoken"):
        obs_store.page(SERIES, None, parse_orderby("phenomenonTime desc"), 5, 0, token)


def test_unsupported_orderby_is_not_implemented(obs_store, tied):
    with pytest.raises(NotImplementedFeature, match="orderby"):
        obs_store.page(SERIES, None, parse_orderby("Datastream/name"), 5, 0, None)


def test_a_deep_page_reads_no_more_than_the_first(influx, obs_store, counting):
    """The cost of a page is its rows: a page 2,000 rows deep reads as many rows from InfluxDB as the first."""
    write(influx, [f"street_light,device={d} power={j}.0 {T0 + j * 1000}" for j in range(1500) for d in "pq"])
    series = [light("p"), light("q")]
    obs_store.page(series, None, (), 50, 0, None)  # the series' first points are looked up once, and cached
    counting.rows, counting.requests = 0, []
    first = obs_store.page(series, None, (), 50, 0, None)
    first_rows, first_requests = counting.rows, len(counting.requests)
    token = first.next_token
    for _ in itertools.repeat(None, 40):
        token = obs_store.page(series, None, (), 50, 0, token).next_token
    counting.rows, counting.requests = 0, []
    deep = obs_store.page(series, None, (), 50, 0, token)
    assert deep.rows[0].time_us == T0 + 1025 * 1000  # 41 pages of 50 rows = 2050 rows, 1025 per series
    assert counting.rows <= first_rows + 2  # + the tie at the token's time
    assert len(counting.requests) == first_requests == 1


def test_empty_series_list_and_top_zero(obs_store, tied):
    assert obs_store.page([], None, (), 5, 0, None).rows == []
    assert obs_store.page(SERIES, None, (), 0, 0, None).rows == []


def test_a_wide_tie_in_one_group_and_a_short_read_in_another(influx, obs_store):
    """InfluxDB returns tied rows in series-key order ("x" before "x-0"), the page wants Datastream order
    ("x-0.power" before "x.power"): only rows before the earliest cut of any statement can be trusted."""
    devices = ["x", *(f"x-{i}" for i in range(20))]
    lines = [f"street_light,device={d} power=1.0 {T0 + j}" for j in range(3) for d in devices]
    lines += [f"street_light,device=y dim_level={j}.0 {T0 + j}" for j in range(6)]
    write(influx, lines)
    series = [*(light(d) for d in devices), light("y", "dim_level")]
    expected = sorted([(f"{d}.power", T0 + j) for j in range(3) for d in devices]
                      + [("y.dim_level", T0 + j) for j in range(6)], key=lambda r: (r[1], r[0] + "."))
    rows, _ = walk(obs_store, series, 2)
    assert [(d, t) for d, t, _ in rows] == expected


DAY = 86_400_000_000


@pytest.mark.parametrize("orderby", ["", "phenomenonTime desc"])
@pytest.mark.parametrize("top", [1, 2, 50])
def test_sparse_series_are_walked_across_every_time_window(influx, obs_store, orderby, top):
    """Pages read bounded windows (1 day, then 8x longer, then unbounded): points years apart, one far in
    the future, and one before the cached first point of another series are all found, in order."""
    offsets = [0, DAY + 1, 30 * DAY, 400 * DAY, 3000 * DAY, 3001 * DAY]
    write(influx, [f"street_light,device=s power={i}.0 {T0 + o}" for i, o in enumerate(offsets)]
          + [f"street_light,device=u power=1.0 {T0 - 5 * 365 * DAY}"])
    expected = [("s.power", T0 + o) for o in offsets] + [("u.power", T0 - 5 * 365 * DAY)]
    expected.sort(key=lambda r: r[1], reverse=bool(orderby))
    rows, _ = walk(obs_store, [light("s"), light("u")], top, orderby)
    assert [(d, t) for d, t, _ in rows] == expected


def test_tag_values_with_regex_and_quote_characters_match_only_themselves(influx, obs_store):
    odd = ["o/1", "o|2", "o)3", "o.4", "o\\5", "o'6", "o-7", 'o"8', "o*", "o$9", "o^0"]
    decoys = ["oX4", "o", "o22", "o3", "oo*", "o$99"]
    write(influx, [f"street_light,device={escape_tag(d)} power={i}.0 {T0 + i}" for i, d in enumerate(odd + decoys)])
    series = [light(d) for d in odd]
    rows, _ = walk(obs_store, series, 4)
    assert [d for d, _, _ in rows] == [f"{d}.power" for d in odd]
    assert obs_store.count(series, None) == len(odd)
    assert set(obs_store.latest(series)) == {f"{d}.power" for d in odd}


def test_time_filters_bound_the_windows_and_the_rows(influx, obs_store, counting):
    """A filter on phenomenonTime both selects the rows and tells the walk where to start: a day of a
    year-long series is one request, not a walk from the series' first point."""
    write(influx, [f"street_light,device=y power={i}.0 {T0 + i * 3_600_000_000}" for i in range(24 * 365)])
    lo, hi = T0 + 200 * DAY, T0 + 201 * DAY
    where = parse_filter("phenomenonTime ge 2024-06-01T22:13:20Z and phenomenonTime lt 2024-06-02T22:13:20Z")
    assert iso_time(lo) == "2024-06-01T22:13:20Z"
    obs_store.page([light("y")], where, (), 100, 0, None)  # the first points are looked up once
    for orderby in ("", "phenomenonTime desc"):
        counting.requests.clear()
        rows = obs_store.page([light("y")], where, parse_orderby(orderby) if orderby else (), 100, 0, None).rows
        expected = [T0 + i * 3_600_000_000 for i in range(24 * 365) if lo <= T0 + i * 3_600_000_000 < hi]
        assert [r.time_us for r in rows] == (expected[::-1] if orderby else expected)
        assert len(counting.requests) == 1, counting.requests


def test_a_young_series_backfilled_within_the_lateness_is_still_read_from_its_start(influx, obs_store):
    now_us = int(time.time() * 1e6)
    write(influx, [f"street_light,device=n power=1.0 {now_us - 3_600_000_000}"])
    assert len(obs_store.page([light("n")], None, (), 10, 0, None).rows) == 1  # its start is cached now
    write(influx, [f"street_light,device=n power=2.0 {now_us - 6 * DAY}"])  # a late reading the ingest admits
    rows = obs_store.page([light("n")], None, (), 10, 0, None).rows
    assert [r.result for r in rows] == [2.0, 1.0]
    assert obs_store.page([light("never")], None, (), 10, 0, None).rows == []
    write(influx, [f"street_light,device=never power=3.0 {now_us - 5 * DAY}"])  # a first reading, late
    assert [r.result for r in obs_store.page([light("never")], None, (), 10, 0, None).rows] == [3.0]


@pytest.mark.parametrize("text", [
    "result add 5 gt 12",
    "round(result div 4) eq 2 and phenomenonTime ge 2023-11-14T22:13:25Z",
    "second(phenomenonTime) eq 30 or result mod 2 eq 1",
])
def test_the_store_refuses_filters_influxql_cannot_do(obs_store, tied, text):
    """The routes evaluate those in Python over a bounded scan (observation_scan, tested in
    test_observation_scan); the store has no second fallback of its own."""
    where = parse_filter(text)
    with pytest.raises(NotImplementedFeature):
        obs_store.page(SERIES, where, (), 5, 0, None)
    with pytest.raises(NotImplementedFeature):
        obs_store.count(SERIES, where)


def test_a_point_written_before_a_series_start_is_found_once_the_store_is_told(influx, obs_store):
    """API Datastreams take any time: a writer that stores a point older than the series' cached start
    calls written(), and pages (and counts) see it."""
    series = [("api-1", SeriesRef("sta_observation", "result", "datastream", "api-1"))]
    write(influx, [f"sta_observation,datastream=api-1 result=1.0 {T0}"])
    assert obs_store.count(series, None) == 1 and len(obs_store.page(series, None, (), 10, 0, None).rows) == 1
    write(influx, [f"sta_observation,datastream=api-1 result=2.0 {T0 - 400 * DAY}"])
    obs_store.written(series[0][1], T0 - 400 * DAY)
    assert [r.result for r in obs_store.page(series, None, (), 10, 0, None).rows] == [2.0, 1.0]
    assert obs_store.count(series, None) == 2
