"""The ingest service against real mosquitto and influxd: the happy path and the defects of the ingest issue."""

import time

import pytest

from core import jsonfast, topics
from core.commands import Action, Command
from core.senml import Reading, encode
from core.topics import Channel
from ingest.dead_letters import list_dead_letters
from tests.conftest import wait_for
from tests.ingest.support import Stream, count, stored_power, sum_of

pytestmark = pytest.mark.integration

READINGS = topics.topic("gw-vs-01", Channel.READINGS)


def batch(n, t0, device="vs-sl-101", seq=0):
    return encode([Reading(device, "power", float(i), t0 + i * 0.001, "W") for i in range(n)], seq)


def test_readings_commands_and_acks_reach_influxdb(start_ingest, influx, mqtt_client):
    ingest = start_ingest()
    gw = mqtt_client("gw-vs-01")
    t0 = time.time() - 60
    for seq in range(3):
        gw.publish(READINGS, batch(100, t0 + seq, seq=seq), qos=1).wait_for_publish(5)
    gw.publish(topics.topic("gw-vs-01", Channel.ACKS),
               b'{"id":"c1","device":"vs-sl-101","status":"applied","detail":""}', qos=1)
    mqtt_client("rules").publish(topics.topic("gw-vs-01", Channel.COMMANDS),
                                 Command("vs-sl-101", Action.DIM, {"level": 20}, "rule:t").to_json(), qos=1)
    wait_for(lambda: count(influx, "street_light", "power") == 300)
    wait_for(lambda: count(influx, "command", "id") == 1 and count(influx, "command_ack", "id") == 1)
    assert ingest.metrics.total("smartcity_ingest_dead_letters_total") == 0
    assert ingest.metrics.value("smartcity_ingest_records_accepted_total") == 300


def test_a_non_finite_time_cannot_stop_the_consumer(start_ingest, influx, mqtt_client):
    """Defect 1: bt + t = inf raised OverflowError in paho's thread, and nothing was consumed after it."""
    ingest = start_ingest()
    gw = mqtt_client("gw-vs-01")
    gw.publish(READINGS, b'[{"bn":"vs-sl-101/","bt":1e308,"t":1e308,"seq":0,"n":"power","v":1}]', qos=1)
    gw.publish(READINGS, b'[{"bn":"vs-sl-101/","seq":1,"n":"power","v":1,"u":5}]', qos=1)  # u must be a string
    gw.publish(READINGS, batch(5, time.time(), seq=2), qos=1)
    wait_for(lambda: count(influx, "street_light", "power") == 5)
    wait_for(lambda: len(list_dead_letters(influx)) == 2)
    details = sorted(dl.detail for dl in list_dead_letters(influx))
    assert "'u' must be a string" in details[0] and "time out of range" in details[1]
    assert ingest.metrics.value("smartcity_ingest_rejected_records_total", {"reason": "bad_record"}) == 2
    assert ingest.link.stats.callback_errors == 0


def test_an_unexpected_error_costs_one_message_not_the_consumer(start_ingest, influx, mqtt_client, monkeypatch):
    ingest = start_ingest()
    original = ingest._converter._readings
    calls = []

    def explode_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("a bug")
        return original(*args, **kwargs)

    monkeypatch.setattr(ingest._converter, "_readings", explode_once)
    gw = mqtt_client("gw-vs-01")
    gw.publish(READINGS, batch(3, time.time(), seq=0), qos=1)
    gw.publish(READINGS, batch(4, time.time() - 5, seq=1), qos=1)
    wait_for(lambda: count(influx, "street_light", "power") == 4)
    wait_for(lambda: [dl.reason for dl in list_dead_letters(influx)] == ["internal_error"])
    assert ingest.metrics.value("smartcity_ingest_callback_errors_total") == 1


def test_bad_messages_are_dead_lettered_and_good_records_beside_them_kept(start_ingest, influx, mqtt_client):
    start_ingest()
    gw = mqtt_client("gw-vs-01")
    gw.publish(READINGS, b"\x00garbage" * 200, qos=1)
    mixed = jsonfast.loads(batch(5, time.time(), seq=1))
    mixed.append({"bn": "intruder/", "n": "power", "v": 1})
    mixed.append({"bn": "vs-sl-102/", "n": "power", "v": 1, "u": "furlong"})
    gw.publish(READINGS, jsonfast.dumps(mixed), qos=1)
    gw.publish(topics.topic("gw-vs-01", Channel.STATUS), b"[1,2]", qos=1)
    wait_for(lambda: count(influx, "street_light", "power") == 5)
    wait_for(lambda: len(list_dead_letters(influx)) == 4)
    by_reason = {dl.reason: dl for dl in list_dead_letters(influx)}
    assert set(by_reason) == {"bad_pack", "unknown_device", "wrong_unit", "bad_status"}
    garbage = by_reason["bad_pack"]
    assert garbage.gateway == "gw-vs-01" and garbage.topic == READINGS
    assert garbage.payload_head.startswith("\\x00garbage") and garbage.payload_head.endswith("(1600 bytes)")
    assert "'furlong'" in by_reason["wrong_unit"].detail
    assert list_dead_letters(influx, reason="wrong_unit")[0].count == 1


