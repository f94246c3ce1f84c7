"""The committed dashboard JSON is exactly what the builder produces; the CLI's build and check."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from dashboards.build import JSON_DIR, MODULES, build_all, render, write_all
from dashboards.influxql import InfluxQL, InfluxQLQuery
from smartcity.cli import main

UIDS = {"smartcity-city-overview", "smartcity-lighting-energy", "smartcity-rain-cycling", "smartcity-occupancy",
        "smartcity-alarms-commands", "smartcity-platform-health"}


def test_committed_json_equals_builder_output() -> None:
    built = build_all()
    assert set(built) == UIDS and len(MODULES) == len(UIDS)
    for uid, dashboard in built.items():
        assert (JSON_DIR / f"{uid}.json").read_text() == render(dashboard), uid
    assert {p.stem for p in JSON_DIR.glob("*.json")} == UIDS


def test_build_is_deterministic() -> None:
    assert json.dumps(build_all(), sort_keys=True) == json.dumps(build_all(), sort_keys=True)


def test_influxql_target_json_and_round_trip() -> None:
    q = InfluxQL('SELECT  mean("power")\n FROM "street_light"').ref_id("B").table().alias("$tag_wijk").build()
    out = q.to_json()
    assert out == {"refId": "B", "datasource": {"type": "influxdb", "uid": "smartcity-influxdb"},
                   "query": 'SELECT mean("power") FROM "street_light"', "rawQuery": True, "resultFormat": "table",
                   "alias": "$tag_wijk"}
    assert InfluxQLQuery.from_json(out).to_json() == out


def test_cli_build_writes_and_check_passes(tmp_path: Path, capsys) -> None:
    out = tmp_path / "json"
    assert main(["dashboards", "build", "--dir", str(out)]) == 0
    assert {p.stem for p in out.glob("*.json")} == UIDS
    assert main(["dashboards", "check", "--dir", str(out)]) == 0
    capsys.readouterr()


def test_cli_check_fails_on_stale_or_broken_json(tmp_path: Path, capsys) -> None:
    out = tmp_path / "json"
    shutil.copytree(JSON_DIR, out)
    path = out / "smartcity-occupancy.json"
    d = json.loads(path.read_text())
    d["schemaVersion"] = 41
    path.write_text(render(d))
    (out / "smartcity-old.json").write_text(render(build_all()["smartcity-occupancy"] | {"uid": "smartcity-old"}))
    assert main(["dashboards", "check", "--dir", str(out)]) == 1
    err = capsys.readouterr().err
    assert "smartcity-occupancy: schemaVersion is 41, want 42" in err
    assert "smartcity-occupancy: smartcity-occupancy.json differs from the builder's output" in err
    assert "smartcity-old: smartcity-old.json is not built by any dashboard module" in err
    assert "smartcity-old: title 'Smart city: occupancy' is also the title of smartcity-occupancy" in err


def test_write_all_removes_stale_files(tmp_path: Path) -> None:
    (tmp_path / "smartcity-gone.json").write_text("{}")
    write_all(tmp_path)
    assert {p.stem for p in tmp_path.glob("*.json")} == UIDS


def test_cli_push_without_token_is_a_usage_error(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("SMARTCITY_GRAFANA_TOKEN", raising=False)
    monkeypatch.delenv("SMARTCITY_GRAFANA_TOKEN_FILE", raising=False)
    assert main(["dashboards", "push", "--url", "http://127.0.0.1:9"]) == 2
    assert "no Grafana token: set SMARTCITY_GRAFANA_TOKEN" in capsys.readouterr().err
