"""Device codecs: LPP entries <-> core.kinds metrics, dim downlinks."""

from __future__ import annotations

import pytest

from core.kinds import KINDS, ValueType
from edge.cayenne_lpp import LppType, LppValue, decode, encode
from edge.device_codecs import (
    UPLINK_LAYOUT,
    CodecError,
    UnknownEntriesError,
    decode_bike_priority,
    decode_dim,
    decode_metrics,
    decode_payload,
    encode_bike_priority,
    encode_dim,
)
from firmware_sim import lpp as sim_lpp

LIGHT = [LppValue(1, 120, 60), LppValue(2, 128, 25), LppValue(3, 131, 1234.567),
         LppValue(4, 116, 229.87), LppValue(5, 103, 18.3), LppValue(6, 0, 0)]


def test_layout_covers_every_metric_of_its_kind() -> None:
    for kind, fields in UPLINK_LAYOUT.items():
        assert sorted(f.metric for f in fields.values()) == sorted(KINDS[kind].metrics)


def test_street_light_uplink() -> None:
    metrics = decode_metrics("street_light", LIGHT)
    assert metrics == {"dim_level": 60.0, "power": 25.0, "energy": 1234.567, "voltage": 229.87,
                       "temperature": 18.3, "lamp_failure": False}
    for name, value in metrics.items():
        is_bool = KINDS["street_light"].metrics[name].type is ValueType.BOOLEAN
        assert isinstance(value, bool) == is_bool


def test_lamp_failure_flag() -> None:
    assert decode_metrics("street_light", [LppValue(6, 0, 1)]) == {"lamp_failure": True}


def test_occupancy_uplink() -> None:
    assert decode_metrics("occupancy", [LppValue(1, 102, 1), LppValue(2, 2, 7.0)]) == {
        "presence": True, "count": 7.0}
    assert decode_metrics("occupancy", [LppValue(1, 102, 0), LppValue(2, 2, 0.0)]) == {
        "presence": False, "count": 0.0}


def test_unknown_entry_raises_but_keeps_the_good_values() -> None:
    values = [*LIGHT[:3], LppValue(9, 103, 20.0), LppValue(1, 102, 1), *LIGHT[3:]]
    with pytest.raises(UnknownEntriesError) as info:
        decode_metrics("street_light", values)
    assert info.value.metrics == decode_metrics("street_light", LIGHT)
    assert len(info.value.problems) == 2
    assert "channel 9 type 103" in str(info.value)
    assert "channel 1 type 102" in str(info.value)


@pytest.mark.parametrize(("kind", "bad", "fragment"), [
    ("street_light", LppValue(1, 120, 150), "dim_level .*0-100"),
    ("street_light", LppValue(6, 0, 2), "lamp_failure .*0 or 1"),
    ("occupancy", LppValue(1, 102, 5), "presence .*0 or 1"),
    ("occupancy", LppValue(2, 2, 1.5), "count .*whole count"),
    ("occupancy", LppValue(2, 2, -1.0), "count .*whole count"),
])
def test_bad_value_is_reported_and_the_rest_kept(kind: str, bad: LppValue, fragment: str) -> None:
    good = LppValue(2, 128, 10) if kind == "street_light" else LppValue(1, 102, 1)
    if bad.channel == good.channel:
        good = LppValue(2, 2, 3.0)
    with pytest.raises(UnknownEntriesError, match=fragment) as info:
        decode_metrics(kind, [good, bad])
    assert len(info.value.metrics) == 1


def test_duplicate_metric_keeps_the_first() -> None:
    with pytest.raises(UnknownEntriesError, match="more than once") as info:
        decode_metrics("street_light", [LppValue(1, 120, 10), LppValue(1, 120, 20)])
    assert info.value.metrics == {"dim_level": 10.0}


def test_kind_without_lora_layout() -> None:
    with pytest.raises(CodecError, match="rain_gauge"):
        decode_metrics("rain_gauge", [])
    assert not isinstance(CodecError("x"), UnknownEntriesError)


def test_decode_payload_wraps_lpp_errors() -> None:
    assert decode_payload("street_light", encode(LIGHT))["dim_level"] == 60.0
    with pytest.raises(CodecError, match="truncated"):
        decode_payload("street_light", bytes.fromhex("0178"))


