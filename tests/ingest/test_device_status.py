"""device_status against a real influxd filled with readings at chosen times: ok, fault, silent, and agreement."""

import json
import time

import pytest

from core.influx import InfluxClient, InfluxConfig
from core.registry import load
from ingest.device_status import (
    CODES,
    STATUS_FAULT,
    STATUS_OK,
    STATUS_SILENT,
    DeviceStatusJob,
    classify,
    look_back,
    status_line,
)
from ingest.series_table import SeriesTable
from smartcity.data import demo_registry_path
from tests.conftest import wait_for
from tests.ingest.support import FaultProxy

pytestmark = pytest.mark.integration

REGISTRY = load(demo_registry_path())
TABLE = SeriesTable(REGISTRY)
INTERVAL = 60.0


def boundary() -> int:
    """A recent whole interval in unix seconds (the time every point of the round gets)."""
    return int(time.time() // INTERVAL * INTERVAL) - 120


def reading(device: str, metric: str, value: str, t: float) -> str:
    spec = TABLE.specs[f"{device}/{metric}"]
    return f"{spec.prefix}{spec.key}{value} {round(t * 1_000_000)}"


def statuses(influx) -> dict[str, dict]:
    rows = [r for s in influx.query('SELECT * FROM "device_status"', epoch="u") for r in s.rows()]
    return {r["device"]: r for r in rows}


def test_the_status_builder_is_the_contracts_line():
    d = REGISTRY.devices["vs-sl-101"]
    assert CODES == {"ok": 0, "fault": 1, "silent": 2} and (STATUS_OK, STATUS_FAULT, STATUS_SILENT) == (
        "ok", "fault", "silent")
    assert status_line(d, "fault", 12.5, 7) == (
        f"device_status,device=vs-sl-101,gateway=gw-vs-01,gemeente=GM0626,kind=street_light,wijk=WK062600 "
        f'lat={d.lat!r},lon={d.lon!r},status="fault",code=1.0,age_s=12.5 7')
    with pytest.raises(ValueError, match="one of ok, fault, silent"):
        status_line(d, "broken", 1.0, 7)
    assert classify(None, True, 10**12, 1800) == ("silent", -1.0)
    assert classify(10**12 - 1_800_000_000, False, 10**12, 1800) == ("silent", 1800.0)
    assert classify(10**12 - 1_000_000, True, 10**12, 1800) == ("fault", 1.0)
    assert classify(10**12 + 5, False, 10**12, 1800) == ("ok", 0.0)
    assert look_back(1800) == 3600 and look_back(86400) == 86400 + 3600


def test_ok_fault_and_silent_from_what_influxdb_holds(influx):
    t = boundary()
    influx.write("\n".join([
        reading("vs-sl-101", "power", "8.0", t - 100),  # ok, 100 s
        reading("vs-sl-102", "power", "8.0", t - 90),  # fault: the latest lamp_failure is true
        reading("vs-sl-102", "lamp_failure", "true", t - 90),
        reading("vs-sl-103", "lamp_failure", "true", t - 600),  # failed, then mended: ok
        reading("vs-sl-103", "power", "8.0", t - 60),
        reading("vs-sl-103", "lamp_failure", "false", t - 60),
        reading("vs-sl-201", "power", "8.0", t - 2000),  # silent, its age known
        reading("vs-sl-203", "power", "8.0", t - 1900),  # silent wins over fault
        reading("vs-sl-203", "lamp_failure", "true", t - 1900),
        reading("vs-sl-204", "power", "8.0", t - 50),
        reading("vs-sl-204", "power", "8.0", t + 30),  # after the round's time: not counted
        reading("vs-rg-001", "rain_intensity", "0.5", t - 10),
        reading("vs-ps-201", "occupied", "true", t - 5),
        reading("ws-oc-101", "presence", "false", t - 1),
        reading("ws-tl-101", "bike_priority", "false", t - 20),
        reading("ws-sl-101", "power", "8.0", t - 4000),  # beyond the look-back: silent, no age
    ]))
    job = DeviceStatusJob(influx, lambda: REGISTRY, interval=INTERVAL, silent_after=1800)
    assert job.run_once(now=t + 3) == len(REGISTRY.devices)
    got = statuses(influx)
    assert set(got) == set(REGISTRY.devices)
    expected = {"vs-sl-101": ("ok", 100.0), "vs-sl-102": ("fault", 90.0), "vs-sl-103": ("ok", 60.0),
                "vs-sl-201": ("silent", 2000.0), "vs-sl-203": ("silent", 1900.0), "vs-sl-204": ("ok", 50.0),
                "vs-rg-001": ("ok", 10.0), "vs-ps-201": ("ok", 5.0), "ws-oc-101": ("ok", 1.0),
                "ws-tl-101": ("ok", 20.0)}
    for device, row in got.items():
        status, age = expected.get(device, ("silent", -1.0))
        assert (row["status"], row["age_s"], row["code"]) == (status, age, CODES[status]), device
        d = REGISTRY.devices[device]
        assert row["time"] == t * 1_000_000
        assert (row["kind"], row["gateway"], row["gemeente"], row["wijk"]) == (d.kind, d.gateway, d.gemeente, d.wijk)
        assert (row["lat"], row["lon"]) == (d.lat, d.lon)
    # The job's fast lines are exactly the builder's (H5a writes the simulated day with the builder).
    lines = job.lines(t + 3)
    assert lines[0] == status_line(REGISTRY.devices["vs-sl-101"], "ok", 100.0, t * 1_000_000)
    assert lines[1] == status_line(REGISTRY.devices["vs-sl-102"], "fault", 90.0, t * 1_000_000)


def test_silent_after_is_configurable(influx):
    t = boundary()
    influx.write(reading("vs-sl-101", "power", "8.0", t - 100))
    DeviceStatusJob(influx, lambda: REGISTRY, interval=INTERVAL, silent_after=60).run_once(now=t)
    assert statuses(influx)["vs-sl-101"]["status"] == "silent"


def test_two_workers_write_the_same_point(influx, influxd):
    t = boundary()
    influx.write(reading("vs-sl-101", "power", "8.0", t - 100))
    other = InfluxClient(InfluxConfig(influxd.url, influx.config.database))
    try:
        a = DeviceStatusJob(influx, lambda: REGISTRY, interval=INTERVAL)
        b = DeviceStatusJob(other, lambda: REGISTRY, interval=INTERVAL)
        a.run_once(now=t + 2)
        first = statuses(influx)
        b.run_once(now=t + 9)  # another worker, later in the same interval
    finally:
        other.close()
    total = influx.query('SELECT count("code") FROM "device_status"')[0].rows()[0]["count"]
    assert total == len(REGISTRY.devices)
    assert statuses(influx) == first


def test_an_influxdb_outage_does_not_kill_the_thread(influx, influxd):
    proxy = FaultProxy(influxd.url)
    client = InfluxClient(InfluxConfig(proxy.url, influx.config.database, timeout=2))
    job = DeviceStatusJob(client, lambda: REGISTRY, interval=0.2)
    try:
        proxy.fail_with = 500
        job.start()
        wait_for(lambda: job.failures >= 3, 10)
        assert job.runs == 0 and job._thread.is_alive()
        proxy.fail_with = None
        wait_for(lambda: job.runs >= 2, 10)
        assert len(statuses(influx)) == len(REGISTRY.devices)
    finally:
        job.stop()
        client.close()
        proxy.close()
    assert not job._thread.is_alive()


def test_classified_devices_get_a_status_too(influx, tmp_path):
    data = json.loads(demo_registry_path().read_text())
    for f in data["features"]:
        if f["properties"]["id"] in ("vs-sl-101", "vs-oc-101"):
            f["properties"]["classification"] = "vertrouwelijk"
    path = tmp_path / "registry.geojson"
    path.write_text(json.dumps(data))
    registry = load(path)
    t = boundary()
    influx.write(reading("vs-sl-101", "power", "8.0", t - 100))
    DeviceStatusJob(influx, lambda: registry, interval=INTERVAL).run_once(now=t)
    got = statuses(influx)
    assert got["vs-sl-101"]["status"] == "ok" and got["vs-oc-101"]["status"] == "silent"


def test_a_reloaded_registry_is_followed(influx, tmp_path):
    data = json.loads(demo_registry_path().read_text())
    data["features"] = [f for f in data["features"] if f["properties"]["id"] != "vs-sl-101"]
    smaller = load(_write(tmp_path / "r.geojson", data))
    current = [REGISTRY]
    job = DeviceStatusJob(influx, lambda: current[0], interval=INTERVAL)
    t = boundary()
    assert len(job.lines(t)) == len(REGISTRY.devices)
    current[0] = smaller
    lines = job.lines(t)
    assert len(lines) == len(REGISTRY.devices) - 1 and not any("device=vs-sl-101," in ln for ln in lines)


def _write(path, data):
    path.write_text(json.dumps(data))
    return path