def test_a_unit_that_does_not_match_the_registry_is_not_stored(start_ingest, influx, mqtt_client):
    """Defect 8: a record with "u": "furlong" was stored and not counted."""
    ingest = start_ingest()
    gw = mqtt_client("gw-vs-01")
    now = time.time()
    pack = [{"bn": "vs-sl-101/", "bt": now, "seq": 0, "n": "power", "v": 3, "u": "furlong"},
            {"n": "energy", "v": 1.5, "u": "kWh"}]
    gw.publish(READINGS, jsonfast.dumps(pack), qos=1)
    wait_for(lambda: count(influx, "street_light", "energy") == 1)
    assert count(influx, "street_light", "power") == 0
    assert ingest.metrics.value("smartcity_ingest_rejected_records_total", {"reason": "wrong_unit"}) == 1


def test_readings_outside_the_time_bounds_are_dead_lettered(start_ingest, influx, mqtt_client):
    """Defects 5 and 8: a reading dated 2100 was stored and then served as the device's latest."""
    start_ingest()
    gw = mqtt_client("gw-vs-01")
    year_2100 = 4_102_444_800.0
    gw.publish(READINGS, encode([Reading("vs-sl-101", "power", 9.0, year_2100, "W"),
                                 Reading("vs-sl-101", "power", 1.0, time.time() - 8 * 86400, "W"),
                                 Reading("vs-sl-101", "power", 2.0, time.time(), "W")], 0), qos=1)
    wait_for(lambda: count(influx, "street_light", "power") == 1)
    wait_for(lambda: {dl.reason for dl in list_dead_letters(influx)} == {"future", "too_late"})
    assert influx.query('SELECT last("power") FROM "street_light"')[0].rows()[0]["last"] == 2.0


def test_two_readings_in_the_same_millisecond_are_two_points(start_ingest, influx, mqtt_client):
    """Defect 7: at ms precision a continuous RG-15 report and a poll reply became one point."""
    start_ingest()
    t = float(int(time.time()) - 10)
    pack = encode([Reading("vs-rg-001", "rain_intensity", 0.5, t + 0.0001, "mm/h"),
                   Reading("vs-rg-001", "rain_intensity", 0.7, t + 0.0004, "mm/h")], 0)
    mqtt_client("gw-vs-01").publish(READINGS, pack, qos=1)
    wait_for(lambda: count(influx, "rain_gauge", "rain_intensity") == 2)


def test_a_standard_pack_without_seq_is_accepted_as_unsequenced(start_ingest, influx, mqtt_client):
    ingest = start_ingest()
    now = time.time()
    pack = jsonfast.dumps([{"bn": "vs-sl-101/", "bt": now, "n": "power", "u": "W", "v": 4.0},
                           {"n": "dim_level", "u": "%", "v": 50}])
    mqtt_client("gw-vs-01").publish(READINGS, pack, qos=1)
    wait_for(lambda: count(influx, "street_light", "dim_level") == 1)
    assert ingest.metrics.value("smartcity_ingest_unsequenced_batches_total", {"gateway": "gw-vs-01"}) == 1
    assert count(influx, "ingest_batch", "seqs") == 0


def test_a_gateway_cannot_publish_as_another(start_ingest, influx, mqtt_client):
    """The broker ACL confines each gateway account to its own topics."""
    start_ingest()
    intruder = mqtt_client("gw-test")
    intruder.publish(READINGS, batch(5, time.time()), qos=1).wait_for_publish(5)
    own = mqtt_client("gw-vs-01")
    own.publish(READINGS, batch(1, time.time()), qos=1)
    wait_for(lambda: count(influx, "street_light", "power") == 1)
    time.sleep(0.3)
    assert count(influx, "street_light", "power") == 1


def test_sequence_gaps_are_derived_from_what_is_stored(start_ingest, influx, mqtt_client):
    ingest = start_ingest()
    gw = mqtt_client("gw-vs-01")
    for seq in (0, 1, 4, 4):
        gw.publish(READINGS, batch(1, time.time() - seq, seq=seq), qos=1)
    wait_for(lambda: sum_of(influx, "ingest_batch", "batches") == 4)
    counts = ingest.audit_sequences()["gw-vs-01"]
    assert (counts.batches, counts.gaps, counts.duplicates) == (4, 2, 1)
    assert ingest.metrics.value("smartcity_ingest_sequence_gaps", {"gateway": "gw-vs-01"}) == 2


def test_a_steady_stream_is_stored_exactly(start_ingest, influx, mqtt_client):
    start_ingest()
    stream = Stream(mqtt_client("gw-vs-01"), "gw-vs-01", batches=40, per_batch=50, interval=0.005).start()
    stream.join()
    wait_for(lambda: count(influx, "street_light", "power") == len(stream.expected), 20)
    assert stored_power(influx) == stream.expected


