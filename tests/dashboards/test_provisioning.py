"""dashboards/provisioning: the files Grafana loads at start, checked as Grafana reads them.

Grafana replaces `$NAME` and `${NAME}` in provisioning values with environment variables (`$$` is a
literal `$`): `grafana_expand` does the same, so the tests see the values Grafana would use.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from core.settings import InfluxSettings, influx_to_env
from dashboards import datasource, push
from deploy.grafana import grafana_env

ENV_REFERENCE = re.compile(r"\$\$|\$\{(\w+)\}|\$(\w+)")
SECRET_KEYS = re.compile(r"password|token|secret|apikey|api_key|httpheadervalue", re.IGNORECASE)
# Credential shapes: Grafana service-account tokens and API keys, JWTs, InfluxDB 2.x tokens.
CREDENTIAL_SHAPES = re.compile(r"glsa_[A-Za-z0-9_]{8,}|glc_[A-Za-z0-9+/=]{8,}|eyJ[A-Za-z0-9_-]{20,}|"
                               r"[A-Za-z0-9_-]{86}==")


def grafana_expand(value: Any, env: dict[str, str]) -> Any:
    """A provisioning value as Grafana sees it: environment references replaced, unset ones empty."""
    if isinstance(value, str):
        return ENV_REFERENCE.sub(lambda m: "$" if m[0] == "$$" else env.get(m[1] or m[2], ""), value)
    if isinstance(value, dict):
        return {k: grafana_expand(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [grafana_expand(v, env) for v in value]
    return value


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict) and data["apiVersion"] == 1
    return data


def provisioned() -> dict[str, Any]:
    sources = load(datasource.DATASOURCE_YAML)["datasources"]
    assert len(sources) == 1
    return dict(sources[0])


def test_the_committed_datasource_file_is_what_datasource_py_renders() -> None:
    assert datasource.DATASOURCE_YAML.read_text() == datasource.provisioning_yaml()
    assert provisioned() == datasource.provisioned_datasource()


def test_the_datasource_is_the_influxql_one_every_panel_names() -> None:
    ds = provisioned()
    assert {"type": ds["type"], "uid": ds["uid"]} == datasource.DATASOURCE_REF == {"type": "influxdb",
                                                                                   "uid": "smartcity-influxdb"}
    assert ds["access"] == "proxy" and ds["orgId"] == 1 and ds["editable"] is False
    assert ds["jsonData"] == {"version": "InfluxQL", "dbName": "smartcity", "httpMode": "POST"}
    assert "database" not in ds and "password" not in ds  # deprecated and clear-text fields unused


def test_connection_settings_are_the_environment_variables_the_services_read() -> None:
    ds = provisioned()
    names = influx_to_env(InfluxSettings(username="u", password="p"))
    assert ds["url"] == "$SMARTCITY_INFLUX_URL" and "SMARTCITY_INFLUX_URL" in names
    assert ds["user"] == "$SMARTCITY_INFLUX_USERNAME" and "SMARTCITY_INFLUX_USERNAME" in names
    assert ds["secureJsonData"] == {"password": "$SMARTCITY_INFLUX_PASSWORD"} and "SMARTCITY_INFLUX_PASSWORD" in names


def test_the_file_as_grafana_reads_it_equals_the_datasource_push_sends() -> None:
    env = {"SMARTCITY_INFLUX_URL": "http://127.0.0.1:18086", "SMARTCITY_INFLUX_USERNAME": "grafana",
           "SMARTCITY_INFLUX_PASSWORD": "from-the-environment"}
    seen = grafana_expand(provisioned(), env)
    pushed = datasource.datasource_from_env(env)
    assert {k: v for k, v in seen.items() if k not in ("orgId", "editable")} == pushed
    # Without authentication the user and password are empty, as Grafana leaves unset variables.
    bare = grafana_expand(provisioned(), {"SMARTCITY_INFLUX_URL": "http://127.0.0.1:18086"})
    assert (bare["user"], bare["secureJsonData"]["password"]) == ("", "")
    assert datasource.datasource_from_env({"SMARTCITY_INFLUX_URL": "http://127.0.0.1:18086"}) == \
        {k: v for k, v in bare.items() if k not in ("orgId", "editable")}


def test_the_dashboard_provider_loads_the_json_folder_into_the_smart_city_folder() -> None:
    providers = load(datasource.PROVIDER_YAML)["providers"]
    assert len(providers) == 1
    provider = providers[0]
    assert provider["type"] == "file" and provider["orgId"] == 1
    assert provider["folder"] == datasource.FOLDER_TITLE == "Smart city"
    assert provider["folderUid"] == datasource.FOLDER_UID  # the folder push uses too
    assert provider["allowUiUpdates"] is False and provider["disableDeletion"] is True
    assert provider["options"]["path"] == f"${datasource.DASHBOARDS_DIR_ENV}"
    assert provider["options"]["foldersFromFilesStructure"] is False


def test_the_provider_path_resolves_to_the_json_folder_in_the_demo_grafana(tmp_path: Path) -> None:
    env = grafana_env(tmp_path, port=3000, admin_password="x", secret_key="y", influx_url="http://127.0.0.1:1",
                      influx_user=None, influx_password=None)
    path = Path(grafana_expand(load(datasource.PROVIDER_YAML)["providers"][0]["options"]["path"], env))
    assert path.is_absolute() and path == (Path(__file__).parents[2] / "dashboards" / "json").resolve()
    assert path == datasource.DASHBOARDS_JSON_DIR
    assert path.is_dir() and sorted(p.stem for p in path.glob("*.json")) == sorted(push.load_dashboards(path))


def test_the_readme_command_line_sets_every_variable_the_files_name() -> None:
    readme = (datasource.PACKAGE_DIR / "README.md").read_text()
    texts = datasource.DATASOURCE_YAML.read_text() + datasource.PROVIDER_YAML.read_text()
    named = {m[1] or m[2] for m in ENV_REFERENCE.finditer(texts) if m[0] != "$$"} - {"NAME"}
    assert named == {"SMARTCITY_INFLUX_URL", "SMARTCITY_INFLUX_USERNAME", "SMARTCITY_INFLUX_PASSWORD",
                     "SMARTCITY_GRAFANA_DASHBOARDS"}
    assert all(f"{name}=" in readme for name in named)
    assert "GF_PATHS_PROVISIONING=" in readme


def _structured_secrets(value: Any, where: str) -> list[str]:
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if SECRET_KEYS.search(str(key)) and isinstance(item, str) and item and not item.startswith("$"):
                found.append(f"{where}: {key} = {item!r}")
            found += _structured_secrets(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += _structured_secrets(item, f"{where}[{i}]")
    return found


def test_no_secret_literal_in_any_file_under_dashboards() -> None:
    files = [p for p in datasource.PACKAGE_DIR.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert datasource.DATASOURCE_YAML in files and datasource.PROVIDER_YAML in files
    problems: list[str] = []
    for path in files:
        text = path.read_text(errors="replace")
        problems += [f"{path}: looks like a credential: {m[0][:12]}..." for m in CREDENTIAL_SHAPES.finditer(text)]
        if path.suffix in (".yaml", ".yml"):
            problems += _structured_secrets(yaml.safe_load(text), str(path))
        elif path.suffix == ".json":
            problems += _structured_secrets(json.loads(text), str(path))
            assert "secureJsonData" not in text, f"{path}: a dashboard carries datasource secrets"
    assert problems == []


def test_the_secret_check_finds_a_planted_secret() -> None:
    # The check above must be able to fail: the same walk finds a literal and a token shape.
    planted = {"datasources": [{"secureJsonData": {"password": "hunter2"}, "url": "$SMARTCITY_INFLUX_URL"}]}
    assert _structured_secrets(planted, "planted") == ["planted.datasources[0].secureJsonData: password = 'hunter2'"]
    assert CREDENTIAL_SHAPES.search("token: glsa_abcdefghijklmnop_12345678")
