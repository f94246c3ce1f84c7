"""LoRa P2P framing: address + counter + payload."""

from __future__ import annotations

import pytest

from edge.lora_frame import (
    DownlinkFrame,
    FrameError,
    UplinkFrame,
    decode_downlink,
    decode_uplink,
    encode_downlink,
    encode_uplink,
)


def test_uplink_layout_is_big_endian() -> None:
    frame = encode_uplink("DEADBEEF", 0x0102, bytes.fromhex("017832"))
    assert frame.hex().upper() == "DEADBEEF0102017832"
    assert decode_uplink(frame) == UplinkFrame("DEADBEEF", 0x0102, bytes.fromhex("017832"))


def test_address_comes_back_upper_case_as_in_the_registry() -> None:
    assert decode_uplink(encode_uplink("0a0b0c0d", 7, b"")).address == "0A0B0C0D"
    assert decode_downlink(encode_downlink("abcdef01", b"\x01")).address == "ABCDEF01"


def test_counter_limits() -> None:
    assert decode_uplink(encode_uplink("00000000", 0xFFFF, b"")).fcnt == 0xFFFF
    for bad in (-1, 0x10000, True, 1.0):
        with pytest.raises(FrameError, match="frame counter"):
            encode_uplink("00000000", bad, b"")  # type: ignore[arg-type]


@pytest.mark.parametrize("address", ["", "0A0B0C", "0A0B0C0D0E", "0A0B0C0G", " 0A0B0C0D", 12345678])
def test_bad_addresses(address: object) -> None:
    with pytest.raises(FrameError, match="8 hex digits"):
        encode_uplink(address, 1, b"")  # type: ignore[arg-type]
    with pytest.raises(FrameError, match="8 hex digits"):
        encode_downlink(address, b"")  # type: ignore[arg-type]


def test_short_frames() -> None:
    with pytest.raises(FrameError, match="5 bytes is shorter than its 6-byte header"):
        decode_uplink(bytes(5))
    with pytest.raises(FrameError, match="3 bytes is shorter than its 4-byte address"):
        decode_downlink(bytes(3))


def test_header_only_frames_carry_an_empty_payload() -> None:
    assert decode_uplink(bytes(6)) == UplinkFrame("00000000", 0, b"")
    assert decode_downlink(bytes(4)) == DownlinkFrame("00000000", b"")


def test_downlink_round_trip() -> None:
    frame = encode_downlink("0A0B0C01", bytes.fromhex("017832"))
    assert frame.hex().upper() == "0A0B0C01017832"
    assert decode_downlink(frame) == DownlinkFrame("0A0B0C01", bytes.fromhex("017832"))
