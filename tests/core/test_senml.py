import pytest

from core import jsonfast
from core.senml import Pack, Reading, SenMLError, decode, encode


def test_round_trip_keeps_devices_metrics_values_units_and_times():
    readings = [
        Reading("sl-1", "dim_level", 20.0, 1_700_000_000.0, "%"),
        Reading("sl-1", "lamp_failure", False, 1_700_000_000.0),
        Reading("rg-1", "rain_intensity", 1.25, 1_700_000_002.5, "mm/h"),
        Reading("rg-1", "note", "LensBad", 1_700_000_003.0),
    ]
    pack = decode(encode(readings, seq=42))
    assert pack.seq == 42
    assert pack.errors == []
    assert pack.readings == readings


def test_encoding_uses_base_name_per_device_and_base_time_once():
    records = jsonfast.loads(encode([Reading("a", "x", 1.0, 100.0), Reading("a", "y", 2.0, 101.0),
                                     Reading("b", "x", 3.0, 100.0)], seq=7))
    assert records[0] == {"bn": "a/", "bt": 100.0, "seq": 7, "n": "x", "v": 1.0}
    assert records[1] == {"n": "y", "t": 1.0, "v": 2.0}
    assert records[2] == {"bn": "b/", "n": "x", "v": 3.0}


def test_bad_records_are_reported_and_good_neighbours_kept():
    payload = jsonfast.dumps([
        {"bn": "sl-1/", "bt": 1_700_000_000, "seq": 1, "n": "power", "v": 12.5},
        {"n": "dim_level", "v": "high"},  # a string under v
        {"n": "dim_level"},  # no value
        "junk",
        {"n": "energy", "v": True},  # a boolean under v
        {"bn": "nodevice", "n": "", "v": 1},  # name without device/metric split
        {"bn": "sl-2/", "n": "power", "v": 3},
    ])
    pack = decode(payload)
    assert [(r.device, r.metric, r.value) for r in pack.readings] == [("sl-1", "power", 12.5), ("sl-2", "power", 3.0)]
    assert len(pack.errors) == 5
    assert "record 1" in pack.errors[0] and "finite number" in pack.errors[0]
    assert "no value" in pack.errors[1]


@pytest.mark.parametrize(("payload", "message"), [
    (b"{not json", "not JSON"),
    (b"{}", "non-empty JSON array"),
    (b"[]", "non-empty JSON array"),
    (b'[{"seq":-1}]', "seq"),
    (b'[{"seq":true}]', "seq"),
])
def test_unreadable_packs_raise_naming_the_problem(payload, message):
    with pytest.raises(SenMLError, match=message):
        decode(payload)


def test_times_below_2_pow_28_are_relative_to_reception():
    pack = decode(b'[{"seq":0,"bn":"d/","n":"m","v":1,"t":-5}]', now=1_800_000_000.0)
    assert pack.readings[0].time == 1_799_999_995.0


def test_empty_pack_with_only_seq_is_valid():
    assert decode(encode([], seq=3)) == Pack(seq=3)
