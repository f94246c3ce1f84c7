"""CayenneLPP codec: golden vectors, round trips, errors."""

from __future__ import annotations

import math
import random

import pytest

from edge.cayenne_lpp import LppError, LppType, LppValue, decode, encode, encode_value, value_size

# (hex, channel, type, value): hand-computed from the type table in field-protocols.md.
GOLDEN = [
    ("010001", 1, 0, 1),
    ("020100", 2, 1, 0),
    ("0302FF38", 3, 2, -2.0),
    ("040304D2", 4, 3, 12.34),
    ("0565FFFF", 5, 101, 65535),
    ("066601", 6, 102, 1),
    ("0767FF9C", 7, 103, -10.0),
    ("086861", 8, 104, 48.5),
    ("09745A0A", 9, 116, 230.5),
    ("0A7503E8", 10, 117, 1.0),
    ("0B7864", 11, 120, 100),
    ("0C800028", 12, 128, 40),
    ("0D830001E240", 13, 131, 123.456),
    ("0E856553F100", 14, 133, 1_700_000_000),
    # The Cayenne documentation's GPS example: 42.3519 N, 87.9094 W, 10 m.
    ("018806765FF2960A0003E8", 1, 136, (42.3519, -87.9094, 10.0)),
    ("0F8E01", 15, 142, 1),
]


def test_field_protocols_example() -> None:
    assert decode(bytes.fromhex("03670110056700FF")) == [
        LppValue(3, LppType.TEMPERATURE, 27.2),
        LppValue(5, LppType.TEMPERATURE, 25.5),
    ]
    assert encode([LppValue(3, 103, 27.2), LppValue(5, 103, 25.5)]).hex().upper() == "03670110056700FF"


@pytest.mark.parametrize(("hex_text", "channel", "lpp_type", "value"), GOLDEN)
def test_golden_vector_decodes(hex_text: str, channel: int, lpp_type: int, value: object) -> None:
    (got,) = decode(bytes.fromhex(hex_text))
    assert (got.channel, got.type, got.value) == (channel, lpp_type, value)
    # Unscaled types stay integers, scaled ones are floats.
    assert type(got.value) is type(value)


@pytest.mark.parametrize(("hex_text", "channel", "lpp_type", "value"), GOLDEN)
def test_golden_vector_encodes(hex_text: str, channel: int, lpp_type: int, value: object) -> None:
    assert encode([LppValue(channel, lpp_type, value)]).hex().upper() == hex_text  # type: ignore[arg-type]


def test_every_type_has_a_golden_vector() -> None:
    assert {g[2] for g in GOLDEN} == {int(t) for t in LppType}


def _random_value(rng: random.Random, lpp_type: LppType) -> float | int | tuple[float, float, float]:
    if lpp_type == LppType.GPS:
        return (rng.randint(-900000, 900000) / 10000, rng.randint(-1800000, 1800000) / 10000,
                rng.randint(-8000000, 8000000) / 100)
    divisor = {2: 100, 3: 100, 103: 10, 104: 2, 116: 100, 117: 1000, 131: 1000}.get(lpp_type, 1)
    bits = value_size(lpp_type) * 8
    signed = lpp_type in (2, 3, 103)
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    raw = rng.choice([low, high, rng.randint(low, high)])
    return raw if divisor == 1 else raw / divisor


@pytest.mark.parametrize("lpp_type", list(LppType))
def test_every_type_round_trips(lpp_type: LppType) -> None:
    rng = random.Random(int(lpp_type))
    values = [LppValue(rng.randint(0, 255), lpp_type, _random_value(rng, lpp_type)) for _ in range(50)]
    payload = encode(values)
    assert len(payload) == 50 * (2 + value_size(lpp_type))
    assert decode(payload) == values
    assert encode(decode(payload)) == payload


def test_mixed_payload_round_trips() -> None:
    values = [LppValue(1, 120, 55), LppValue(2, 128, 22), LppValue(3, 131, 1234.567),
              LppValue(4, 116, 229.87), LppValue(5, 103, -3.5), LppValue(6, 0, 0)]
    assert decode(encode(values)) == values


def test_empty_payload_is_no_values() -> None:
    assert decode(b"") == []
    assert encode([]) == b""


def test_encode_rounds_to_the_resolution() -> None:
    assert encode([LppValue(1, 103, 27.24)]) == encode([LppValue(1, 103, 27.2)])
    assert decode(encode([LppValue(1, 116, 230.004)]))[0].value == 230.0


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
    (LppValue(1, 136, (90.0, 838.8608, 0.0)), "out of range"),
    (LppValue(256, 120, 1), "channel must be 0-255"),
    (LppValue(-1, 120, 1), "channel must be 0-255"),
    (LppValue(1, 99, 1), "unknown CayenneLPP type"),
    (LppValue(1, 136, 1.0), "GPS value must be"),
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
