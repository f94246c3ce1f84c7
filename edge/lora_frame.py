"""Our LoRa point-to-point framing: P2P radios have no addressing, so the frame carries it.

Uplink (node -> gateway): 4-byte device address (big-endian) + 2-byte big-endian frame
counter + CayenneLPP payload. Downlink (gateway -> node): 4-byte address + payload. The
registry writes an address as 8 upper-case hex digits, which is what decoding returns.

>>> encode_uplink("0A0B0C0D", 1, bytes.fromhex("017832")).hex().upper()
'0A0B0C0D0001017832'
>>> decode_downlink(bytes.fromhex("0A0B0C0D017832"))
DownlinkFrame(address='0A0B0C0D', payload=b'\\x01x2')
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ADDRESS_BYTES = 4
FCNT_BYTES = 2
FCNT_MAX = 0xFFFF
_ADDRESS = re.compile(r"^[0-9A-Fa-f]{8}$")


class FrameError(ValueError):
    """A frame that is too short, or an address or counter that cannot be framed."""


@dataclass(frozen=True, slots=True)
class UplinkFrame:
    """A node's report: who sent it, its frame counter (gap detection) and the LPP payload."""

    address: str
    fcnt: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class DownlinkFrame:
    """A gateway command for one node: the node's address and the LPP payload."""

    address: str
    payload: bytes


def _address_bytes(address_hex: str) -> bytes:
    if not isinstance(address_hex, str) or not _ADDRESS.match(address_hex):
        raise FrameError(f"device address must be 8 hex digits, got {address_hex!r}")
    return bytes.fromhex(address_hex)


def encode_uplink(address_hex: str, fcnt: int, lpp_payload: bytes) -> bytes:
    """Frame an uplink; raises FrameError for a bad address or a counter outside 0-65535."""
    if isinstance(fcnt, bool) or not isinstance(fcnt, int) or not 0 <= fcnt <= FCNT_MAX:
        raise FrameError(f"frame counter must be an integer 0-{FCNT_MAX}, got {fcnt!r}")
    return _address_bytes(address_hex) + fcnt.to_bytes(FCNT_BYTES, "big") + bytes(lpp_payload)


def decode_uplink(frame: bytes) -> UplinkFrame:
    """Split an uplink frame; raises FrameError if it is shorter than address + counter."""
    header = ADDRESS_BYTES + FCNT_BYTES
    if len(frame) < header:
        raise FrameError(f"uplink frame of {len(frame)} bytes is shorter than its {header}-byte header")
    return UplinkFrame(
        frame[:ADDRESS_BYTES].hex().upper(),
        int.from_bytes(frame[ADDRESS_BYTES:header], "big"),
        bytes(frame[header:]),
    )


def encode_downlink(address_hex: str, lpp_payload: bytes) -> bytes:
    """Frame a downlink; raises FrameError for a bad address."""
    return _address_bytes(address_hex) + bytes(lpp_payload)


def decode_downlink(frame: bytes) -> DownlinkFrame:
    """Split a downlink frame; raises FrameError if it is shorter than an address."""
    if len(frame) < ADDRESS_BYTES:
        raise FrameError(f"downlink frame of {len(frame)} bytes is shorter than its "
                         f"{ADDRESS_BYTES}-byte address")
    return DownlinkFrame(frame[:ADDRESS_BYTES].hex().upper(), bytes(frame[ADDRESS_BYTES:]))
