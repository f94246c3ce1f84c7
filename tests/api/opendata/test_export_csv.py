"""CSV export per device kind and period, against a real influxd."""

import csv
import datetime as dt
import io

import pytest

from api.opendata import export_csv
from api.opendata.export_csv import CHUNK_US, Export
from api.opendata.public import public_devices
from core.kinds import KINDS
from core.registry import load
from tests.api.conftest import CLASSIFIED, store_lines

pytestmark = pytest.mark.integration

T0 = dt.datetime(2026, 11, 30, 10, 0, tzinfo=dt.UTC)
T0_US = int(T0.timestamp()) * 1_000_000
HOUR_US = 3_600 * 1_000_000


def rows(resp):
    return list(csv.reader(io.StringIO(resp.text)))


@pytest.fixture
def lights(influx, registry_file):
    store_lines(influx, registry_file, [
        ("vs-sl-101", T0_US + 1_000_000, {"dim_level": 100, "power": 40.5, "lamp_failure": False}),
        ("vs-sl-101", T0_US + 2 * HOUR_US + 250_000, {"dim_level": 20, "power": 8.5}),
        ("ws-sl-101", T0_US + 1_000_000, {"dim_level": 60, "lamp_failure": True}),
        (CLASSIFIED, T0_US + 1_000_000, {"dim_level": 55, "power": 99.0}),
        ("vs-sl-101", T0_US + 30 * HOUR_US, {"dim_level": 1}),  # outside the period asked
    ])


def test_export_gives_the_public_readings_of_the_period_in_order(api, lights):
    resp = api.get("/v1/export/street_light.csv", params={"from": "2026-11-30T10:00:00Z", "to": "2026-11-30T20:00:00Z"})
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "text/csv; charset=utf-8"
    assert 'filename="street_light_20261130T100000Z_20261130T200000Z.csv"' in resp.headers["content-disposition"]
    assert "content-length" not in resp.headers  # streamed
    assert "etag" not in resp.headers  # a streamed body is never held back to hash it
    header, *body = rows(resp)
    assert header == ["time", "device", "gemeente", "wijk", *KINDS["street_light"].metrics]
    col = {name: i for i, name in enumerate(header)}
    assert [(r[col["time"]], r[col["device"]]) for r in body] == [
        ("2026-11-30T10:00:01.000000Z", "vs-sl-101"),
        ("2026-11-30T10:00:01.000000Z", "ws-sl-101"),
        ("2026-11-30T12:00:00.250000Z", "vs-sl-101"),
    ]
    first = body[0]
    assert (first[col["gemeente"]], first[col["wijk"]]) == ("GM0626", "WK062600")
    assert (first[col["dim_level"]], first[col["power"]], first[col["lamp_failure"]]) == ("100", "40.5", "false")
    assert first[col["voltage"]] == ""  # not measured: empty
    assert body[1][col["lamp_failure"]] == "true"
    assert CLASSIFIED not in resp.text  # vertrouwelijk: never exported


def test_export_by_gemeente(api, lights):
    resp = api.get("/v1/export/street_light.csv", params={
        "from": "2026-11-30T10:00:00Z", "to": "2026-11-30T20:00:00Z", "gemeente": "GM0629"})
    assert {r[1] for r in rows(resp)[1:]} == {"ws-sl-101"}


def test_export_is_fetched_in_time_chunks(influx, registry_file, lights):
    devices = public_devices(load(registry_file), "street_light")
    export = Export(influx, KINDS["street_light"], devices, start_us=T0_US, end_us=T0_US + 10 * HOUR_US)
    pieces = list(export.lines())
    assert CHUNK_US == HOUR_US
    assert len(pieces) == 3  # header, the hour 10-11 and the hour 12-13: one piece per chunk with data
    assert pieces[2].decode().startswith("2026-11-30T12:00:00.250000Z,vs-sl-101")


def test_export_of_a_period_holding_too_many_rows_is_refused(api, lights, monkeypatch):
    monkeypatch.setattr(export_csv, "MAX_ROWS", 2)
    resp = api.get("/v1/export/street_light.csv", params={"from": "2026-11-30T10:00:00Z", "to": "2026-11-30T20:00:00Z"})
    assert resp.status_code == 400
    assert "2 an export may hold" in resp.json()["detail"]


def test_export_bounds_and_bad_parameters(api):
    export = "/v1/export/street_light.csv"
    too_long = api.get(export, params={"from": "2026-01-01T00:00:00Z", "to": "2026-03-01T00:00:00Z"})
    assert too_long.status_code == 400
    assert "31 days" in too_long.json()["detail"]
    backwards = api.get(export, params={"from": "2026-03-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"})
    assert backwards.status_code == 400
    ancient = api.get(export, params={"from": "0001-01-01T00:00:00Z", "to": "0001-01-02T00:00:00Z"})
    assert ancient.status_code == 400 and "1970" in ancient.json()["detail"]
    unknown = api.get("/v1/export/toaster.csv")
    assert unknown.status_code == 404
    assert "toaster" in unknown.json()["detail"] and "street_light" in unknown.json()["detail"]
    bad_time = api.get("/v1/export/street_light.csv", params={"from": "yesterday"})
    assert bad_time.status_code == 422
    assert bad_time.json()["detail"][0]["loc"] == ["query", "from"]
    assert "yesterday" not in bad_time.text
    bad_gemeente = api.get("/v1/export/street_light.csv", params={"gemeente": "Leiden"})
    assert bad_gemeente.status_code == 422


def test_export_default_period_is_the_last_day(api, influx, registry_file):
    now_us = int(dt.datetime.now(dt.UTC).timestamp() * 1_000_000)
    store_lines(influx, registry_file, [("vs-rg-001", now_us - 60_000_000, {"rain_intensity": 1.5}),
                                        ("vs-rg-001", now_us - 2 * 86_400_000_000, {"rain_intensity": 9.0})])
    body = rows(api.get("/v1/export/rain_gauge.csv"))[1:]
    assert [r[1] for r in body] == ["vs-rg-001"]
    assert body[0][4] == "1.5"


def test_export_answers_503_without_the_address_when_influxdb_is_down(api, influxd):
    influxd.stop()
    resp = api.get("/v1/export/street_light.csv")
    assert resp.status_code == 503
    assert influxd.url not in resp.text and "127.0.0.1" not in resp.text
