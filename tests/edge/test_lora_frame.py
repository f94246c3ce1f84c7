"""Our P2P LoRa frame: layout, AES-CMAC MIC (checked against the simulator's own implementation)."""

import pytest

from edge.lora_frame import (
    Direction,
    FrameError,
    decode_downlink,
    decode_uplink,
    encode_downlink,
    encode_uplink,
    verify,
)
from firmware_sim import lpp

KEY = bytes.fromhex("2B7E151628AED2A6ABF7158809CF4F3C")  # the AES-128 test key of RFC 4493


def test_layout_address_counter_payload_mic():
    frame = encode_uplink("DEADBEEF", 0x01020304, bytes.fromhex("017832"), KEY)
    assert frame[:11].hex().upper() == "DEADBEEF01020304017832"
    assert len(frame) == 15
    up = decode_uplink(frame)
    assert (up.address, up.fcnt, up.payload, up.direction) == ("DEADBEEF", 0x01020304, b"\x01x2", Direction.UP)
    assert verify(up, KEY)


def test_the_simulator_and_the_edge_agree_both_ways():
    """Two implementations of the MIC: the simulated node's and the gateway's."""
    payload = bytes.fromhex("03670110056700FF")
    assert lpp.uplink_frame("0A0B0C0D", 7, payload, KEY) == encode_uplink("0A0B0C0D", 7, payload, KEY)
    down = encode_downlink("0A0B0C0D", 9, bytes.fromhex("017832"), KEY)
    assert lpp.open_downlink(down, KEY) == (9, bytes.fromhex("017832"))
    assert lpp.downlink_address(down) == "0A0B0C0D"


@pytest.mark.parametrize("tamper", [0, 4, 8, 10, 11, 14])
def test_any_changed_byte_breaks_the_mic(tamper):
    frame = bytearray(encode_uplink("DEADBEEF", 5, bytes.fromhex("017832"), KEY))
    frame[tamper] ^= 0x01
    assert not verify(decode_uplink(bytes(frame)), KEY)


def test_a_wrong_key_or_direction_fails():
    frame = encode_uplink("DEADBEEF", 5, b"\x01\x78\x32", KEY)
    assert not verify(decode_uplink(frame), bytes(16))
    # An uplink replayed towards a node as a downlink does not verify: the direction is in the MIC.
    assert not verify(decode_downlink(frame), KEY)
    assert lpp.open_downlink(frame, KEY) is None


def test_bad_addresses_counters_and_short_frames_are_refused():
    for bad in (-1, 2**32, True, 1.5):
        with pytest.raises(FrameError, match="frame counter"):
            encode_uplink("00000000", bad, b"", KEY)  # type: ignore[arg-type]
    for address in ("0A0B0C", "0A0B0C0D0E", "XYZXYZXY", 12345678):
        with pytest.raises(FrameError, match="8 hex digits"):
            encode_uplink(address, 1, b"", KEY)  # type: ignore[arg-type]
    with pytest.raises(FrameError, match="shorter than header"):
        decode_uplink(bytes(11))
    assert decode_uplink(bytes(12)).payload == b""
    with pytest.raises(FrameError, match="16 bytes"):
        encode_uplink("00000000", 1, b"", b"short")
