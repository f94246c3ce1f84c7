"""The file-wide parts of a rule file: its timezone and its named schedules.

A schedule boundary is ``"HH:MM"`` (local time), or ``"sunrise"`` / ``"sunset"`` with an optional
offset such as ``"sunset-30m"``; rules/schedules.py computes what they mean on a given day.
"""

from __future__ import annotations

import re
import zoneinfo
from typing import Any

from rules.durations import DurationError, parse_duration
from rules.expressions import IDENTIFIER, IDENTIFIER_HELP, RESERVED
from rules.rule_file_fields import Fields, RuleFileError, show
from rules.rule_model import DEFAULT_TIMEZONE, Schedule, TimeOfDay

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # index = datetime.weekday()
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_SUN = re.compile(r"^(sunrise|sunset)(?:([+-])(.+))?$")
_ZONE_KEY = re.compile(r"^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$")
# Beyond half a day an offset from a sun time is a clock time in disguise (and may cross midnight).
MAX_SUN_OFFSET = 12 * 3600.0
TIME_HELP = '"HH:MM", "sunrise" or "sunset", with an optional offset such as "sunset-30m"'


def parse_timezone(value: object, source: str) -> str:
    """The IANA name of the file's timezone (default Europe/Amsterdam), checked against the tz database."""
    if value is None:
        return DEFAULT_TIMEZONE
    if isinstance(value, str) and len(value) <= 64 and _ZONE_KEY.match(value):
        try:
            zoneinfo.ZoneInfo(value)
            return value
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            pass
    raise RuleFileError(f"{source}: timezone must be an IANA time zone such as {DEFAULT_TIMEZONE}: {show(value)}")


def parse_time_of_day(value: object) -> TimeOfDay | None:
    """A schedule boundary, or None if value is not one."""
    if not isinstance(value, str):
        return None
    clock = _CLOCK.match(value)
    if clock:
        return TimeOfDay("clock", int(clock.group(1)) * 3600.0 + int(clock.group(2)) * 60.0)
    sun = _SUN.match(value)
    if not sun:
        return None
    offset = 0.0
    if sun.group(2):
        try:
            offset = parse_duration(sun.group(3))
        except DurationError:
            return None
        if offset > MAX_SUN_OFFSET:
            return None
    # + 0.0: "sunset-0s" is plain sunset, not an offset of -0.0 that would fingerprint differently
    return TimeOfDay(sun.group(1), (-offset if sun.group(2) == "-" else offset) + 0.0)


def _boundary(f: Fields, key: str) -> TimeOfDay:
    value = f.raw(key)
    moment = parse_time_of_day(value)
    if moment is None:
        raise f.fail(f"{f.name(key)} must be {TIME_HELP} (offset at most 12h): {show(value)}")
    return moment


def _schedule(name: str, table: Any, source: str) -> Schedule:
    f = Fields(table, source, f"schedules.{name}", ("from", "to", "days"))
    start, end = _boundary(f, "from"), _boundary(f, "to")
    if start == end:
        raise f.fail(f"schedules.{name}: from and to are the same time; a schedule must not be active all day")
    days = frozenset(range(7))
    if f.has("days"):
        names = f.strings("days", "day names")
        for day in names:
            if day not in DAYS:
                raise f.fail(f"{f.name('days')} entries must be one of {', '.join(DAYS)}: {show(day)}")
        days = frozenset(DAYS.index(day) for day in names)
    return Schedule(name, start, end, days)


def parse_schedules(value: object, source: str) -> dict[str, Schedule]:
    """The named schedules of the file (top-level ``[schedules.NAME]`` tables), in file order."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RuleFileError(f"{source}: schedules must be a table of [schedules.NAME] tables: {show(value)}")
    out: dict[str, Schedule] = {}
    for name, table in value.items():
        if not IDENTIFIER.fullmatch(name) or name in RESERVED:
            raise RuleFileError(f"{source}: schedule name {show(name)} must be {IDENTIFIER_HELP}, "
                                f"other than {', '.join(sorted(RESERVED))}")
        out[name] = _schedule(name, table, source)
    return out