def test_edge_health_counters_are_stored_and_bad_ones_dead_lettered_beside_the_state(start_ingest, influx,
                                                                                        mqtt_client):
    start_ingest()
    gw = mqtt_client("gw-vs-01")
    status = topics.topic("gw-vs-01", Channel.STATUS)
    now = time.time()
    good = {"state": "online", "since": now - 100, "seq": 7, "at": now - 1,
            "health": {"queue_depth": 12, "readings_published": 340, "frames_rejected_bad_mic": 2, "uptime_s": 99.5}}
    gw.publish(status, jsonfast.dumps(good), qos=1).wait_for_publish(5)
    wait_for(lambda: count(influx, "gateway_health", "queue_depth") == 1)
    rows = [r for s in influx.query('SELECT * FROM "gateway_health"') for r in s.rows()]
    assert rows[0]["readings_published"] == 340.0 and rows[0]["frames_rejected_bad_mic"] == 2.0
    assert rows[0]["gateway"] == "gw-vs-01"
    # Integers and floats of one counter share one field type: a later float never clashes.
    good["health"] = {"queue_depth": 0.5}
    good["at"] = now
    gw.publish(status, jsonfast.dumps(good), qos=1).wait_for_publish(5)
    wait_for(lambda: count(influx, "gateway_health", "queue_depth") == 2)
    for health in ({"Queue depth": 1}, {"queue_depth": "full"}, [1, 2]):
        gw.publish(status, jsonfast.dumps({"state": "online", "since": now - 50, "health": health}), qos=1)
    wait_for(lambda: len(list_dead_letters(influx, reason="bad_health")) == 3)
    details = " ".join(dl.detail for dl in list_dead_letters(influx, reason="bad_health"))
    for fragment in ("lower-case", "finite number", "object of 1-100"):
        assert fragment in details
    # The state beside the bad counters is still stored.
    wait_for(lambda: count(influx, "gateway_status", "state") == 2)


def rows_of(influx, measurement):
    return [r for s in influx.query(f'SELECT * FROM "{measurement}"') for r in s.rows()]


def test_gateway_and_command_points_carry_the_registrys_gemeente_and_wijk(start_ingest, influx, mqtt_client):
    """The dashboards filter every panel by gemeente (and wijk): the ingest tags what it can from the registry."""
    start_ingest()
    gw = mqtt_client("gw-vs-01")
    now = time.time()
    gw.publish(topics.topic("gw-vs-01", Channel.STATUS),
               jsonfast.dumps({"state": "online", "since": now - 10, "seq": 0, "at": now, "health": {"uptime_s": 9}}),
               qos=1).wait_for_publish(5)
    gw.publish(READINGS, batch(2, now - 5, seq=1), qos=1).wait_for_publish(5)
    gw.publish(topics.topic("gw-vs-01", Channel.ACKS),
               b'{"id":"c1","device":"vs-sl-201","status":"applied","detail":""}', qos=1).wait_for_publish(5)
    gw.publish(topics.topic("gw-vs-01", Channel.ACKS),
               b'{"id":"c2","device":"nobody","status":"rejected","detail":"unknown"}', qos=1).wait_for_publish(5)
    rules = mqtt_client("rules")
    rules.publish(topics.topic("gw-vs-01", Channel.COMMANDS),
                  Command("vs-sl-201", Action.DIM, {"level": 20}, "rule:t").to_json(), qos=1).wait_for_publish(5)
    rules.publish(topics.topic("gw-vs-01", Channel.COMMANDS),
                  Command("nobody", Action.DIM, {"level": 30}, "rule:t").to_json(), qos=1).wait_for_publish(5)
    # A gateway the registry does not know (it has a broker account): no gemeente rather than a wrong one.
    mqtt_client("gw-test").publish(topics.topic("gw-test", Channel.STATUS),
                                   jsonfast.dumps({"state": "online", "since": now - 3}), qos=1).wait_for_publish(5)
    wait_for(lambda: count(influx, "gateway_status", "state") == 2 and count(influx, "command", "id") == 2
             and count(influx, "command_ack", "id") == 2 and count(influx, "ingest_batch", "seqs") == 1)
    status = {r["gateway"]: r["gemeente"] for r in rows_of(influx, "gateway_status")}
    assert status == {"gw-vs-01": "GM0626", "gw-test": None}
    assert [r["gemeente"] for r in rows_of(influx, "gateway_health")] == ["GM0626"]
    assert [r["gemeente"] for r in rows_of(influx, "ingest_batch")] == ["GM0626"]
    for measurement in ("command", "command_ack"):
        place = {r["device"]: (r["gemeente"], r["wijk"]) for r in rows_of(influx, measurement)}
        assert place == {"vs-sl-201": ("GM0626", "WK062601"), "nobody": (None, None)}, measurement
