"""Durations in rule files: a number of seconds, or a string such as ``"90s"``, ``"1h30m"`` or ``"500ms"``.

Strings are one or more ``<number><unit>`` parts with units ``d``, ``h``, ``m``, ``s``, ``ms``, each
at most once and largest first (so ``"1h30m"``, not ``"30m1h"``), with no spaces and no sign.

>>> parse_duration("1h30m")
5400.0
>>> parse_duration(2.5)
2.5
>>> format_duration(5400)
'1h30m'
"""

from __future__ import annotations

import math
import re

from core.numbers import finite_float

UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
# No rule needs more than a year; the bound keeps bucket arithmetic (now / (over / 12)) far from
# float trouble and turns a typo such as "1000000d" into an error instead of a rule that never fires.
MAX_SECONDS = 366 * 86400.0
HELP = "seconds >= 0, or a string like '90s', '2m', '1h30m', '1d', '500ms'"
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|d|h|m|s)")
_MAX_TEXT = 40  # no valid duration is longer; a longer string is not worth a regex pass


class DurationError(ValueError):
    """A value that is not a duration; the message says what was expected and shows the value."""


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _parse_text(text: str) -> float | None:
    """The seconds of a duration string, or None if it does not follow the grammar."""
    if not text or len(text) > _MAX_TEXT:
        return None
    total, pos, last_rank = 0.0, 0, -1
    ranks = list(UNITS)
    while pos < len(text):
        match = _PART.match(text, pos)
        if match is None:
            return None
        rank = ranks.index(match.group(2))
        if rank <= last_rank:  # repeated or out of order ("30m1h"): almost surely a typo
            return None
        total += float(match.group(1)) * UNITS[match.group(2)]
        pos, last_rank = match.end(), rank
    return total


def parse_duration(value: object, what: str = "duration") -> float:
    """Seconds (a finite float >= 0) from a TOML number or duration string; what names it in the error."""
    if isinstance(value, str):
        seconds = _parse_text(value)
        if seconds is None:
            hint = " (a number in a string needs a unit, e.g. '30s')" if _is_plain_number(value) else ""
            raise DurationError(f"{what} must be a duration ({HELP}){hint}: {_show(value)}")
    elif type(value) in (int, float):
        # Not a bool (TOML has real booleans: `true` must not pass as 1), and not an integer
        # beyond float range (TOML integers have no size limit in tomllib).
        number = finite_float(value)
        if number is None or number < 0:
            raise DurationError(f"{what} must be a duration ({HELP}): {_show(value)}")
        seconds = number + 0.0  # -0.0 becomes 0.0, so equal rules compare equal
    else:
        raise DurationError(f"{what} must be a duration ({HELP}): {_show(value)}")
    if seconds > MAX_SECONDS:
        raise DurationError(f"{what} must be at most 366d: {_show(value)}")
    return seconds


def _is_plain_number(text: str) -> bool:
    return re.fullmatch(r"-?\d+(\.\d+)?", text) is not None


def format_duration(seconds: float) -> str | float:
    """The shortest duration string for whole seconds (``5400`` -> ``"1h30m"``); other values as a float."""
    if not math.isfinite(seconds) or seconds < 0 or not float(seconds).is_integer():
        return float(seconds)
    rest = int(seconds)
    if rest == 0:
        return "0s"
    parts = []
    for unit in ("d", "h", "m", "s"):
        size = int(UNITS[unit])
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
