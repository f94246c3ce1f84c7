"""RG-15 line parser."""

from __future__ import annotations

import pytest

from core.kinds import KINDS
from edge.rg15 import InfoKind, RG15Error, RG15Info, RG15Reading, parse_line

METRIC = "Acc  0.00 mm, EventAcc  0.00 mm, TotalAcc  1.23 mm, RInt  0.00 mmph"


def test_metric_line_with_double_spaces() -> None:
    assert parse_line(METRIC) == RG15Reading(0.0, 0.0, 1.23, 0.0)
    assert parse_line(METRIC + "\r\n") == RG15Reading(0.0, 0.0, 1.23, 0.0)


def test_metric_line_values_in_order() -> None:
    line = "Acc  0.12 mm, EventAcc  3.45 mm, TotalAcc  67.89 mm, RInt  12.50 mmph"
    assert parse_line(line) == RG15Reading(0.12, 3.45, 67.89, 12.5)


@pytest.mark.parametrize("line", [
    "Acc 0.12 mm, EventAcc 3.45 mm, TotalAcc 67.89 mm, RInt 12.50 mmph",  # single spaces
    "Acc  0.12 mm, EventAcc  3.45 mm, TotalAcc 67.89 mm, RInt 12.50 mmph",  # a right-aligned wide field
    "Acc   0.12 mm,  EventAcc\t3.45 mm, TotalAcc  67.89 mm , RInt  12.50 mmph",
])
def test_whitespace_tolerance(line: str) -> None:
    assert parse_line(line) == RG15Reading(0.12, 3.45, 67.89, 12.5)


def test_wide_number_without_space() -> None:
    line = "Acc  0.00 mm, EventAcc  0.00 mm, TotalAcc123.45 mm, RInt  0.00 mmph"
    assert parse_line(line).total_accumulation == 123.45  # type: ignore[union-attr]


def test_imperial_line_is_converted_to_metric() -> None:
    assert parse_line("Acc 0.001 in, EventAcc 0.010 in, TotalAcc 1.000 in, RInt 0.500 iph") == RG15Reading(
        0.0254, 0.254, 25.4, 12.7)


def test_low_resolution_imperial() -> None:
    assert parse_line("Acc 0.01 in, EventAcc 0.02 in, TotalAcc 0.50 in, RInt 0.10 iph") == RG15Reading(
        0.254, 0.508, 12.7, 2.54)


@pytest.mark.parametrize("line", [
    "Acc  0.00 in, EventAcc  0.00 mm, TotalAcc  1.23 mm, RInt  0.00 mmph",
    "Acc  0.00 mm, EventAcc  0.00 mm, TotalAcc  1.23 mm, RInt  0.00 iph",
])
def test_mixed_units_rejected(line: str) -> None:
    with pytest.raises(RG15Error, match="mixes metric and imperial"):
        parse_line(line)


def test_metrics_use_rain_gauge_names() -> None:
    reading = parse_line(METRIC)
    assert isinstance(reading, RG15Reading)
    assert set(reading.metrics()) == set(KINDS["rain_gauge"].metrics)
    assert reading.metrics()["total_accumulation"] == 1.23


@pytest.mark.parametrize("line", [
    ";Hydreon RG-15 Rain Gauge",
    ";",
    "SW 1.000 2020.06.05",
    "Emitters 9 10 9 11",
    "EmTotal 39",
    "DIP 0000",
    "PwrDays 0",
    "Emitters 9 10, EmTotal 19",
])
def test_boot_header(line: str) -> None:
    assert parse_line(line) == RG15Info(InfoKind.HEADER, line)


@pytest.mark.parametrize("line", ["p", "c", "m", "i", "P"])
def test_mode_replies(line: str) -> None:
    assert parse_line(line + "\r\n") == RG15Info(InfoKind.MODE, line)


def test_baud_reply() -> None:
    assert parse_line("Baud 9600") == RG15Info(InfoKind.BAUD, "Baud 9600")


@pytest.mark.parametrize("line", ["Reset N", "Reset W", "Event", "LensBad", "EmSat", "TooCold",
                                  "LensBad, TooCold"])
def test_status_words(line: str) -> None:
    assert parse_line(line) == RG15Info(InfoKind.STATUS, line)


@pytest.mark.parametrize("line", [
    "",
    "garbage",
    "Acc  0.00 mm",  # the reply to A is not a full reading
    "Acc  0.00 mm, EventAcc  0.00 mm, TotalAcc  1.23 mm",
    "Acc  -1.00 mm, EventAcc  0.00 mm, TotalAcc  1.23 mm, RInt  0.00 mmph",
    "Acc  x.00 mm, EventAcc  0.00 mm, TotalAcc  1.23 mm, RInt  0.00 mmph",
    METRIC + " extra",
    "Baud",
    "Reset",
    "Eventually",
    "SWx 1.0",
    "Emitters 9, garbage",
    "q",
    "\ufffd\ufffd",
    ";\ufffd\x1b\ufffdZ",  # noise that starts with ';' is not a header comment (the scenario's garbage found it)
])
def test_garbage_rejected_naming_the_line(line: str) -> None:
    with pytest.raises(RG15Error) as info:
        parse_line(line)
    assert repr(line) in str(info.value)
