"""check.py passes the built dashboards and names each broken form precisely."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from dashboards.build import build_all
from dashboards.check import check_all, check_dashboard, referenced_variables

LIGHTING = "smartcity-lighting-energy"


def _lighting() -> dict[str, Any]:
    return copy.deepcopy(build_all()[LIGHTING])


def test_built_dashboards_pass() -> None:
    assert check_all(build_all().values()) == []


def test_referenced_variables() -> None:
    assert referenced_variables('"g" =~ /^$gemeente$/ AND ${wijk:regex} [[gateway]] $timeFilter') == [
        "gemeente", "wijk", "gateway", "timeFilter"]


def _panel(d: dict[str, Any], pid: int) -> dict[str, Any]:
    return next(p for p in d["panels"] if p["id"] == pid)


def _overlap(d: dict[str, Any]) -> None:
    _panel(d, 5)["gridPos"] = dict(_panel(d, 4)["gridPos"])


def _undefined_variable(d: dict[str, Any]) -> None:
    _panel(d, 5)["targets"][0]["query"] += ' AND "x" =~ /^$district$/'


def _duplicate_id(d: dict[str, Any]) -> None:
    _panel(d, 6)["id"] = 5


def _missing_ds_uid(d: dict[str, Any]) -> None:
    del _panel(d, 5)["targets"][0]["datasource"]["uid"]


def _beyond_grid(d: dict[str, Any]) -> None:
    _panel(d, 6)["gridPos"]["w"] = 14


BROKEN: list[tuple[Callable[[dict[str, Any]], None], str]] = [
    (lambda d: d.update(schemaVersion=41), f"{LIGHTING}: schemaVersion is 41, want 42"),
    (_missing_ds_uid, f"{LIGHTING} panel 5 'Power per wijk' target 'A': datasource uid is None, "
                      "want 'smartcity-influxdb'"),
    (_overlap, f"{LIGHTING} panel 5 'Power per wijk': gridPos overlaps panel 4"),
    (_undefined_variable, f"{LIGHTING} panel 5 'Power per wijk' target 'A': query uses undefined variable $district"),
    (_duplicate_id, f"{LIGHTING} panel 5 'Energy per wijk per day (lamp meters)': id 5 is used by another panel"),
    (_beyond_grid, f"{LIGHTING} panel 6 'Energy per wijk per day (lamp meters)': gridPos x + w = 26 is beyond 24 "
                   "columns"),
    (lambda d: _panel(d, 5).update(type="graph"), f"{LIGHTING} panel 5 'Power per wijk': unknown panel type 'graph'"),
    (lambda d: _panel(d, 5).pop("description"), f"{LIGHTING} panel 5 'Power per wijk': has no description"),
    (lambda d: _panel(d, 5)["targets"][0].update(rawQuery=False),
     f"{LIGHTING} panel 5 'Power per wijk' target 'A': rawQuery must be true (raw InfluxQL)"),
    (lambda d: _panel(d, 5)["targets"][0].update(resultFormat="table"),
     f"{LIGHTING} panel 5 'Power per wijk' target 'A': a timeseries panel needs resultFormat 'time_series'"),
    (lambda d: _panel(d, 5).pop("gridPos"), f"{LIGHTING} panel 5 'Power per wijk': gridPos is missing"),
    (lambda d: _panel(d, 5)["gridPos"].update(x=1.5), f"{LIGHTING} panel 5 'Power per wijk': gridPos x must be "
                                                      "integers"),
    (lambda d: d["templating"]["list"].reverse(),
     f"{LIGHTING} variable 0 'wijk': query uses undefined variable $gemeente"),
    (lambda d: d["templating"]["list"][0].update(allValue=".*"),
     f"{LIGHTING} variable 0 'gemeente': has a custom allValue (Grafana's regex of all values is wanted)"),
    (lambda d: d["annotations"]["list"][0]["datasource"].update(type="prometheus"),
     f"{LIGHTING} annotation 0 'Rule events': datasource type is 'prometheus', want 'influxdb'"),
    (lambda d: d["annotations"]["list"][0]["target"].pop("textColumn"),
     f"{LIGHTING} annotation 0 'Rule events': target names no textColumn"),
    (lambda d: _panel(d, 2).update(repeat="district"),
     f"{LIGHTING} panel 2 'Energy saved by dimming in $wijk (per day)': repeats over undefined variable 'district'"),
    (lambda d: d.update(unknownKey=1), f"{LIGHTING}: does not round-trip through the SDK: unknownKey is dropped"),
]


@pytest.mark.parametrize(("mutate", "message"), BROKEN)
def test_each_broken_form_is_named(mutate: Callable[[dict[str, Any]], None], message: str) -> None:
    d = _lighting()
    mutate(d)
    assert message in check_dashboard(d)


def test_geomap_shape_is_checked() -> None:
    d = copy.deepcopy(build_all()["smartcity-city-overview"])
    geomap = next(p for p in d["panels"] if p["type"] == "geomap")
    geomap["options"]["layers"][0]["location"]["latitude"] = "latitude"
    assert any("geomap layer location must be mode 'coords'" in m for m in check_dashboard(d))


def test_duplicate_uid_across_dashboards() -> None:
    d = _lighting()
    assert f"{LIGHTING}: uid is used by more than one dashboard" in check_all([d, copy.deepcopy(d)])
