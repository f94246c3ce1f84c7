"""At least once under faults: kill -9 of influxd and of the ingest, InfluxDB refusing writes, a full spool.

Each test streams readings with known (device, microsecond) keys through real mosquitto into real
influxd and checks at the end that InfluxDB holds exactly what was sent: every key once, right value.
"""

import dataclasses
import time

import pytest

from core.influx import InfluxClient, InfluxConfig
from core.settings import InfluxSettings
from deploy.influxdb import start_influxd
from deploy.processes import new_password
from tests.conftest import settings_for, wait_for
from tests.ingest.conftest import FAST
from tests.ingest.support import FaultProxy, Stream, count, spawn_ingest, stored_power, sum_of, wait_subscribed

pytestmark = pytest.mark.integration


def assert_exactly(influx, *streams, timeout=60):
    expected = {k: v for s in streams for k, v in s.expected.items()}
    wait_for(lambda: count(influx, "street_light", "power") >= len(expected), timeout)
    time.sleep(0.3)  # anything extra (a duplicate key cannot exist; a stray point could) shows now
    assert stored_power(influx) == expected


def test_kill_9_of_influxd_restarted_20_s_later_loses_nothing(start_ingest, influxd, influx, mqtt_client):
    ingest = start_ingest()
    stream = Stream(mqtt_client("gw-vs-01"), "gw-vs-01", batches=300, per_batch=20, interval=0.08).start()
    wait_for(lambda: stream.sent_batches > 20, 10)
    influxd.kill()
    wait_for(lambda: ingest.metrics.value("smartcity_ingest_spooled_batches_total") > 0, 15)
    assert ingest.health()["status"] == "degraded"
    time.sleep(20)
    restarted = influxd.restart()
    try:
        stream.join()
        assert_exactly(influx, stream)
        wait_for(lambda: len(ingest.spool) == 0, 20)
        assert ingest.metrics.value("smartcity_ingest_replayed_batches_total") > 0
        assert ingest.health()["status"] == "ok"
    finally:
        restarted.stop()


def test_kill_9_of_the_ingest_restarted_with_the_same_worker_name_loses_nothing(
        broker, influxd, influx, mqtt_client, tmp_path):
    settings = InfluxSettings(influxd.url, influx.config.database)
    worker = spawn_ingest(tmp_path, "k1", settings_for(broker, "ingest"), settings)
    try:
        wait_subscribed(tmp_path, "k1")
        stream = Stream(mqtt_client("gw-vs-01"), "gw-vs-01", batches=150, per_batch=20, interval=0.02).start()
        wait_for(lambda: count(influx, "street_light", "power") > 500, 15)
        worker.process.kill()  # SIGKILL: whatever it held and had not acknowledged is redelivered
        worker.process.wait(5)
        time.sleep(1)
        worker = spawn_ingest(tmp_path, "k1", settings_for(broker, "ingest"), settings)
        stream.join()
        assert_exactly(influx, stream)
    finally:
        worker.stop()


def test_kill_9_while_influxdb_is_down_loses_nothing_spooled_or_held(
        broker, influxd, influx, mqtt_client, tmp_path):
    """Acknowledged batches are in the spool on disk; a full spool holds the rest unacknowledged."""
    settings = InfluxSettings(influxd.url, influx.config.database)
    args = ("--spool-max-bytes", "40000")
    worker = spawn_ingest(tmp_path, "k2", settings_for(broker, "ingest"), settings, *args)
    try:
        wait_subscribed(tmp_path, "k2")
        influxd.kill()
        stream = Stream(mqtt_client("gw-vs-01"), "gw-vs-01", batches=100, per_batch=20, interval=0.01).start()
        stream.join()
        spool_dir = tmp_path / "state" / "ingest" / "k2" / "spool"
        wait_for(lambda: any(spool_dir.glob("*.spool")), 10)
        time.sleep(1)
        worker.process.kill()
        worker.process.wait(5)
        restarted = influxd.restart()
        try:
            worker = spawn_ingest(tmp_path, "k2", settings_for(broker, "ingest"), settings, *args)
            assert_exactly(influx, stream)
            wait_for(lambda: not any(spool_dir.glob("*.spool")), 20)
        finally:
            worker.stop()
            restarted.stop()
    finally:
        worker.stop()


