"""LoRa frames -> readings: only authentic, fresh frames of registered devices count."""

from core.registry import load
from edge.cayenne_lpp import LppType, LppValue, encode
from edge.converters import LoraConverter
from edge.durable_queue import DurableQueue
from edge.edge_device import EdgeDevice
from edge.lora_frame import encode_uplink
from edge.lora_keys import KeyRing
from smartcity.data import demo_registry_path

DEVICES = [EdgeDevice.of(d) for d in load(demo_registry_path()).devices_of("gw-vs-01")]
LIGHT = next(d for d in DEVICES if d.kind == "street_light")
KEYS = KeyRing.generate()
KEY = KEYS.key_for(LIGHT.address)


def light_frame(fcnt, *extra, key=KEY):
    values = [LppValue(1, LppType.PERCENTAGE, 20), LppValue(2, LppType.POWER, 9), *extra]
    return encode_uplink(LIGHT.address, fcnt, encode(values), key)


def test_frames_become_readings_of_the_registered_device():
    conv = LoraConverter(DEVICES, KEYS)
    readings = conv.convert(light_frame(1), 1_700_000_000.0)
    assert {(r.device, r.metric, r.value, r.unit) for r in readings} == {
        (LIGHT.id, "dim_level", 20.0, "%"), (LIGHT.id, "power", 9.0, "W")}
    assert conv.last_fcnt == (LIGHT.address, 1)


def test_unknown_entries_are_counted_and_the_good_values_kept():
    conv = LoraConverter(DEVICES, KEYS)
    readings = conv.convert(light_frame(1, LppValue(9, LppType.HUMIDITY, 50.0)), 0.0)
    assert {r.metric for r in readings} == {"dim_level", "power"}
    assert conv.problems["bad_entries"] == 1


def test_bad_and_foreign_frames_are_counted_not_raised():
    conv = LoraConverter(DEVICES, KEYS)
    assert conv.convert(b"\x01\x02", 0.0) == []
    assert conv.convert(encode_uplink("DEADBEEF", 1, b"", bytes(16)), 0.0) == []
    assert conv.convert(encode_uplink(LIGHT.address, 2, b"\x01\x67\x01", KEY), 0.0) == []  # truncated LPP
    assert dict(conv.problems) == {"bad_frame": 1, "foreign_address": 1, "bad_payload": 1}


def test_a_forged_frame_is_refused_and_counted():
    """Anyone with a radio near a gateway could inject readings: without the key the MIC is wrong."""
    conv = LoraConverter(DEVICES, KEYS)
    assert conv.convert(light_frame(1, key=bytes(16)), 0.0) == []
    frame = bytearray(light_frame(2))
    frame[9] ^= 0x10  # a changed value in an authentic frame
    assert conv.convert(bytes(frame), 0.0) == []
    assert conv.problems["bad_mic"] == 2
    assert conv.last_fcnt is None
    assert conv.convert(light_frame(3), 0.0)  # the authentic ones still count


def test_a_replayed_frame_is_refused_and_counted():
    conv = LoraConverter(DEVICES, KEYS)
    first = light_frame(10)
    assert conv.convert(first, 0.0)
    assert conv.convert(first, 1.0) == []  # the same frame again
    assert conv.convert(light_frame(9), 1.0) == []  # an older one
    assert conv.problems["replay"] == 2
    assert conv.convert(light_frame(11), 2.0)


def test_counters_survive_a_restart_through_the_queue(tmp_path):
    queue = DurableQueue(tmp_path / "q.sqlite")
    conv = LoraConverter(DEVICES, KEYS, queue.counters())
    captured = light_frame(100)
    queue.extend(conv.convert(captured, 0.0), fcnt=conv.last_fcnt)
    queue.close()
    again = DurableQueue(tmp_path / "q.sqlite")
    restarted = LoraConverter(DEVICES, KEYS, again.counters())
    assert restarted.convert(captured, 5.0) == []  # replayed after the gateway restarted: still refused
    assert restarted.problems["replay"] == 1


def test_a_device_without_a_key_is_refused():
    conv = LoraConverter(DEVICES, KeyRing())
    assert conv.convert(light_frame(1), 0.0) == []
    assert conv.problems["no_key"] == 1


def test_frame_counter_gaps_count_lost_frames_but_a_large_jump_does_not():
    conv = LoraConverter(DEVICES, KEYS)
    for fcnt in (1, 2, 5, 6, 100_000, 100_001):
        conv.convert(light_frame(fcnt), 0.0)
    assert conv.lost_frames == 2  # 3 and 4; the jump to 100,000 is a node that started afresh
