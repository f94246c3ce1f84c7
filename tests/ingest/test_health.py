"""The ingest's service_health and gateway_sequence points, from a running IngestService into a real influxd."""

import time

import pytest

from core import topics
from core.senml import Reading, encode
from core.topics import Channel
from ingest.health import sequence_line
from ingest.sequence import SequenceCounts
from tests.conftest import wait_for
from tests.ingest.support import count

pytestmark = pytest.mark.integration

READINGS = topics.topic("gw-vs-01", Channel.READINGS)
DEVICES = ("vs-sl-101", "vs-sl-102", "vs-sl-103")


def health_rows(influx):
    q = 'SELECT * FROM "service_health" WHERE "service" = \'ingest\''
    return [r for s in influx.query(q) for r in s.rows()]


def test_the_sequence_builder():
    assert sequence_line("gw-1", "GM0626", SequenceCounts(batches=7, gaps=2, duplicates=1), 5) == (
        "gateway_sequence,gateway=gw-1,gemeente=GM0626 gaps=2.0,duplicates=1.0,batches=7.0 5")
    assert sequence_line("gw-x", None, SequenceCounts(1, 0, 0), 5).startswith("gateway_sequence,gateway=gw-x gaps=")


def test_service_health_has_the_intervals_rates_ages_and_counts(start_ingest, influx, mqtt_client):
    ingest = start_ingest(health_interval=3600)  # the reporter exists; the test takes its steps itself
    reporter = ingest.health_reporter
    assert reporter is not None and reporter.worker == "w1"
    t_a0 = time.monotonic()
    reporter.report_once()  # the interval under test starts here
    t_a1 = time.monotonic()
    wait_for(lambda: len(health_rows(influx)) == 1)
    gw = mqtt_client("gw-vs-01")
    now = time.time()
    n = 0
    for seq in range(3):
        # Reading times from now - 10 s to now - 5 s: the age mean is about 7.5 s, the max about 10 s.
        rs = [Reading(DEVICES[i % 3], "power", float(i), now - 10 + (seq * 100 + i) * 5 / 300, "W")
              for i in range(100)]
        gw.publish(READINGS, encode(rs, seq), qos=1).wait_for_publish(5)
        n += len(rs)
    gw.publish(READINGS, b"not senml", qos=1).wait_for_publish(5)  # a dead letter
    gw.publish(READINGS, encode([Reading("nobody", "power", 1.0, now, "W")], 3), qos=1).wait_for_publish(5)
    wait_for(lambda: count(influx, "street_light", "power") == n)
    wait_for(lambda: ingest.metrics.total("smartcity_ingest_dead_letters_total") == 2)
    wait_for(ingest.pipeline.idle)
    time.sleep(0.3)  # the last batch's ingest_batch point and dead letter are stored
    batches = count(influx, "ingest_batch", "seqs")
    time.sleep(1.0)
    t_b0 = time.monotonic()
    reporter.report_once()
    t_b1 = time.monotonic()
    wait_for(lambda: len(health_rows(influx)) == 2)
    row = max(health_rows(influx), key=lambda r: r["time"])
    assert (row["service"], row["worker"]) == ("ingest", "w1")
    longest, shortest = t_b1 - t_a0, t_b0 - t_a1
    assert n / longest <= row["records_per_s"] <= n / shortest
    # Stored in the interval: the readings, the batches' ingest_batch points, the two dead letters and the
    # first health point (submitted when the interval began, stored just after).
    points = n + batches + 2 + 1
    assert points / longest <= row["points_per_s"] <= points / shortest
    assert 0 < row["write_ms_mean"] <= row["write_ms_max"] < 5000
    assert 7000 < row["age_ms_mean"] < 10_000 < row["age_ms_max"] < 13_000
    assert row["age_ms_mean"] == pytest.approx(7500, abs=2500)
    assert (row["dead_letters"], row["rejected"]) == (2.0, 1.0)
    assert (row["spool_batches"], row["spool_bytes"], row["pending_lines"]) == (0.0, 0.0, 0.0)
    # Each interval starts from zero: in one where nothing happened the rates are 0 and the means of no
    # write are NaN, which service_health_line leaves out of the point.
    reporter._collect()
    fields = reporter._collect()
    assert (fields["records_per_s"], fields["points_per_s"], fields["dead_letters"]) == (0, 0, 0)
    assert all(fields[k] != fields[k] for k in ("write_ms_mean", "write_ms_max", "age_ms_mean", "age_ms_max"))


def test_the_reporter_thread_and_a_gap_in_gateway_sequence(start_ingest, influx, mqtt_client):
    ingest = start_ingest(health_interval=0.3, audit_interval=0.5)
    gw = mqtt_client("gw-vs-01")
    now = time.time()
    for seq in (0, 1, 2, 5):  # 3 and 4 never arrive
        gw.publish(READINGS, encode([Reading("vs-sl-101", "power", 1.0, now - 10 + seq, "W")], seq),
                   qos=1).wait_for_publish(5)
    wait_for(lambda: count(influx, "street_light", "power") == 4)

    def gaps():
        rows = [r for s in influx.query('SELECT * FROM "gateway_sequence"') for r in s.rows()]
        return [r for r in rows if r["gaps"] == 2.0]

    rows = wait_for(gaps, 10)
    assert rows[-1]["gateway"] == "gw-vs-01" and rows[-1]["gemeente"] == "GM0626"
    assert (rows[-1]["batches"], rows[-1]["duplicates"]) == (4.0, 0.0)
    wait_for(lambda: len(health_rows(influx)) >= 2, 10)
    assert ingest.health_reporter is not None and ingest.health_reporter.errors == 0
    # The points are on half-second boundaries: the workers' audits of one interval make one point.
    assert all(r["time"] % 500 == 0 for s in influx.query('SELECT * FROM "gateway_sequence"') for r in s.rows())