def test_two_workers_share_one_stream_with_no_false_gaps(start_ingest, influx, mqtt_client):
    """Defect 4: with two workers each counted gaps over half the batches (20 batches, 18 false gaps)."""
    a, b = start_ingest("a"), start_ingest("b")
    assert a.worker.client_id != b.worker.client_id
    gw = mqtt_client("gw-vs-01")
    gw.publish("smartcity/v1/gw/gw-vs-01/status", b'{"state":"online","seq":0,"since":%.6f}' % time.time(),
               qos=1, retain=True)
    stream = Stream(gw, "gw-vs-01", batches=40, per_batch=25, interval=0.01).start()
    stream.join()
    gw.publish("smartcity/v1/gw/gw-vs-01/acks", b'{"id":"c1","device":"vs-sl-101","status":"applied"}', qos=1)
    assert_exactly(influx, stream)
    wait_for(lambda: count(influx, "command_ack", "id") == 1 and sum_of(influx, "ingest_batch", "batches") == 40)
    time.sleep(0.3)
    assert count(influx, "gateway_status", "state") == 1  # one point per status message, not one per worker
    assert count(influx, "command_ack", "id") == 1
    got_a = a.metrics.value("smartcity_ingest_messages_total", {"channel": "readings"})
    got_b = b.metrics.value("smartcity_ingest_messages_total", {"channel": "readings"})
    assert got_a > 0 and got_b > 0 and got_a + got_b == 40
    for worker in (a, b):
        counts = worker.audit_sequences()["gw-vs-01"]
        assert (counts.batches, counts.gaps, counts.duplicates) == (40, 0, 0)


def test_a_dropped_database_is_recreated_and_nothing_lost(start_ingest, influx, mqtt_client):
    """Defect 2: a 404 was a permanent reject: the messages were acknowledged and the readings gone."""
    ingest = start_ingest()
    gw = mqtt_client("gw-vs-01")
    before = Stream(gw, "gw-vs-01", batches=10, per_batch=20, interval=0.01).start()
    before.join()
    assert_exactly(influx, before)
    # Dropped between writes: InfluxDB's DROP also discards writes it answers 204 while it runs.
    influx.query(f'DROP DATABASE "{influx.config.database}"')
    after = Stream(gw, "gw-vs-01", batches=40, per_batch=20, interval=0.01, first_seq=10,
                   t0=before.t0 + 10).start()
    after.join()
    assert_exactly(influx, after)
    assert ingest.metrics.value("smartcity_ingest_write_retries_total", {"reason": "404"}) >= 1


@pytest.fixture
def auth_influxd(tmp_path):
    server = start_influxd(tmp_path / "auth-influx", admin=("admin", new_password()))
    server.admin_query('CREATE DATABASE "smartcity"')
    server.admin_query("CREATE USER \"ingest\" WITH PASSWORD 'right-one'")
    server.admin_query('GRANT ALL ON "smartcity" TO "ingest"')
    yield server
    server.stop()


def test_401_and_403_are_retried_until_fixed_and_nothing_lost(start_ingest, auth_influxd, mqtt_client):
    """Defect 2: 401/403 after a credential change were permanent rejects."""
    client = InfluxClient(InfluxConfig(auth_influxd.url, "smartcity", "ingest", "right-one"))
    ingest = start_ingest(influx_client=client)
    gw = mqtt_client("gw-vs-01")
    streams = []

    def stream_while(fault_reason):
        # Published after the fault is in place, so its writes must meet it.
        n = len(streams)
        streams.append(Stream(gw, "gw-vs-01", batches=20, per_batch=20, interval=0.01, first_seq=n * 20,
                              t0=float(int(time.time()) - 600 + n * 10)).start())
        streams[-1].join()
        wait_for(lambda: ingest.metrics.value("smartcity_ingest_write_retries_total", {"reason": fault_reason}) > 0,
                 30)

    try:
        auth_influxd.admin_query("SET PASSWORD FOR \"ingest\" = 'changed-by-an-operator'")
        stream_while("401")
        auth_influxd.admin_query("SET PASSWORD FOR \"ingest\" = 'right-one'")
        auth_influxd.admin_query('REVOKE ALL ON "smartcity" FROM "ingest"')
        stream_while("403")
        auth_influxd.admin_query('GRANT ALL ON "smartcity" TO "ingest"')
        assert_exactly(client, *streams)
    finally:
        client.close()


