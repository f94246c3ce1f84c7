from core.registry import load
from edge.cayenne_lpp import LppType, LppValue, encode
from edge.converters import LoraConverter
from edge.lora_frame import encode_uplink
from smartcity.data import demo_registry_path

DEVICES = load(demo_registry_path()).devices_of("gw-vs-01")
LIGHT = next(d for d in DEVICES if d.kind == "street_light")


def light_frame(fcnt, *extra):
    values = [LppValue(1, LppType.PERCENTAGE, 20), LppValue(2, LppType.POWER, 9), *extra]
    return encode_uplink(LIGHT.address, fcnt, encode(values))


def test_frames_become_readings_of_the_registered_device():
    conv = LoraConverter(DEVICES)
    readings = conv.convert(light_frame(1), 1_700_000_000.0)
    assert {(r.device, r.metric, r.value, r.unit) for r in readings} == {
        (LIGHT.id, "dim_level", 20.0, "%"), (LIGHT.id, "power", 9.0, "W")}


def test_unknown_entries_are_counted_and_the_good_values_kept():
    conv = LoraConverter(DEVICES)
    readings = conv.convert(light_frame(1, LppValue(9, LppType.HUMIDITY, 50.0)), 0.0)
    assert {r.metric for r in readings} == {"dim_level", "power"}
    assert conv.problems["bad_entries"] == 1


def test_bad_and_foreign_frames_are_counted_not_raised():
    conv = LoraConverter(DEVICES)
    assert conv.convert(b"\x01\x02", 0.0) == []
    assert conv.convert(encode_uplink("DEADBEEF", 1, b""), 0.0) == []
    assert conv.convert(encode_uplink(LIGHT.address, 2, b"\x01\x67\x01"), 0.0) == []  # truncated LPP
    assert dict(conv.problems) == {"bad_frame": 1, "foreign_address": 1, "bad_payload": 1}


def test_frame_counter_gaps_count_lost_frames_but_reboots_do_not():
    conv = LoraConverter(DEVICES)
    for fcnt in (1, 2, 5, 6, 0, 1):
        conv.convert(light_frame(fcnt), 0.0)
    assert conv.lost_frames == 2
