"""Lines of the RAK3172 LoRa module with RUI3 firmware in P2P mode.

Two receive forms exist in the field and both are accepted: newer firmware sends one line
``+EVT:RXP2P:<rssi>:<snr>:<hex>``; the manual shows a header ``+EVT:RXP2P, RSSI -37, SNR 11``
followed by a separate ``+EVT:<hex>`` line. The second form needs state, hence a class.

>>> p = Rak3172Parser()
>>> p.feed("+EVT:RXP2P, RSSI -37, SNR 11") is None
True
>>> p.feed("+EVT:48656C6C6F")
Received(payload=b'Hello', rssi=-37, snr=11)
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

log = logging.getLogger(__name__)


class RakError(ValueError):
    """A line the module is not known to send, or a data line with bad hex or no header."""


@dataclass(frozen=True, slots=True)
class Received:
    """A received P2P packet with its signal quality."""

    payload: bytes
    rssi: int
    snr: int


@dataclass(frozen=True, slots=True)
class Ok:
    """A command was accepted."""


@dataclass(frozen=True, slots=True)
class TxDone:
    """A P2P transmission finished (``+EVT:TXP2P DONE``)."""


@dataclass(frozen=True, slots=True)
class RxTimeout:
    """A timed receive window (``AT+PRECV=<ms>``) closed without a packet."""


@dataclass(frozen=True, slots=True)
class AtError:
    """A command was rejected, e.g. AT_PARAM_ERROR, AT_BUSY_ERROR or AT_COMMAND_NOT_FOUND."""

    code: str


RakEvent = Received | Ok | TxDone | RxTimeout | AtError

_HEX = r"((?:[0-9A-Fa-f]{2})+)"
# RSSI and SNR are small numbers; bounding the digits also keeps int() far from Python's 4300-digit limit.
_RX_ONE_LINE = re.compile(rf"^\+EVT:RXP2P:(-?\d{{1,4}}):(-?\d{{1,4}}):{_HEX}$")
_RX_HEADER = re.compile(r"^\+EVT:RXP2P,\s*RSSI\s+(-?\d{1,4}),\s*SNR\s+(-?\d{1,4})$")
_RX_DATA = re.compile(rf"^\+EVT:{_HEX}$")
# Every RUI3 status but OK is AT_<WORDS>; not all end in ERROR (AT_COMMAND_NOT_FOUND answers a
# command whose first byte the UART garbled, AT_MODE_NO_SUPPORT one the work mode lacks). Each
# answers one command, so a driver matching replies to commands must see them as replies.
_AT_ERROR = re.compile(r"^AT_[A-Z_]+$")


class Rak3172Parser:
    """Turns module lines into events; remembers a two-line receive header between calls."""

    def __init__(self) -> None:
        self._pending: tuple[int, int] | None = None
        self.orphaned_headers = 0  # receive headers not followed by their data line

    def feed(self, line: str) -> RakEvent | None:
        """Parse one line; None for a blank line or the first half of a two-line receive."""
        text = line.strip()
        if not text:
            return None  # a blank line between header and data does not break the pair
        pending, self._pending = self._pending, None
        data = _RX_DATA.match(text)
        if pending is not None and data:
            return Received(bytes.fromhex(data.group(1)), pending[0], pending[1])
        if pending is not None:
            # The data line never came (lost bytes); the packet is gone but this line is still good.
            self.orphaned_headers += 1
            log.warning("RAK3172 receive header without its data line; next line %r", text)
        if text == "OK":
            return Ok()
        # RUI3 3.2.0 and later spell the events with underscores (+EVT:TXP2P_DONE); both are accepted,
        # or every send would time out on one firmware generation.
        if text in ("+EVT:TXP2P DONE", "+EVT:TXP2P_DONE"):
            return TxDone()
        if text in ("+EVT:RXP2P RECEIVE TIMEOUT", "+EVT:RXP2P_RECEIVE_TIMEOUT"):
            return RxTimeout()
        if _AT_ERROR.match(text):
            return AtError(text)
        match = _RX_ONE_LINE.match(text)
        if match:
            return Received(bytes.fromhex(match.group(3)), int(match.group(1)), int(match.group(2)))
        match = _RX_HEADER.match(text)
        if match:
            self._pending = (int(match.group(1)), int(match.group(2)))
            return None
        if data:
            raise RakError(f"RAK3172 data line without a receive header: {line!r}")
        raise RakError(f"not a RAK3172 line: {line!r}")
