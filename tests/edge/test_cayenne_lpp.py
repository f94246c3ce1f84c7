"""CayenneLPP codec: golden vectors, round trips, good entries kept, errors, and pycayennelpp both ways."""

from __future__ import annotations

import math
import random
import re

import pytest
from cayennelpp import LppData, LppFrame  # type: ignore[import-untyped]
from cayennelpp.lpp_type import LppType as PyLppType  # type: ignore[import-untyped]
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.cayenne_lpp import (
    DecodeResult,
    LppError,
    LppType,
    LppValue,
    Value,
    decode,
    decode_partial,
    encode,
    encode_value,
    value_size,
)

# type -> (bytes per component, signed, divisor per component), written out again here from the
# sources the module cites (Cayenne LPP v1 table, pycayennelpp 2.4.0, ElectronicCats CayenneLPP.h)
# rather than read from the module, so that a slip in the module's table fails a test.
TABLE: dict[int, tuple[int, bool, tuple[int, ...]]] = {
    0: (1, False, (1,)), 1: (1, False, (1,)), 2: (2, True, (100,)), 3: (2, True, (100,)),
    100: (4, False, (1,)), 101: (2, False, (1,)), 102: (1, False, (1,)), 103: (2, True, (10,)),
    104: (1, False, (2,)), 113: (2, True, (1000, 1000, 1000)), 115: (2, False, (10,)),
    116: (2, False, (100,)), 117: (2, False, (1000,)), 118: (4, False, (1,)), 120: (1, False, (1,)),
    121: (2, True, (1,)), 122: (3, True, (1000,)), 125: (2, False, (1,)), 128: (2, False, (1,)),
    130: (4, False, (1000,)), 131: (4, False, (1000,)), 132: (2, False, (1,)), 133: (4, False, (1,)),
    134: (2, True, (100, 100, 100)), 135: (1, False, (1, 1, 1)), 136: (3, True, (10_000, 10_000, 100)),
    142: (1, False, (1,)), 143: (2, False, (1,)), 144: (1, False, (1, 1, 1)),
}
# Defined by ElectronicCats only; pycayennelpp cannot check them, the golden vectors do.
NOT_IN_PYCAYENNELPP = {143, 144}
FAST = settings(max_examples=40, derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


# (hex, channel, type, value): hand-computed from the type table in the sources above.
GOLDEN = [
    ("010001", 1, 0, 1),
    ("020100", 2, 1, 0),
    ("0302FF38", 3, 2, -2.0),
    ("040304D2", 4, 3, 12.34),
    ("1064000186A0", 16, 100, 100_000),
    ("0565FFFF", 5, 101, 65535),
    ("066601", 6, 102, 1),
    ("0767FF9C", 7, 103, -10.0),
    ("086861", 8, 104, 48.5),
    # The Cayenne documentation's accelerometer example: 1.234 G, -1.234 G, 0 G.
    ("067104D2FB2E0000", 6, 113, (1.234, -1.234, 0.0)),
    ("12732794", 18, 115, 1013.2),
    ("09745A0A", 9, 116, 230.5),
    ("0A7503E8", 10, 117, 1.0),
    ("137633BE27A0", 19, 118, 868_100_000),
    ("0B7864", 11, 120, 100),
    ("1479FFF4", 20, 121, -12),
    ("157AFFFA24", 21, 122, -1.5),
    ("167D019F", 22, 125, 415),
    ("0C800028", 12, 128, 40),
    ("178200003039", 23, 130, 12.345),
    ("0D830001E240", 13, 131, 123.456),
    ("1884010E", 24, 132, 270),
    ("0E856553F100", 14, 133, 1_700_000_000),
    ("19860096FF1F7FFF", 25, 134, (1.5, -2.25, 327.67)),
    ("1A87FF8000", 26, 135, (255.0, 128.0, 0.0)),
    # The Cayenne documentation's GPS example: 42.3519 N, 87.9094 W, 10 m.
    ("018806765FF2960A0003E8", 1, 136, (42.3519, -87.9094, 10.0)),
    ("0F8E01", 15, 142, 1),
    ("1B8F0320", 27, 143, 800),
    ("1C9000FF10", 28, 144, (0.0, 255.0, 16.0)),
]


def test_field_protocols_example() -> None:
    assert decode(bytes.fromhex("03670110056700FF")) == [
        LppValue(3, LppType.TEMPERATURE, 27.2),
        LppValue(5, LppType.TEMPERATURE, 25.5),
    ]
    assert encode([LppValue(3, 103, 27.2), LppValue(5, 103, 25.5)]).hex().upper() == "03670110056700FF"


@pytest.mark.parametrize(("hex_text", "channel", "lpp_type", "value"), GOLDEN)
def test_golden_vector_decodes(hex_text: str, channel: int, lpp_type: int, value: Value) -> None:
    (got,) = decode(bytes.fromhex(hex_text))
    assert (got.channel, got.type, got.value) == (channel, lpp_type, value)
    # Unscaled single values stay integers, scaled ones are floats, vectors are tuples of floats.
    assert type(got.value) is type(value)
    if isinstance(got.value, tuple):
        assert all(type(c) is float for c in got.value)


@pytest.mark.parametrize(("hex_text", "channel", "lpp_type", "value"), GOLDEN)
def test_golden_vector_encodes(hex_text: str, channel: int, lpp_type: int, value: Value) -> None:
    assert encode([LppValue(channel, lpp_type, value)]).hex().upper() == hex_text


def test_every_type_has_a_golden_vector_and_a_table_row() -> None:
    assert {g[2] for g in GOLDEN} == {int(t) for t in LppType} == set(TABLE)


@pytest.mark.parametrize("lpp_type", sorted(TABLE))
def test_value_size_matches_the_table(lpp_type: int) -> None:
    size, _, divisors = TABLE[lpp_type]
    assert value_size(lpp_type) == size * len(divisors)


def test_value_size_rejects_unknown_types() -> None:
    with pytest.raises(LppError, match="unknown CayenneLPP type 99"):
        value_size(99)


def test_the_issue_frame_decodes_whole() -> None:
    # A common environment/motion node: temperature, humidity, barometer, accelerometer, gyrometer.
    payload = bytes.fromhex("01670110" "026861" "03732794" "047104D2FB2E0000" "05860096FF1F7FFF")
    assert [(v.channel, v.type, v.value) for v in decode(payload)] == [
        (1, 103, 27.2), (2, 104, 48.5), (3, 115, 1013.2), (4, 113, (1.234, -1.234, 0.0)),
        (5, 134, (1.5, -2.25, 327.67))]


# --- values of each type, in range, for round trips and the cross-checks ---

def _raw_range(size: int, signed: bool) -> tuple[int, int]:
    bits = size * 8
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def _value_of(lpp_type: int, raws: tuple[int, ...]) -> Value:
    _, _, divisors = TABLE[lpp_type]
    if len(divisors) == 1:
        return raws[0] if divisors[0] == 1 else raws[0] / divisors[0]
    x, y, z = (r / d for r, d in zip(raws, divisors, strict=True))
    return (x, y, z)


def values_of(lpp_type: int) -> st.SearchStrategy[Value]:
    """Any value the type can carry exactly (raw integer / divisor), extremes included."""
    size, signed, divisors = TABLE[lpp_type]
    low, high = _raw_range(size, signed)
    raw = st.one_of(st.sampled_from([low, high, 0]), st.integers(low, high))
    return st.tuples(*[raw] * len(divisors)).map(lambda raws: _value_of(lpp_type, raws))


def entries(types: list[int]) -> st.SearchStrategy[LppValue]:
    return st.sampled_from(types).flatmap(
        lambda t: st.builds(LppValue, st.integers(0, 255), st.just(LppType(t)), values_of(t)))


@pytest.mark.parametrize("lpp_type", list(LppType))
def test_every_type_round_trips(lpp_type: LppType) -> None:
    rng = random.Random(int(lpp_type))
    size, signed, divisors = TABLE[lpp_type]
    low, high = _raw_range(size, signed)
    values = [LppValue(rng.randint(0, 255), lpp_type,
                       _value_of(lpp_type, tuple(rng.choice([low, high, rng.randint(low, high)])
                                                 for _ in divisors)))
              for _ in range(50)]
    payload = encode(values)
    assert len(payload) == 50 * (2 + value_size(lpp_type))
    assert decode(payload) == values
    assert encode(decode(payload)) == payload


@FAST
@given(st.lists(entries(sorted(TABLE)), max_size=20))
def test_mixed_payload_round_trips(values: list[LppValue]) -> None:
    assert decode(encode(values)) == values


def test_empty_payload_is_no_values() -> None:
    assert decode(b"") == []
    assert decode_partial(b"") == DecodeResult([], None)
    assert encode([]) == b""


def test_encode_rounds_to_the_resolution() -> None:
    assert encode([LppValue(1, 103, 27.24)]) == encode([LppValue(1, 103, 27.2)])
    assert decode(encode([LppValue(1, 116, 230.004)]))[0].value == 230.0
    # 0.29 * 100 is 28.999999999999996: rounding, not truncation, keeps it 0.29.
    assert decode(encode([LppValue(1, 2, 0.29)]))[0].value == 0.29


# --- good entries before a bad one are kept ---

GOOD = "03670110" "057401F4"  # ch3 27.2 C, ch5 5.0 V
GOOD_VALUES = [LppValue(3, LppType.TEMPERATURE, 27.2), LppValue(5, LppType.VOLTAGE, 5.0)]


@pytest.mark.parametrize(("bad_tail", "fragment"), [
    ("06", "truncated entry header at offset 8: 1 byte left"),
    ("0667FF", "truncated value of type 103 at offset 10: needs 2 bytes, 1 left"),
    ("077104D2FB2E00", "truncated value of type 113 at offset 10: needs 6 bytes, 5 left"),
    ("0763FF", "unknown type 99 at offset 9 (channel 7)"),
    ("08FF0110" "01670110", "unknown type 255 at offset 9 (channel 8)"),  # nothing after is trusted
])
def test_good_entries_before_a_bad_one_are_kept(bad_tail: str, fragment: str) -> None:
    payload = bytes.fromhex(GOOD + bad_tail)
    values, error = decode_partial(payload)
    assert values == GOOD_VALUES
    assert isinstance(error, LppError)
    assert str(error).startswith(fragment)
    # The strict form still refuses the payload, with the same message.
    with pytest.raises(LppError, match=re.escape(fragment)):
        decode(payload)


def test_decode_partial_of_a_good_payload_has_no_error() -> None:
    result = decode_partial(bytes.fromhex(GOOD))
    assert result.values == GOOD_VALUES
    assert result.error is None


@FAST
@given(st.binary(max_size=64))
def test_decode_partial_keeps_exactly_the_good_prefix(payload: bytes) -> None:
    values, error = decode_partial(payload)
    good = encode(values)
    # What was kept re-encodes to the payload's leading bytes; it stops short only with an error.
    assert payload.startswith(good)
    assert (error is None) == (len(good) == len(payload))
    if error is None:
        assert decode(payload) == values
    else:
        with pytest.raises(LppError):
            decode(payload)


@pytest.mark.parametrize(("hex_text", "fragment"), [
    ("03", "truncated entry header at offset 0"),
    ("0367011005", "truncated entry header at offset 4"),
    ("036701", "truncated value of type 103 at offset 2"),
    ("0583000102", "truncated value of type 131 at offset 2"),
    ("0188010203", "truncated value of type 136 at offset 2"),
    ("03FF0110", "unknown type 255 at offset 1"),
    ("0367011003630110", "unknown type 99 at offset 5"),
])
def test_bad_payload_names_offset_and_type(hex_text: str, fragment: str) -> None:
    with pytest.raises(LppError, match=fragment):
        decode(bytes.fromhex(hex_text))


@pytest.mark.parametrize(("item", "fragment"), [
    (LppValue(1, 120, 256), "out of range"),
    (LppValue(1, 120, -1), "out of range"),
    (LppValue(1, 103, 3276.8), "out of range"),
    (LppValue(1, 103, -3276.9), "out of range"),
    (LppValue(1, 2, 327.68), "out of range"),
    (LppValue(1, 131, 4294967.296), "out of range"),
    (LppValue(1, 116, -0.01), "out of range"),
    (LppValue(1, 115, -0.1), "out of range"),
    (LppValue(1, 122, 8388.608), "out of range"),
    (LppValue(1, 113, (0.0, 32.768, 0.0)), "out of range"),
    (LppValue(1, 135, (256, 0, 0)), "out of range"),
    (LppValue(1, 136, (90.0, 838.8608, 0.0)), "out of range"),
    (LppValue(256, 120, 1), "channel must be 0-255"),
    (LppValue(-1, 120, 1), "channel must be 0-255"),
    (LppValue(1, 99, 1), "unknown CayenneLPP type"),
    (LppValue(1, 136, 1.0), "GPS value must be a .latitude, longitude, altitude. tuple"),
    (LppValue(1, 113, (1.0, 2.0)), "accelerometer value must be a .x, y, z. tuple"),  # type: ignore[arg-type]
    (LppValue(1, 144, 7), "rgb value must be a .red, green, blue. tuple"),
    (LppValue(1, 134, (1.0, math.nan, 0.0)), "finite number"),
    (LppValue(1, 103, (1.0, 2.0, 3.0)), "finite number"),
    (LppValue(1, 103, math.nan), "finite number"),
    (LppValue(1, 103, math.inf), "finite number"),
])
def test_encode_rejects(item: LppValue, fragment: str) -> None:
    with pytest.raises(LppError, match=fragment):
        encode_value(item)


def test_encode_rejects_non_numbers() -> None:
    with pytest.raises(LppError, match="finite number"):
        encode([LppValue(1, 120, "50")])  # type: ignore[arg-type]


def test_lpp_error_is_a_value_error() -> None:
    assert issubclass(LppError, ValueError)


# --- pycayennelpp, an independent implementation, both ways ---

PY_TYPES = sorted(t for t in range(256) if PyLppType.get_lpp_type(t) is not None)


def _as_tuple(value: Value) -> tuple[float, ...]:
    return value if isinstance(value, tuple) else (value,)


def _close(ours: Value, theirs: Value, lpp_type: int) -> bool:
    # pycayennelpp encodes with int() (truncation), so its raw value may be one step below ours.
    _, _, divisors = TABLE[lpp_type]
    return all(abs(a - b) <= 1 / d + 1e-9 for a, b, d in
               zip(_as_tuple(ours), _as_tuple(theirs), divisors, strict=True))


def test_we_know_every_type_pycayennelpp_knows() -> None:
    assert set(PY_TYPES) == set(TABLE) - NOT_IN_PYCAYENNELPP
    for t in PY_TYPES:
        assert value_size(t) == PyLppType.get_lpp_type(t).size


@pytest.mark.parametrize("lpp_type", PY_TYPES)
@FAST
@given(data=st.data())
def test_our_encoding_decodes_in_pycayennelpp(lpp_type: int, data: st.DataObject) -> None:
    channel = data.draw(st.integers(0, 255))
    value = data.draw(values_of(lpp_type))
    (theirs,) = LppFrame.from_bytes(encode([LppValue(channel, lpp_type, value)])).data
    assert (theirs.channel, int(theirs.type)) == (channel, lpp_type)
    assert theirs.value == _as_tuple(value)


@pytest.mark.parametrize("lpp_type", PY_TYPES)
@FAST
@given(data=st.data())
def test_pycayennelpp_encoding_decodes_here(lpp_type: int, data: st.DataObject) -> None:
    channel = data.draw(st.integers(0, 255))
    value = data.draw(values_of(lpp_type))
    payload = bytes(LppFrame([LppData(channel, lpp_type, _as_tuple(value))]))
    (ours,) = decode(payload)
    (theirs,) = LppFrame.from_bytes(payload).data
    assert (ours.channel, ours.type) == (channel, lpp_type)
    # Both divide the same raw integers by the same divisors, so the floats are identical.
    assert _as_tuple(ours.value) == theirs.value
    assert _close(ours.value, value, lpp_type)


@FAST
@given(st.lists(entries(PY_TYPES), max_size=12))
def test_mixed_frames_agree_both_ways(values: list[LppValue]) -> None:
    ours = encode(values)
    assert [(d.channel, int(d.type), d.value) for d in LppFrame.from_bytes(ours).data] == [
        (v.channel, v.type, _as_tuple(v.value)) for v in values]
    theirs = bytes(LppFrame([LppData(v.channel, int(v.type), _as_tuple(v.value)) for v in values]))
    decoded = decode(theirs)
    assert [(v.channel, v.type) for v in decoded] == [(v.channel, v.type) for v in values]
    assert all(_close(d.value, v.value, v.type) for d, v in zip(decoded, values, strict=True))
