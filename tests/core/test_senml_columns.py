"""The columnar SenML decoder: base fields, times, validation of every field, bad records beside good."""

import math

import pytest

from core import jsonfast
from core.senml import Reading, decode, encode
from core.senml_columns import SenMLError, decode_columns

NOW = 1_700_000_000.0


def cols(records):
    return decode_columns(jsonfast.dumps(records), NOW)


def test_base_name_time_and_unit_apply_to_later_records():
    c = cols([{"bn": "d1/", "bt": NOW, "bu": "W", "seq": 7, "n": "power", "v": 1},
              {"n": "energy", "u": "kWh", "v": 2.5, "t": 0.5},
              {"bn": "d2/", "n": "presence", "vb": True, "t": -1}])
    assert c.seq == 7
    assert c.names == ["d1/power", "d1/energy", "d2/presence"]
    assert c.values == [1.0, 2.5, True]
    assert c.times == [NOW, NOW + 0.5, NOW - 1]
    assert c.units == ["W", "kWh", "W"]
    assert c.errors == []


def test_a_standard_pack_without_seq_is_unsequenced_not_rejected():
    c = cols([{"bn": "d1/", "n": "power", "v": 1, "t": NOW}])
    assert c.seq is None
    assert c.names == ["d1/power"]


def test_relative_times_are_relative_to_reception():
    c = cols([{"n": "d/x", "v": 1, "t": -10}])
    assert c.times == [NOW - 10]


@pytest.mark.parametrize(("record", "message"), [
    ({"n": "d/x", "bt": 1e308, "t": 1e308, "v": 1}, "time out of range"),  # defect 1: inf
    ({"n": "d/x", "t": 1e300, "v": 1}, "time out of range"),
    ({"n": "d/x", "t": "soon", "v": 1}, "'t' must be a finite number"),
    ({"n": "d/x", "v": True}, "'v' must be a finite number"),
    ({"n": "d/x", "v": "1"}, "'v' must be a finite number"),
    ({"n": "d/x", "vb": 1}, "'vb' must be a boolean"),
    ({"n": "d/x", "vs": 1}, "'vs' must be a string"),
    ({"n": "d/x", "v": 1, "u": 5}, "'u' must be a string"),  # defect 1: u was not type-checked
    ({"n": "d/x", "v": 1, "u": ["W"]}, "'u' must be a string"),
    ({"n": 5, "v": 1}, "'n' must be a string"),
    ({"bn": 5, "n": "x", "v": 1}, "'bn' must be a string"),
    ({"bt": "x", "n": "d/x", "v": 1}, "'bt' must be a finite number"),
    ({"bu": 3, "n": "d/x", "v": 1}, "'bu' must be a string"),
    ({"n": "d/x"}, "no value"),
])
def test_each_bad_record_is_named_and_the_good_ones_kept(record, message):
    after = {"bn": "d/", "bt": 0, "n": "after", "v": 2, "t": NOW}
    c = cols([{"bn": "d/", "n": "good", "v": 1, "t": NOW}, record, after])
    assert c.names == ["d/good", "d/after"]
    assert len(c.errors) == 1
    assert message in c.errors[0]
    assert c.errors[0].startswith("record 1:")


def test_non_object_records_are_errors():
    c = decode_columns(b'[{"seq":1}, 3, "x", {"n":"d/x","v":1}]', NOW)
    assert c.names == ["d/x"]
    assert c.errors == ["record 1: not an object", "record 2: not an object"]


@pytest.mark.parametrize("payload", [b"{not json", b"{}", b"[]", b"null", b'[{"seq":-1}]', b'[{"seq":true}]',
                                     b'[{"seq":1.5}]'])
def test_unreadable_packs_raise(payload):
    with pytest.raises(SenMLError):
        decode_columns(payload, NOW)


def test_every_time_is_finite():
    c = cols([{"n": "d/x", "v": 1, "t": NOW}, {"n": "d/y", "v": math.pi, "bt": 2e9}])
    assert all(math.isfinite(t) for t in c.times)


def test_objects_from_columns_agree_with_encode():
    readings = [Reading("d1", "power", 1.5, NOW, "W"), Reading("d2", "presence", True, NOW + 1)]
    pack = decode(encode(readings, 3), NOW)
    assert pack.seq == 3
    assert pack.readings == readings
