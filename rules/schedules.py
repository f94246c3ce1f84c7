"""Whether a schedule (``night``, ``day`` or a named one of the rule file) is active, per gemeente.

rules/README.md ("Schedules") is the specification. Both engines read schedules through this one
module, so they cannot disagree about a boundary. Decisions the README leaves open:

- Boundaries are instants. ``from(D)`` and ``to(D)`` for local date ``D``: a clock anchor is that
  wall-clock time on ``D`` (on the spring-forward day a time in the skipped hour, e.g. 02:30, is
  read with the offset before the change, i.e. 03:30 summer time; on the fall-back day a repeated
  time is its first occurrence); a sun anchor is the sun time on ``D`` plus the offset in real
  seconds. Whether a schedule wraps is decided per date (``from(D) >= to(D)``), as the README says.
- Polar day or night (astral raises ValueError: the sun never crosses the horizon on ``D``): in
  polar day sunrise is taken as the local midnight starting ``D`` and sunset as the one ending it
  (all day is ``day``); in polar night both are solar noon (no ``day`` at all). A date where only
  one of the two is missing gets only that one replaced. Not an issue for Dutch gemeenten; the
  choice keeps every anchor defined instead of failing an evaluation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
from astral import Observer
from astral.sun import elevation, noon, sunrise, sunset

from core.registry import Registry
from rules.rule_model import RuleSet, TimeOfDay

NIGHT = "night"
DAY = "day"
_ONE_DAY = dt.timedelta(days=1)
_SUN_CACHE_DAYS = 8  # sun times of a gemeente for this many dates around the last asked are kept


def _mean_coordinates(registry: Registry) -> dict[str, tuple[float, float]]:
    sums: dict[str, list[float]] = {}
    for d in registry.devices.values():
        acc = sums.setdefault(d.gemeente, [0.0, 0.0, 0.0])
        acc[0] += d.lat
        acc[1] += d.lon
        acc[2] += 1.0
    return {g: (lat / n, lon / n) for g, (lat, lon, n) in sums.items()}


class _SunTimes:
    """Sunrise and sunset instants (unix seconds) of one place per local date, computed once each."""

    def __init__(self, observer: Observer, tz: ZoneInfo) -> None:
        self.observer = observer
        self.tz = tz
        self._by_date: dict[dt.date, tuple[float, float]] = {}

    def _midnight(self, date: dt.date) -> float:
        return dt.datetime.combine(date, dt.time(), self.tz).timestamp()

    def _polar(self, date: dt.date, end: bool) -> float:
        midday = noon(self.observer, date, self.tz)
        if elevation(self.observer, midday) > 0.0:  # midnight sun: the whole date is day
            return self._midnight(date + _ONE_DAY) if end else self._midnight(date)
        return midday.timestamp()  # polar night: an empty day at solar noon

    def on(self, date: dt.date) -> tuple[float, float]:
        """(sunrise, sunset) of the local date."""
        found = self._by_date.get(date)
        if found is not None:
            return found
        try:
            rise = sunrise(self.observer, date, self.tz).timestamp()
        except ValueError:
            rise = self._polar(date, end=False)
        try:
            down = sunset(self.observer, date, self.tz).timestamp()
        except ValueError:
            down = self._polar(date, end=True)
        if len(self._by_date) > _SUN_CACHE_DAYS:
            # Evaluations move forward through time: keep only the dates near the one asked for.
            self._by_date = {d: v for d, v in self._by_date.items() if abs((d - date).days) <= 2}
        self._by_date[date] = (rise, down)
        return rise, down


class ScheduleClock:
    """Schedule states per gemeente (those with devices), cached until the next boundary."""

    def __init__(self, ruleset: RuleSet, registry: Registry) -> None:
        self.tz = ZoneInfo(ruleset.timezone)
        coords = _mean_coordinates(registry)
        self.gemeenten: tuple[str, ...] = tuple(sorted(coords))
        self._index = {g: i for i, g in enumerate(self.gemeenten)}
        self._sun = [_SunTimes(Observer(*coords[g]), self.tz) for g in self.gemeenten]
        # The builtins win over a rule-file schedule of the same name (the parser refuses those anyway).
        self._schedules = {k: v for k, v in ruleset.schedules.items() if k not in (NIGHT, DAY)}
        # name -> (computed at, valid until, states): states hold on [computed at, valid until)
        self._cache: dict[str, tuple[float, float, npt.NDArray[np.bool_]]] = {}

    @property
    def names(self) -> tuple[str, ...]:
        """Every schedule name this clock answers for (night, day and the rule file's)."""
        return (NIGHT, DAY, *self._schedules)

    def index(self, gemeente: str) -> int:
        """The position of a gemeente in ``gemeenten`` (KeyError if it has no devices)."""
        return self._index[gemeente]

    def states(self, name: str, now: float) -> npt.NDArray[np.bool_]:
        """Whether the schedule is active at now, per gemeente in ``gemeenten`` order (read-only array)."""
        cached = self._cache.get(name)
        if cached is not None and cached[0] <= now < cached[1]:
            return cached[2]
        if name not in self._schedules and name not in (NIGHT, DAY):  # also with no gemeenten to ask
            raise KeyError(f"unknown schedule {name!r}; known: {', '.join(self.names)}")
        out = np.zeros(len(self.gemeenten), dtype=np.bool_)
        until = float("inf")
        for i in range(len(self.gemeenten)):
            active, change = self._at(name, i, now)
            out[i] = active
            until = min(until, change)
        out.flags.writeable = False  # shared by every caller until the next boundary
        self._cache[name] = (now, until, out)
        return out

    def state(self, name: str, gemeente: str, now: float) -> bool:
        """Whether the schedule is active at now in one gemeente (uncached; for the reference engine)."""
        return self._at(name, self._index[gemeente], now)[0]

    def _at(self, name: str, i: int, now: float) -> tuple[bool, float]:
        """(active at now, the next instant after now at which that may change)."""
        date = dt.datetime.fromtimestamp(now, self.tz).date()
        midnight = dt.datetime.combine(date + _ONE_DAY, dt.time(), self.tz).timestamp()
        if name in (NIGHT, DAY):
            # day is the plain interval [sunrise, sunset): it never wraps (an empty polar-night day
            # must not read as "from not before to", which would be all day).
            rise, down = self._sun[i].on(date)
            day = rise <= now < down
            return day == (name == DAY), _next_after(now, (rise, down, midnight))
        schedule = self._schedules.get(name)
        if schedule is None:
            raise KeyError(f"unknown schedule {name!r}; known: {', '.join(self.names)}")
        start, end = self._instant(schedule.start, i, date), self._instant(schedule.end, i, date)
        if start < end:
            active = start <= now < end and date.weekday() in schedule.days
        else:
            # Wraps: the part after from(D) belongs to D, the part before to(D) to the day before.
            yesterday = (date - _ONE_DAY).weekday()
            active = (now >= start and date.weekday() in schedule.days) or \
                     (now < end and yesterday in schedule.days)
        # Within date D the state can change only at from(D), to(D) and the next local midnight.
        return active, _next_after(now, (start, end, midnight))

    def _instant(self, when: TimeOfDay, i: int, date: dt.date) -> float:
        if when.anchor == "clock":
            # Wall-clock arithmetic: an aware datetime plus a timedelta keeps the wall time, so
            # "07:00" is 07:00 local on DST-change days too (a skipped time resolves with fold=0).
            local = dt.datetime.combine(date, dt.time(), self.tz) + dt.timedelta(seconds=when.seconds)
            return local.timestamp()
        rise, down = self._sun[i].on(date)
        return (rise if when.anchor == "sunrise" else down) + when.seconds


def _next_after(now: float, candidates: Iterable[float]) -> float:
    later = [c for c in candidates if c > now]
    return min(later) if later else float("inf")