def test_simulated_firmware_payload_decodes() -> None:
    # A second, independent encoder (the simulated firmware's) against our decoder.
    payload = b"".join((
        sim_lpp.entry(1, sim_lpp.PERCENTAGE, 35), sim_lpp.entry(2, sim_lpp.POWER, 14.6),
        sim_lpp.entry(3, sim_lpp.ENERGY, 812.3456), sim_lpp.entry(4, sim_lpp.VOLTAGE, 231.234),
        sim_lpp.entry(5, sim_lpp.TEMPERATURE, -4.26), sim_lpp.entry(6, sim_lpp.DIGITAL_INPUT, 1),
    ))
    assert decode_payload("street_light", payload) == {
        "dim_level": 35.0, "power": 15.0, "energy": 812.346, "voltage": 231.23,
        "temperature": -4.3, "lamp_failure": True}
    counter = sim_lpp.entry(1, sim_lpp.PRESENCE, 1) + sim_lpp.entry(2, sim_lpp.ANALOG_INPUT, 12)
    assert decode_payload("occupancy", counter) == {"presence": True, "count": 12.0}


@pytest.mark.parametrize("level", [0, 1, 50, 99, 100])
def test_dim_round_trip(level: int) -> None:
    payload = encode_dim(level)
    assert payload == bytes((1, 120, level))
    assert decode_dim(payload) == level
    assert sim_lpp.parse_percentage(payload) == level


@pytest.mark.parametrize("level", [-1, 101, 50.0, True, "50"])
def test_encode_dim_rejects(level: object) -> None:
    with pytest.raises(CodecError, match="0-100"):
        encode_dim(level)  # type: ignore[arg-type]


@pytest.mark.parametrize(("payload", "fragment"), [
    ("", "one channel 1 percentage entry"),
    ("027832", "one channel 1 percentage entry"),
    ("01783201781E", "one channel 1 percentage entry"),
    ("016632", "one channel 1 percentage entry"),
    ("017865", "0-100"),
    ("0178", "truncated"),
])
def test_decode_dim_rejects(payload: str, fragment: str) -> None:
    with pytest.raises(CodecError, match=fragment):
        decode_dim(bytes.fromhex(payload))


def test_encode_dim_matches_generic_encoder() -> None:
    assert decode(encode_dim(42)) == [LppValue(1, 120, 42)]


def test_good_entries_before_a_truncated_one_are_kept():
    """The edge issue: a payload with a truncated or unknown last entry lost the good entries before it."""
    payload = bytes.fromhex("017832" "0280000B" "05")  # 50 %, 11 W, then one stray byte
    try:
        decode_payload("street_light", payload)
    except UnknownEntriesError as exc:
        assert exc.metrics == {"dim_level": 50.0, "power": 11.0}
    else:
        raise AssertionError("the truncated tail must be reported")


def test_a_payload_with_nothing_decodable_is_a_codec_error():
    with pytest.raises(CodecError):
        decode_payload("street_light", bytes.fromhex("01"))


@pytest.mark.parametrize("enabled", [True, False])
def test_bike_priority_round_trips_as_one_digital_output_entry(enabled: bool) -> None:
    payload = encode_bike_priority(enabled)
    assert decode(payload) == [LppValue(1, LppType.DIGITAL_OUTPUT, int(enabled))]
    assert decode_bike_priority(payload) is enabled


@pytest.mark.parametrize(("payload", "fragment"), [
    ("010102", "0 or 1"), ("017801", "digital output"), ("020101", "channel 1"),
    ("010101010100", "must be one channel 1"),
    ("0101", "bike-priority payload: "),
])
def test_decode_bike_priority_rejects(payload: str, fragment: str) -> None:
    with pytest.raises(CodecError, match=fragment):
        decode_bike_priority(bytes.fromhex(payload))


def test_encode_bike_priority_takes_only_booleans() -> None:
    with pytest.raises(CodecError, match="true or false"):
        encode_bike_priority(1)  # type: ignore[arg-type]


def test_traffic_light_and_parking_layouts() -> None:
    assert decode_payload("traffic_light", bytes.fromhex("010101") + bytes.fromhex("02022AF8")) == {
        "bike_priority": True, "cycle_time": 110.0}
    assert decode_payload("parking_spot", bytes.fromhex("016601")) == {"occupied": True}
    with pytest.raises(UnknownEntriesError, match="cycle_time"):
        decode_payload("traffic_light", bytes.fromhex("010100") + bytes.fromhex("0202FF00"))
