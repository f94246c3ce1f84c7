"""The screen accepts exactly what the ingest stores, and of that only the public devices' readings.

Each case runs the same pack through ingest.points.pack_lines and streams.screen: the Observations
must be the ingest's points, less those of devices not classified openbaar.
"""

from __future__ import annotations

import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.sta.model import datastream_id
from api.sta_mqtt.streams import NOT_PUBLIC, StreamCache, StreamTable, screen
from core import jsonfast
from core.kinds import KINDS
from core.registry import Registry
from core.senml_columns import decode_columns
from ingest.points import LATE_MEASUREMENT, Rejects, TimeBounds, pack_lines
from ingest.series_table import SeriesTable
from tests.api.sta_mqtt.conftest import CLASSIFIED

NOW = 1_800_000_000.0


def stored(registry: Registry, gateway: str, payload: bytes, bounds: TimeBounds) -> set[tuple[str, int, Any]]:
    """(datastream, time_us, value) of every field the ingest would write for the pack."""
    out = set()
    lines = pack_lines(gateway, decode_columns(payload, NOW), SeriesTable(registry), now=NOW, rejects=Rejects(),
                       bounds=bounds)
    for line in lines:
        if line.startswith(f"{LATE_MEASUREMENT},"):
            continue  # the count cache's marker of a late day (readings older than the settle horizon), no reading
        head, fields, ts = line.rsplit(" ", 2)
        device = next(t.split("=", 1)[1] for t in head.split(",")[1:] if t.startswith("device="))
        for f in fields.split(","):
            key, text = f.split("=", 1)
            value = {"true": True, "false": False}.get(text)
            out.add((datastream_id(device, key), int(ts), float(text) if value is None else value))
    return out


def published(registry: Registry, gateway: str, payload: bytes, bounds: TimeBounds,
              rejects: Rejects | None = None) -> set[tuple[str, int, Any]]:
    acc = screen(gateway, decode_columns(payload, NOW), StreamTable(registry), now=NOW,
                 rejects=rejects or Rejects(), bounds=bounds)
    return set(zip(acc.datastreams, acc.times_us, acc.values, strict=True))


def public_only(rows: set[tuple[str, int, Any]]) -> set[tuple[str, int, Any]]:
    return {r for r in rows if not r[0].startswith(CLASSIFIED + ".")}


def test_each_reject_reason_of_the_ingest_and_not_public(registry: Registry) -> None:
    pack = [
        {"bn": "vs-sl-101/", "bt": NOW, "seq": 1},
        {"n": "power", "u": "W", "v": 12.5},  # good
        {"n": "lamp_failure", "vb": False},  # good boolean
        {"n": "lamp_failure", "v": 1.0, "t": 1},  # wrong_type: a number for a boolean
        {"n": "power", "vs": "high", "t": 2},  # wrong_type
        {"n": "power", "u": "kW", "v": 1.0, "t": 3},  # wrong_unit
        {"n": "nonsense", "v": 1.0},  # unknown_metric
        {"n": "power", "v": 1.0, "t": -8 * 86400},  # too_late
        {"n": "power", "v": 1.0, "t": 3600},  # future
        {"bn": "", "n": "nobody/power", "v": 1.0},  # unknown_device
        {"n": "noslash", "v": 1.0},  # bad_name
        {"n": "ws-sl-101/power", "v": 1.0},  # wrong_gateway
        {"n": f"{CLASSIFIED}/power", "v": 99.0},  # not public
        {"n": "vs-sl-101/power", "v": "x"},  # bad_record
    ]
    payload = jsonfast.dumps(pack)
    bounds = TimeBounds()
    rejects = Rejects()
    got = published(registry, "gw-vs-01", payload, bounds, rejects)
    assert got == {("vs-sl-101.power", int(NOW * 1e6), 12.5), ("vs-sl-101.lamp_failure", int(NOW * 1e6), False)}
    assert got == public_only(stored(registry, "gw-vs-01", payload, bounds))
    assert rejects.counts == {"wrong_type": 2, "wrong_unit": 1, "unknown_metric": 1, "too_late": 1, "future": 1,
                              "unknown_device": 1, "bad_name": 1, "wrong_gateway": 1, NOT_PUBLIC: 1,
                              "bad_record": 1}


def test_a_reading_from_the_wrong_gateway_is_not_published(registry: Registry) -> None:
    payload = jsonfast.dumps([{"bn": "vs-sl-101/", "bt": NOW, "n": "power", "u": "W", "v": 3.0}])
    assert published(registry, "gw-ws-01", payload, TimeBounds()) == set()
    assert published(registry, "gw-vs-01", payload, TimeBounds()) == {("vs-sl-101.power", int(NOW * 1e6), 3.0)}


def test_the_table_follows_a_reload(registry: Registry) -> None:
    cache = StreamCache()
    first = cache.get(registry)
    assert cache.get(registry) is first
    assert f"{CLASSIFIED}/power" not in first.public and "vs-sl-101/power" in first.public
    reloaded = Registry(dict(registry.gateways), dict(registry.devices), registry.map_year)
    assert cache.get(reloaded) is not first


_DEVICES = ["vs-sl-101", CLASSIFIED, "vs-oc-101", "ws-sl-101", "vs-ps-201", "nobody"]
_METRICS = sorted({m for k in KINDS.values() for m in k.metrics} | {"bogus"})
_record = st.fixed_dictionaries(
    {"n": st.tuples(st.sampled_from(_DEVICES), st.sampled_from(_METRICS)).map("/".join)},
    optional={
        "v": st.one_of(st.floats(allow_nan=False, allow_infinity=False, width=32), st.integers(-5, 5)),
        "vb": st.booleans(),
        "vs": st.text(max_size=3),
        "u": st.sampled_from(["W", "%", "kWh", "count", "mm", "s", "Cel", "V", "mm/h", "x"]),
        "t": st.sampled_from([0.0, -1.0, 1.5, -8 * 86400.0, 400.0, 299.0, -7 * 86400.0 + 1]),
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(_record, min_size=1, max_size=12), gateway=st.sampled_from(["gw-vs-01", "gw-ws-01"]))
def test_the_screen_publishes_what_the_ingest_stores_of_public_devices(records: list[dict[str, Any]],
                                                                      gateway: str, registry: Registry) -> None:
    payload = jsonfast.dumps([{"bt": NOW}, *records])
    bounds = TimeBounds()
    assert published(registry, gateway, payload, bounds) == public_only(stored(registry, gateway, payload, bounds))


def test_now_is_the_screens_clock_not_the_wall_clock(registry: Registry) -> None:
    payload = jsonfast.dumps([{"bn": "vs-sl-101/", "bt": time.time(), "n": "power", "u": "W", "v": 3.0}])
    assert published(registry, "gw-vs-01", payload, TimeBounds()) == set()  # years from NOW: refused
