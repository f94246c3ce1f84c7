"""Schedules: sun times, DST days, wrap-around, the days filter, and the cache against the uncached answer."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.registry import Registry, parse
from rules.rule_model import RuleSet, Schedule, TimeOfDay
from rules.schedules import ScheduleClock

AMS = ZoneInfo("Europe/Amsterdam")
VOORSCHOTEN = "GM0626"
FAST = settings(max_examples=60, derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


def feature(props: dict[str, Any], lat: float, lon: float) -> dict[str, Any]:
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]}, "properties": props}


def registry() -> Registry:
    """Voorschoten (two devices averaging to 52.13 N 4.44 E), Groningen, an Arctic test gemeente, and a
    gemeente with only a gateway (no devices, so no schedule entry)."""
    features = [feature({"role": "gateway", "id": gw, "gemeente": gm}, 52.0, 5.0)
                for gw, gm in (("gw-v", VOORSCHOTEN), ("gw-g", "GM0014"), ("gw-p", "GM9999"), ("gw-e", "GM0001"))]
    devices = [("sl-v1", "gw-v", VOORSCHOTEN, 52.12, 4.43), ("sl-v2", "gw-v", VOORSCHOTEN, 52.14, 4.45),
               ("sl-g1", "gw-g", "GM0014", 53.22, 6.57), ("sl-p1", "gw-p", "GM9999", 78.22, 15.65)]
    for i, (dev, gw, gm, lat, lon) in enumerate(devices):
        features.append(feature({"role": "device", "id": dev, "kind": "street_light", "gateway": gw, "gemeente": gm,
                                 "wijk": f"WK{gm[2:]}01", "link": "lora", "address": f"{i:08X}"}, lat, lon))
    return parse({"type": "FeatureCollection", "cbs_map_year": 2024, "features": features})


def clock_at(hhmm: str) -> TimeOfDay:
    h, m = hhmm.split(":")
    return TimeOfDay("clock", int(h) * 3600.0 + int(m) * 60.0)


SCHEDULES = {
    "late": Schedule("late", clock_at("22:00"), clock_at("06:00"), frozenset({4})),  # Friday night only
    "office": Schedule("office", clock_at("08:00"), clock_at("17:00"), frozenset(range(5))),
    "evening": Schedule("evening", TimeOfDay("sunset", -1800.0), clock_at("23:00")),
    "small-hours": Schedule("small-hours", clock_at("00:00"), clock_at("04:00")),
    "skipped": Schedule("skipped", clock_at("02:30"), clock_at("05:00")),
    "always": Schedule("always", clock_at("00:00"), clock_at("00:00")),
}


@pytest.fixture(scope="module")
def clock() -> ScheduleClock:
    rs = RuleSet(version=2, rules=(), schedules=SCHEDULES, timezone="Europe/Amsterdam", source="test")
    return ScheduleClock(rs, registry())


def local(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> float:
    return dt.datetime(y, mo, d, h, mi, tzinfo=AMS).timestamp()


def flip(active: Callable[[float], bool], lo: float, hi: float) -> float:
    """The instant (to a tenth of a second) at which active changes between lo and hi."""
    start = active(lo)
    assert active(hi) != start, "no change in the interval"
    while hi - lo > 0.1:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if active(mid) == start else (lo, mid)
    return hi


def active_seconds(clock: ScheduleClock, name: str, start: float, end: float, step: float = 60.0) -> float:
    n = int((end - start) / step)
    return sum(step for k in range(n) if clock.state(name, VOORSCHOTEN, start + k * step))


def test_gemeenten_are_the_sorted_ones_with_devices(clock: ScheduleClock) -> None:
    assert clock.gemeenten == ("GM0014", VOORSCHOTEN, "GM9999")
    assert clock.names[:2] == ("night", "day")


# Published times for Voorschoten/Leiden (rounded to the minute): 21 June 2024 sunrise 05:21, sunset 22:06
# CEST; 21 December 2024 sunrise 08:49, sunset 16:31 CET.
@pytest.mark.parametrize(("date", "rise", "down"), [
    ((2024, 6, 21), (5, 21), (22, 6)),
    ((2024, 12, 21), (8, 49), (16, 31)),
])
def test_day_and_night_flip_at_published_sun_times(clock: ScheduleClock, date: tuple[int, int, int],
                                                  rise: tuple[int, int], down: tuple[int, int]) -> None:
    def day(t: float) -> bool:
        return clock.state("day", VOORSCHOTEN, t)

    sunrise = flip(day, local(*date, 3), local(*date, 12))
    sunset = flip(day, local(*date, 12), local(*date, 23, 59))
    assert abs(sunrise - local(*date, *rise)) <= 60 + 30  # a minute, plus the published rounding
    assert abs(sunset - local(*date, *down)) <= 60 + 30
    assert clock.state("night", VOORSCHOTEN, sunrise - 1) and not clock.state("night", VOORSCHOTEN, sunrise + 1)
    assert not clock.state("night", VOORSCHOTEN, sunset - 1) and clock.state("night", VOORSCHOTEN, sunset + 1)


def test_sun_times_follow_the_gemeentes_coordinates(clock: ScheduleClock) -> None:
    # Groningen lies 2 degrees east of Voorschoten: the sun rises there about 8 minutes earlier.
    def day_in(gm: str) -> Callable[[float], bool]:
        return lambda t: clock.state("day", gm, t)

    v = flip(day_in(VOORSCHOTEN), local(2024, 9, 22, 4), local(2024, 9, 22, 11))
    g = flip(day_in("GM0014"), local(2024, 9, 22, 4), local(2024, 9, 22, 11))
    assert 5 * 60 < v - g < 12 * 60


def test_polar_day_is_all_day_and_polar_night_all_night(clock: ScheduleClock) -> None:
    for h in range(24):
        assert clock.state("day", "GM9999", local(2024, 6, 21, h, 30))
        assert clock.state("night", "GM9999", local(2024, 12, 21, h, 30))


def test_dst_spring_forward_day(clock: ScheduleClock) -> None:
    # 31 March 2024: 02:00 CET becomes 03:00 CEST. 00:00-04:00 lasts three real hours.
    assert active_seconds(clock, "small-hours", local(2024, 3, 30, 23), local(2024, 3, 31, 6)) == 3 * 3600
    # A boundary in the skipped hour (02:30) is read with the offset before the change: 03:30 CEST.
    start = flip(lambda t: clock.state("skipped", VOORSCHOTEN, t), local(2024, 3, 31, 1), local(2024, 3, 31, 4, 30))
    assert start == pytest.approx(local(2024, 3, 31, 3, 30), abs=0.2)
    # Sunrise that day, 07:18:40 CEST by astral; an hour later than the day before on the clock.
    assert not clock.state("day", VOORSCHOTEN, local(2024, 3, 31, 7, 17))
    assert clock.state("day", VOORSCHOTEN, local(2024, 3, 31, 7, 20))
    assert clock.state("day", VOORSCHOTEN, local(2024, 3, 30, 7, 0))
    # Clock times keep their wall time across the change: office hours start at 08:00 CEST on Monday.
    start = flip(lambda t: clock.state("office", VOORSCHOTEN, t), local(2024, 4, 1, 6), local(2024, 4, 1, 10))
    assert start == pytest.approx(local(2024, 4, 1, 8), abs=0.2)


def test_dst_fall_back_day(clock: ScheduleClock) -> None:
    # 27 October 2024: 03:00 CEST becomes 02:00 CET. 00:00-04:00 lasts five real hours.
    assert active_seconds(clock, "small-hours", local(2024, 10, 26, 23), local(2024, 10, 27, 6)) == 5 * 3600
    assert not clock.state("day", VOORSCHOTEN, local(2024, 10, 27, 7, 28))
    assert clock.state("day", VOORSCHOTEN, local(2024, 10, 27, 7, 31))


def test_wrap_around_belongs_to_the_day_it_starts(clock: ScheduleClock) -> None:
    assert dt.date(2024, 6, 21).weekday() == 4  # a Friday
    assert clock.state("late", VOORSCHOTEN, local(2024, 6, 21, 23))  # Friday evening
    assert clock.state("late", VOORSCHOTEN, local(2024, 6, 22, 5, 59))  # Saturday small hours: Friday's period
    assert not clock.state("late", VOORSCHOTEN, local(2024, 6, 22, 6, 0))  # to is exclusive
    assert not clock.state("late", VOORSCHOTEN, local(2024, 6, 21, 5))  # Thursday's period: not in days
    assert not clock.state("late", VOORSCHOTEN, local(2024, 6, 22, 23))  # Saturday evening
    assert not clock.state("late", VOORSCHOTEN, local(2024, 6, 21, 21, 59))
    assert clock.state("late", VOORSCHOTEN, local(2024, 6, 21, 22, 0))  # from is inclusive


def test_from_equal_to_wraps_to_all_day(clock: ScheduleClock) -> None:
    assert all(clock.state("always", VOORSCHOTEN, local(2024, 5, 1, h)) for h in range(24))


def test_days_filter(clock: ScheduleClock) -> None:
    assert clock.state("office", VOORSCHOTEN, local(2024, 6, 17, 10))  # Monday
    assert clock.state("office", VOORSCHOTEN, local(2024, 6, 21, 16, 59))  # Friday
    assert not clock.state("office", VOORSCHOTEN, local(2024, 6, 22, 10))  # Saturday
    assert not clock.state("office", VOORSCHOTEN, local(2024, 6, 17, 7, 59))


def test_sun_anchor_with_offset(clock: ScheduleClock) -> None:
    def day(t: float) -> bool:
        return clock.state("day", VOORSCHOTEN, t)

    sunset = flip(day, local(2024, 12, 21, 12), local(2024, 12, 21, 23))
    start = flip(lambda t: clock.state("evening", VOORSCHOTEN, t), local(2024, 12, 21, 12), local(2024, 12, 21, 22))
    assert start == pytest.approx(sunset - 1800, abs=0.3)
    assert not clock.state("evening", VOORSCHOTEN, local(2024, 12, 21, 23, 0))


def test_states_are_cached_until_the_next_boundary(clock: ScheduleClock) -> None:
    t = local(2024, 6, 21, 12)
    first = clock.states("night", t)
    assert clock.states("night", t + 3600) is first  # no boundary in between: the same array
    assert not first.flags.writeable
    assert list(first) == [False, False, False]
    assert list(clock.states("night", local(2024, 6, 21, 23, 30))) == [True, True, False]


def test_unknown_schedule(clock: ScheduleClock) -> None:
    with pytest.raises(KeyError, match="unknown schedule"):
        clock.states("brunch", 0.0)


def _boundaries() -> list[float]:
    """Instants near which the schedules change (clock times and sunrises), over a few weeks."""
    out = []
    for day in range(0, 400, 9):
        base = dt.date(2024, 1, 1) + dt.timedelta(days=day)
        for h, m in ((0, 0), (2, 30), (4, 0), (5, 21), (6, 0), (8, 0), (8, 49), (16, 31), (17, 0), (22, 0), (23, 0)):
            out.append(local(base.year, base.month, base.day, h, m))
    return out


_INSTANT = st.one_of(
    st.floats(local(2024, 1, 1), local(2025, 12, 31)),
    st.tuples(st.sampled_from(_boundaries()), st.floats(-400.0, 400.0)).map(sum),
)


@FAST
@given(times=st.lists(_INSTANT, min_size=1, max_size=30), ordered=st.booleans())
def test_cached_states_equal_uncached_state(clock: ScheduleClock, times: list[float], ordered: bool) -> None:
    # Evaluations move forward in the service; arbitrary order checks that the cache never outlives its period.
    for t in sorted(times) if ordered else times:
        for name in clock.names:
            got = clock.states(name, t)
            assert [bool(x) for x in got] == [clock.state(name, g, t) for g in clock.gemeenten], (name, t)
