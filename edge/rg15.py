"""Lines of the Hydreon RG-15 optical rain gauge (field-protocols.md, "Hydreon RG-15").

A data line becomes an ``RG15Reading`` in metric units (imperial lines are converted);
boot header lines, command replies and status words become ``RG15Info``; anything else
raises ``RG15Error``. Whitespace runs are accepted wherever the manual shows spaces (the
metric line has double spaces, and a right-aligned number may eat its leading space).

>>> parse_line("Acc  0.00 mm, EventAcc  0.00 mm, TotalAcc  1.23 mm, RInt  0.00 mmph")
RG15Reading(accumulation=0.0, event_accumulation=0.0, total_accumulation=1.23, rain_intensity=0.0)
>>> parse_line("Acc 0.001 in, EventAcc 0.001 in, TotalAcc 0.001 in, RInt 0.001 iph").total_accumulation
0.0254
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import StrEnum

MM_PER_INCH = 25.4
# Four decimals keep 0.001 in (0.0254 mm) exact and drop float noise from the conversion.
_DECIMALS = 4

_NUM = r"(\d+(?:\.\d*)?|\.\d+)"
_READING = re.compile(
    rf"^Acc\s*{_NUM}\s*(mm|in)\s*,\s*EventAcc\s*{_NUM}\s*(mm|in)\s*,"
    rf"\s*TotalAcc\s*{_NUM}\s*(mm|in)\s*,\s*RInt\s*{_NUM}\s*(mmph|iph)$",
    re.IGNORECASE,
)


class RG15Error(ValueError):
    """A line that is neither a reading nor a line the gauge is known to send."""


class InfoKind(StrEnum):
    """What an informational line is."""

    HEADER = "header"  # boot header: ';...', SW, Emitters, EmTotal, DIP, PwrDays
    MODE = "mode"  # reply to P, C, M, I (and H, L on firmware that echoes them)
    BAUD = "baud"  # reply to B<n>
    STATUS = "status"  # Reset N, Event, LensBad, EmSat, TooCold


@dataclass(frozen=True, slots=True)
class RG15Reading:
    """One R line, metric: accumulations in mm, rain intensity in mm/h."""

    accumulation: float
    event_accumulation: float
    total_accumulation: float
    rain_intensity: float

    def metrics(self) -> dict[str, float]:
        """The reading as rain_gauge metrics (names as in core.kinds)."""
        return {
            "accumulation": self.accumulation,
            "event_accumulation": self.event_accumulation,
            "total_accumulation": self.total_accumulation,
            "rain_intensity": self.rain_intensity,
        }


@dataclass(frozen=True, slots=True)
class RG15Info:
    """A line that carries no measurement: header, mode reply, baud reply or status word."""

    kind: InfoKind
    text: str


_MODE_REPLIES = frozenset("pcmihl")
_BAUD = re.compile(r"^Baud\s+\d+$", re.IGNORECASE)
_HEADER_PART = re.compile(r"^(SW|Emitters|EmTotal|DIP|PwrDays)\b.*$", re.IGNORECASE)
_STATUS_PART = re.compile(r"^(Reset\s+[A-Z]|Event|LensBad|EmSat|TooCold)$", re.IGNORECASE)


def _mm(value: str, unit: str) -> float:
    number = float(value)
    if not math.isfinite(number):  # 309 nines parse as inf; no gauge measures that
        raise RG15Error(f"number out of range: {value[:20]}...")
    if unit.lower() in ("in", "iph"):
        number *= MM_PER_INCH
    return round(number, _DECIMALS)


def _info(text: str) -> RG15Info | None:
    # A header comment is printable ASCII: noise that happens to start with ';' is not one.
    if text.startswith(";") and text.isascii() and text.isprintable():
        return RG15Info(InfoKind.HEADER, text)
    if len(text) == 1 and text.lower() in _MODE_REPLIES:
        return RG15Info(InfoKind.MODE, text)
    if _BAUD.match(text):
        return RG15Info(InfoKind.BAUD, text)
    # The gauge may put several keywords on one line, comma separated ("Emitters 9 10, EmTotal 19").
    parts = [p.strip() for p in text.split(",")]
    if all(_HEADER_PART.match(p) for p in parts):
        return RG15Info(InfoKind.HEADER, text)
    if all(_STATUS_PART.match(p) for p in parts):
        return RG15Info(InfoKind.STATUS, text)
    return None


def parse_line(line: str) -> RG15Reading | RG15Info:
    """Parse one line (terminator optional); raises RG15Error naming the line if it is not understood."""
    text = line.strip()
    match = _READING.match(text)
    if match:
        acc, acc_u, ev, ev_u, tot, tot_u, rint, rint_u = match.groups()
        accumulation_units = {acc_u.lower(), ev_u.lower(), tot_u.lower()}
        imperial = rint_u.lower() == "iph"
        if accumulation_units != ({"in"} if imperial else {"mm"}):
            raise RG15Error(f"RG-15 line mixes metric and imperial units: {line!r}")
        return RG15Reading(_mm(acc, acc_u), _mm(ev, ev_u), _mm(tot, tot_u), _mm(rint, rint_u))
    info = _info(text) if text else None
    if info is None:
        raise RG15Error(f"not an RG-15 line: {line!r}")
    return info