@pytest.mark.parametrize("status", [500, 503, 429])
def test_server_errors_and_rate_limits_are_retried_and_nothing_lost(start_ingest, influxd, influx, mqtt_client,
                                                                    status):
    proxy = FaultProxy(influxd.url)
    client = InfluxClient(InfluxConfig(proxy.url, influx.config.database))
    try:
        ingest = start_ingest(influx_client=client)
        stream = Stream(mqtt_client("gw-vs-01"), "gw-vs-01", batches=80, per_batch=20, interval=0.02).start()
        wait_for(lambda: stream.sent_batches > 10, 10)
        proxy.fail_with = status
        wait_for(lambda: proxy.failed >= 3, 10)
        time.sleep(1)
        proxy.fail_with = None
        stream.join()
        assert_exactly(influx, stream)
        assert ingest.metrics.value("smartcity_ingest_write_retries_total", {"reason": str(status)}) >= 3
    finally:
        client.close()
        proxy.close()


def test_a_full_spool_stops_acknowledging_and_loses_nothing(start_ingest, influxd, influx, mqtt_client):
    ingest = start_ingest(spool_max_bytes=60_000)
    influxd.kill()
    stream = Stream(mqtt_client("gw-vs-01"), "gw-vs-01", batches=80, per_batch=20, interval=0.01).start()
    stream.join()
    wait_for(lambda: ingest.metrics.value("smartcity_ingest_spool_full_total") > 0, 15)
    health = ingest.health()
    assert health["status"] == "failing" and "bound 60000" in health["spool_full"]
    assert 0 < ingest.spool.size_bytes <= 60_000
    assert health["unacknowledged"] > 0  # held, not acknowledged: the broker still has them
    restarted = influxd.restart()
    try:
        assert_exactly(influx, stream)
        wait_for(lambda: ingest.health()["status"] == "ok", 20)
    finally:
        restarted.stop()


def test_a_graceful_stop_while_influxdb_is_down_spools_and_the_next_run_replays(
        start_ingest, influxd, influx, mqtt_client):
    ingest = start_ingest("g1", pipeline=dataclasses.replace(FAST, spool_after=30))
    influxd.kill()
    stream = Stream(mqtt_client("gw-vs-01"), "gw-vs-01", batches=30, per_batch=20, interval=0.01).start()
    stream.join()
    wait_for(lambda: ingest.health()["pending_lines"] + ingest.health()["unacknowledged"] > 0, 5)
    ingest.stop()  # spool_after 30 s would wait; a stop spools at once instead
    assert len(ingest.spool) > 0
    ingest.worker.release()
    restarted = influxd.restart()
    try:
        start_ingest("g1")
        assert_exactly(influx, stream)
    finally:
        restarted.stop()


def test_a_retired_worker_strands_nothing(start_ingest, influx, mqtt_client):
    """mosquitto queues a share group's messages for offline members; retiring a worker drains its session."""
    a = start_ingest("a")
    b = start_ingest("b")
    b.stop()  # scaled down: its persistent session stays in the group
    b.worker.release()
    gw = mqtt_client("gw-vs-01")
    stream = Stream(gw, "gw-vs-01", batches=40, per_batch=10, interval=0.005).start()
    stream.join()
    time.sleep(1)
    stranded = len(stream.expected) - count(influx, "street_light", "power")
    assert stranded > 0  # the broker gave b's offline session its share
    assert a.metrics.value("smartcity_ingest_messages_total", {"channel": "readings"}) < 40
    retiring = start_ingest("b", connect=False)
    drained = retiring.retire(quiet_seconds=1.0, timeout=30)
    assert drained > 0
    assert_exactly(influx, stream)
    later = Stream(gw, "gw-vs-01", batches=20, per_batch=10, interval=0.005, first_seq=40, t0=stream.t0 + 100).start()
    later.join()
    assert_exactly(influx, stream, later)  # the ended session takes no share any more: all reach a
