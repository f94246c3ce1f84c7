"""The ingest service against real mosquitto and influxd."""

import time

import pytest

from core import jsonfast, topics
from core.commands import Action, Command
from core.registry import WatchedRegistry
from core.senml import Reading, encode
from core.topics import Channel
from ingest.service import IngestService
from smartcity.data import demo_registry_path
from smartcity.services import start_influxd
from tests.conftest import settings_for, wait_for

pytestmark = pytest.mark.integration


def count(influx, measurement, field):
    series = influx.query(f'SELECT count("{field}") FROM "{measurement}"')
    return sum(int(r["count"]) for s in series for r in s.rows())


@pytest.fixture
def ingest(broker, influx):
    service = IngestService(settings_for(broker, "ingest"), influx, WatchedRegistry(demo_registry_path()),
                            client_id="test-ingest", flush_interval=0.05)
    service.start()
    wait_for(service.connected.is_set, 5)
    time.sleep(0.2)  # let the SUBSCRIBE land before anything is published
    yield service
    service.stop()


def readings_batch(n, t0, device="vs-sl-101"):
    return [Reading(device, "power", float(i), t0 + i * 0.001, "W") for i in range(n)]


def test_readings_commands_and_acks_reach_influxdb(ingest, influx, mqtt_client):
    gw = mqtt_client("gw-vs-01")
    t0 = time.time() - 60
    for seq in range(3):
        gw.publish(topics.topic("gw-vs-01", Channel.READINGS),
                   encode(readings_batch(100, t0 + seq), seq), qos=1).wait_for_publish(5)
    gw.publish(topics.topic("gw-vs-01", Channel.ACKS),
               b'{"id":"c1","device":"vs-sl-101","status":"applied","detail":""}', qos=1)
    mqtt_client("rules").publish(topics.topic("gw-vs-01", Channel.COMMANDS),
                                 Command("vs-sl-101", Action.DIM, {"level": 20}, "rule:t").to_json(), qos=1)
    wait_for(lambda: count(influx, "street_light", "power") == 300)
    wait_for(lambda: count(influx, "command", "id") == 1 and count(influx, "command_ack", "id") == 1)
    assert ingest.sequences.stats.gaps == 0
    assert ingest.stats.rejects.total == 0


def test_bad_messages_are_counted_and_never_stop_the_good_ones(ingest, influx, mqtt_client):
    gw = mqtt_client("gw-vs-01")
    readings_topic = topics.topic("gw-vs-01", Channel.READINGS)
    gw.publish(readings_topic, b"\x00garbage", qos=1)
    gw.publish(readings_topic, b'[{"n":"no-seq","v":1}]', qos=1)
    mixed = jsonfast.loads(encode(readings_batch(5, time.time()), 1))
    mixed.append({"bn": "intruder/", "n": "power", "v": 1})
    gw.publish(readings_topic, jsonfast.dumps(mixed), qos=1)
    wait_for(lambda: count(influx, "street_light", "power") == 5)
    assert ingest.stats.bad_messages == 2
    assert ingest.stats.rejects.counts["unknown_device"] == 1


def test_a_gateway_cannot_publish_as_another(ingest, influx, mqtt_client):
    """The broker ACL confines each gateway account to its own topics."""
    intruder = mqtt_client("gw-test")
    intruder.publish(topics.topic("gw-vs-01", Channel.READINGS), encode(readings_batch(5, time.time()), 0),
                     qos=1).wait_for_publish(5)
    own = mqtt_client("gw-vs-01")
    own.publish(topics.topic("gw-vs-01", Channel.READINGS), encode(readings_batch(1, time.time()), 0), qos=1)
    wait_for(lambda: count(influx, "street_light", "power") == 1)
    time.sleep(0.3)
    assert count(influx, "street_light", "power") == 1


def test_sequence_gaps_are_counted(ingest, mqtt_client):
    gw = mqtt_client("gw-vs-01")
    for seq in (0, 1, 4):
        gw.publish(topics.topic("gw-vs-01", Channel.READINGS), encode(readings_batch(1, time.time()), seq), qos=1)
    wait_for(lambda: ingest.stats.messages >= 3)
    assert ingest.sequences.stats.gaps == 2


def test_nothing_is_lost_while_influxdb_is_down(broker, influxd, influx, mqtt_client, tmp_path):
    """Messages are acknowledged to the broker only once written: an outage delays, never drops."""
    service = IngestService(settings_for(broker, "ingest"), influx, WatchedRegistry(demo_registry_path()),
                            client_id="test-ingest-outage", flush_interval=0.05)
    service.start()
    wait_for(service.connected.is_set, 5)
    time.sleep(0.2)
    gw = mqtt_client("gw-vs-01")
    influxd.stop()
    t0 = time.time() - 30
    for seq in range(10):
        gw.publish(topics.topic("gw-vs-01", Channel.READINGS), encode(readings_batch(50, t0 + seq), seq), qos=1)
    wait_for(lambda: service.stats.write_failures > 0, 10)
    http_port = int(influxd.url.rsplit(":", 1)[1])
    conf = (tmp_path / "influx" / "influxdb" / "influxdb.conf").read_text()
    rpc_port = int(conf.split('bind-address = "127.0.0.1:')[1].split('"')[0])
    restarted = start_influxd(tmp_path / "influx", http_port=http_port, rpc_port=rpc_port)
    try:
        wait_for(lambda: count(influx, "street_light", "power") == 500, 30)
    finally:
        service.stop()
        restarted.stop()
