"""Durations: numbers of seconds or strings like "1h30m"; everything else refused with a clear message."""

from __future__ import annotations

import doctest
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules import durations
from rules.durations import MAX_SECONDS, DurationError, format_duration, parse_duration

FAST = settings(max_examples=200, derandomize=True, database=None, deadline=None)

GOOD = [
    (0, 0.0),
    (90, 90.0),
    (2.5, 2.5),
    (-0.0, 0.0),
    ("0s", 0.0),
    ("90s", 90.0),
    ("2m", 120.0),
    ("1h30m", 5400.0),
    ("1h90m", 9000.0),
    ("1d", 86400.0),
    ("500ms", 0.5),
    ("1.5h", 5400.0),
    ("0.25s", 0.25),
    ("1d2h3m4s5ms", 86400 + 7200 + 180 + 4 + 0.005),
    ("366d", MAX_SECONDS),
]


@pytest.mark.parametrize(("value", "seconds"), GOOD, ids=[repr(v) for v, _ in GOOD])
def test_good_durations(value: object, seconds: float) -> None:
    result = parse_duration(value)
    assert math.isclose(result, seconds)
    assert type(result) is float
    assert math.copysign(1.0, result) == 1.0


BAD = [
    (True, "True"),
    (False, "False"),
    (None, "None"),
    (-1, "-1"),
    (float("nan"), "nan"),
    (float("inf"), "inf"),
    (10**400, "1000000"),
    ("", "''"),
    ("-5s", "'-5s'"),
    ("5 s", "'5 s'"),
    ("1h 30m", "'1h 30m'"),
    ("30m1h", "'30m1h'"),
    ("1m1m", "'1m1m'"),
    ("5x", "'5x'"),
    ("5S", "'5S'"),
    ("1e3s", "'1e3s'"),
    ("1.s", "'1.s'"),
    (".5s", "'.5s'"),
    ("m", "'m'"),
    ("9" * 100 + "s", "'999"),
    ([1], "[1]"),
    ({"s": 1}, "{'s': 1}"),
]


@pytest.mark.parametrize(("value", "shown"), BAD, ids=[repr(v)[:20] for v, _ in BAD])
def test_bad_durations_name_the_field_and_show_the_value(value: object, shown: str) -> None:
    with pytest.raises(DurationError) as info:
        parse_duration(value, "for")
    message = str(info.value)
    assert message.startswith("for must be a duration (seconds >= 0, or a string like '90s', '2m', "
                              "'1h30m', '1d', '500ms')")
    assert message.endswith(shown) or shown in message
    assert len(message) < 200  # a hostile value cannot flood the log


def test_a_plain_number_in_a_string_gets_a_hint() -> None:
    with pytest.raises(DurationError, match=r"a number in a string needs a unit, e.g. '30s'\): '90'$"):
        parse_duration("90", "cooldown")


@pytest.mark.parametrize("value", ["367d", 366 * 86400 + 1, 1e308, "8785h"])
def test_more_than_a_year_is_refused(value: object) -> None:
    with pytest.raises(DurationError, match="over must be at most 366d"):
        parse_duration(value, "over")


def test_duration_error_is_a_value_error() -> None:
    assert issubclass(DurationError, ValueError)


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (30, "30s"), (300, "5m"), (5400, "1h30m"),
                                               (86400, "1d"), (90061, "1d1h1m1s"), (3600.0, "1h")])
def test_format_duration_writes_the_shortest_string(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_format_duration_leaves_fractions_as_numbers() -> None:
    assert format_duration(12.5) == 12.5
    assert format_duration(0.001) == 0.001


@FAST
@given(st.one_of(st.integers(0, int(MAX_SECONDS)),
                 st.floats(0, MAX_SECONDS, allow_nan=False, allow_infinity=False)))
def test_format_then_parse_gives_the_same_seconds(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


def test_module_examples_run() -> None:
    assert doctest.testmod(durations, raise_on_error=True).attempted > 0
