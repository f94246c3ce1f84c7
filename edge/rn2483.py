"""Lines of the Microchip RN2483 LoRa modem in radio (point-to-point) mode.

Every line the modem sends is one ``ModemEvent``; ``parse_line`` raises ``ModemError``
for anything else (field-protocols.md, "LoRa radio modules on a UART").

>>> parse_line("radio_rx  48656C6C6F")
RadioRx(payload=b'Hello')
>>> parse_line("4294967245")
MacPause(ms=4294967245)
"""

from __future__ import annotations

import re
from dataclasses import dataclass


class ModemError(ValueError):
    """A line the RN2483 is not known to send, or a radio_rx with bad hex."""


@dataclass(frozen=True, slots=True)
class RadioRx:
    """A received packet (the receiver is no longer armed afterwards)."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class RadioErr:
    """Reception failed (rx timeout, CRC) or a transmission failed."""


@dataclass(frozen=True, slots=True)
class RadioTxOk:
    """A transmission finished."""


@dataclass(frozen=True, slots=True)
class Ok:
    """A command was accepted."""


@dataclass(frozen=True, slots=True)
class InvalidParam:
    """A command was rejected: unknown command or a bad parameter."""


@dataclass(frozen=True, slots=True)
class Busy:
    """A command was rejected because the radio is busy (receiving, transmitting, LoRaWAN active)."""


@dataclass(frozen=True, slots=True)
class Version:
    """The firmware banner after ``sys reset`` or ``sys get ver``."""

    text: str


@dataclass(frozen=True, slots=True)
class MacPause:
    """The reply to ``mac pause``: milliseconds the LoRaWAN stack stays paused."""

    ms: int


ModemEvent = RadioRx | RadioErr | RadioTxOk | Ok | InvalidParam | Busy | Version | MacPause

_SIMPLE: dict[str, ModemEvent] = {
    "radio_err": RadioErr(),
    "radio_tx_ok": RadioTxOk(),
    "ok": Ok(),
    "invalid_param": InvalidParam(),
    "busy": Busy(),
}
# The manual shows two spaces after radio_rx; accept any run of spaces or tabs.
_RADIO_RX = re.compile(r"^radio_rx[ \t]+(\S+)$")
_VERSION = re.compile(r"^RN2[49]83 \d+\.\d+\.\d+\b.*$")
_NUMBER = re.compile(r"^\d{1,10}$")
_U32_MAX = 0xFFFF_FFFF


def parse_line(line: str) -> ModemEvent:
    """Parse one modem line (terminator optional); raises ModemError naming the line."""
    text = line.strip()
    simple = _SIMPLE.get(text)
    if simple is not None:
        return simple
    match = _RADIO_RX.match(text)
    if match:
        hex_text = match.group(1)
        if len(hex_text) % 2:
            raise ModemError(f"radio_rx with an odd number of hex digits: {line!r}")
        try:
            return RadioRx(bytes.fromhex(hex_text))
        except ValueError:
            raise ModemError(f"radio_rx with bad hex: {line!r}") from None
    if _VERSION.match(text):
        return Version(text)
    if _NUMBER.match(text) and int(text) <= _U32_MAX:
        return MacPause(int(text))
    raise ModemError(f"not an RN2483 line: {line!r}")
