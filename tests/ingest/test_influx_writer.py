"""The writer's error tiers against a real influxd: partial writes, bisection, transient errors."""

import pytest

from core.influx import InfluxClient, InfluxConfig
from deploy.processes import free_port
from ingest.influx_writer import InfluxWriter, TransientWriteError

pytestmark = pytest.mark.integration


def rows(influx):
    return sorted((r["d"], r["x"]) for s in influx.query('SELECT * FROM "m"') for r in s.rows())


def test_a_conflict_inside_one_batch_is_bisected_and_the_good_lines_stored(influx):
    """InfluxDB 1.x refuses a whole batch with an internal type conflict; the writer keeps the good lines."""
    lines = [f"m,d=a{i} x={i}.0 {i + 1}" for i in range(7)] + ["m,d=bad x=true 100"]
    result = InfluxWriter(influx).write(lines)
    assert (result.stored, result.refused_lines) == (7, 1)
    assert "field type conflict" in result.refused[0][1]
    assert len(rows(influx)) == 7


def test_a_partial_write_counts_what_influxdb_dropped(influx):
    influx.write(b"m,d=a x=1.0 1")
    result = InfluxWriter(influx).write(["m,d=b x=2.0 2", "m,d=c x=true 3", "m,d=d x=false 4", "m,d=e x=5.0 5"])
    assert (result.stored, result.refused_lines, result.requests) == (2, 2, 1)
    assert rows(influx) == [("a", 1.0), ("b", 2.0), ("e", 5.0)]


def test_a_missing_database_is_created_and_the_write_retried_by_the_caller(influxd):
    client = InfluxClient(InfluxConfig(influxd.url, "created_on_demand"))
    writer = InfluxWriter(client)
    with pytest.raises(TransientWriteError) as caught:
        writer.write(["m x=1.0 1"])
    assert caught.value.reason == "404"
    assert writer.write(["m x=1.0 1"]).stored == 1
    client.close()


def test_no_server_is_transient(tmp_path):
    client = InfluxClient(InfluxConfig(f"http://127.0.0.1:{free_port()}", "x", timeout=1))
    with pytest.raises(TransientWriteError) as caught:
        InfluxWriter(client).write(["m x=1.0 1"])
    assert caught.value.reason == "connection"
    client.close()
