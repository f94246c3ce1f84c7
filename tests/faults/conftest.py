"""Fixtures of the fault-injection suite: the running city, and the report table every test adds a row to.

SMARTCITY_FAULT_RUNS (default 1) repeats each fault; SMARTCITY_FAULT_CUT_SECONDS (default 10) is how
long the network cut lasts. The table goes to <pytest base temp>/faults-report.json, to the file
SMARTCITY_FAULT_REPORT names if set, and to the terminal at the end (tests/faults/report.py renders it).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from core.registry import Registry
from tests.faults.accounting import Tally
from tests.faults.pipeline import City
from tests.faults.report import table

RUNS = int(os.environ.get("SMARTCITY_FAULT_RUNS", "1"))
CUT_SECONDS = float(os.environ.get("SMARTCITY_FAULT_CUT_SECONDS", "10"))

_rows: list[dict[str, Any]] = []


@pytest.fixture
def city_factory(tmp_path: Path, demo_registry: Registry) -> Iterator[Callable[..., City]]:
    """Start a City (tests/faults/pipeline.py) with the given options; every process is stopped at the end."""
    cities: list[City] = []

    def make(**options: Any) -> City:
        c = City(tmp_path / f"city{len(cities)}", demo_registry, **options)
        cities.append(c)
        c.start()
        return c

    yield make
    for c in cities:
        c.stop()


@pytest.fixture
def report(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Tally], None]:
    """Add a run's figures to the suite's report (written after each test, so a crash keeps the rows so far)."""
    out = tmp_path_factory.getbasetemp() / "faults-report.json"

    def add(t: Tally) -> None:
        row = t.as_dict()
        row.pop("stored_per_device", None)
        _rows.append(row)
        text = json.dumps(_rows, indent=1)
        out.write_text(text)
        extra = os.environ.get("SMARTCITY_FAULT_REPORT")
        if extra:
            Path(extra).write_text(text)

    return add


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _rows:
        terminalreporter.write_sep("=", "fault-injection report")
        terminalreporter.write_line(table(_rows))
