"""The one InfluxDB (InfluxQL) datasource every dashboard uses: for the HTTP API and for provisioning.

One definition, two renderings: `datasource_definition()` builds the body that `dashboards.push`
sends to Grafana's datasource API, and `provisioning_yaml()` renders the same definition with
Grafana's `$NAME` environment placeholders in place of the connection settings, which is what
dashboards/provisioning/datasources/smartcity.yaml holds (a test checks that the committed file equals
the rendering). So the file in git never holds a secret: Grafana reads URL, user and password from
the SMARTCITY_INFLUX_* variables that every service reads (core.settings) when it loads the file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.settings import InfluxSettings, influx_from_env

DATASOURCE_UID = "smartcity-influxdb"
DATASOURCE_NAME = "Smart city InfluxDB"
DATASOURCE_TYPE = "influxdb"
# What every panel, target, annotation and query variable of the dashboards names.
DATASOURCE_REF: dict[str, str] = {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID}

# The database the provisioned datasource queries. Fixed in the file (not a placeholder): Grafana
# has no default for an unset variable, and an empty dbName would break every panel.
PROVISIONED_DATABASE = "smartcity"

# The variables Grafana interpolates into the provisioning files; the same names core.settings reads.
URL_ENV = "SMARTCITY_INFLUX_URL"
USER_ENV = "SMARTCITY_INFLUX_USERNAME"
PASSWORD_ENV = "SMARTCITY_INFLUX_PASSWORD"
# Absolute path of the dashboards' JSON folder, for the file provider (Grafana resolves a relative
# path against its own working directory, which is rarely the repository).
DASHBOARDS_DIR_ENV = "SMARTCITY_GRAFANA_DASHBOARDS"

PACKAGE_DIR = Path(__file__).resolve().parent
DASHBOARDS_JSON_DIR = PACKAGE_DIR / "json"
PROVISIONING_DIR = PACKAGE_DIR / "provisioning"
DATASOURCE_YAML = PROVISIONING_DIR / "datasources" / "smartcity.yaml"
PROVIDER_YAML = PROVISIONING_DIR / "dashboards" / "smartcity.yaml"

# The folder both the file provider and `push` put the dashboards in.
FOLDER_UID = "smartcity"
FOLDER_TITLE = "Smart city"


def datasource_definition(url: str, user: str, password: str, database: str) -> dict[str, Any]:
    """The datasource as Grafana's datasource API takes it (POST /api/datasources)."""
    return {
        "uid": DATASOURCE_UID,
        "name": DATASOURCE_NAME,
        "type": DATASOURCE_TYPE,
        "access": "proxy",  # Grafana's backend queries InfluxDB; the browser never sees the password
        "url": url,
        "user": user,
        "basicAuth": False,
        "isDefault": False,  # dashboards name the uid; an operator's own default stays theirs
        "jsonData": {
            "version": "InfluxQL",
            "dbName": database,
            # POST keeps long InfluxQL (the energy panels) out of URLs and proxy logs.
            "httpMode": "POST",
        },
        "secureJsonData": {"password": password},
    }


def datasource_from_settings(settings: InfluxSettings) -> dict[str, Any]:
    """The datasource for the InfluxDB that settings describe."""
    return datasource_definition(settings.url, settings.username or "", settings.password or "", settings.database)


def datasource_from_env(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The datasource for the InfluxDB of the SMARTCITY_INFLUX_* variables."""
    return datasource_from_settings(influx_from_env(os.environ if env is None else env))


def provisioned_datasource() -> dict[str, Any]:
    """The datasource as the provisioning file holds it: connection settings as `$NAME` placeholders."""
    ds = datasource_definition(f"${URL_ENV}", f"${USER_ENV}", f"${PASSWORD_ENV}", PROVISIONED_DATABASE)
    # Provisioning-only keys: the organisation, and no editing in the UI (the file is the truth).
    return {**ds, "orgId": 1, "editable": False}


def _scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid YAML double-quoted scalar
    raise TypeError(f"no YAML rendering for {type(value).__name__}")


def _yaml_lines(value: object, indent: int) -> list[str]:
    # A tiny emitter for the shapes used here (maps, lists of maps, scalars): PyYAML is a dev
    # dependency only, and the server install must be able to render the file.
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict | list):
                lines.append(f"{pad}{key}:")
                lines.extend(_yaml_lines(item, indent + 2))
            else:
                lines.append(f"{pad}{key}: {_scalar(item)}")
    elif isinstance(value, list):
        for item in value:
            body = _yaml_lines(item, indent + 2)
            lines.append(f"{pad}- {body[0].lstrip()}")
            lines.extend(body[1:])
    else:
        lines.append(f"{pad}{_scalar(value)}")
    return lines


YAML_HEADER = f"""\
# The InfluxDB (InfluxQL) datasource of the smart-city dashboards.
# Generated from dashboards/datasource.py (provisioning_yaml()); edit that, not this file:
# tests/dashboards/test_provisioning.py checks that the two agree.
# Grafana replaces $NAME with the environment variable NAME when it loads this file, so no
# secret is ever written here: set {URL_ENV} (as Grafana's server reaches InfluxDB),
# {USER_ENV} and {PASSWORD_ENV} (empty when InfluxDB has no authentication).
"""


def provisioning_yaml() -> str:
    """The text of dashboards/provisioning/datasources/smartcity.yaml."""
    document = {"apiVersion": 1, "datasources": [provisioned_datasource()]}
    return YAML_HEADER + "\n".join(_yaml_lines(document, 0)) + "\n"


def write_provisioning_yaml(path: Path = DATASOURCE_YAML) -> bool:
    """Write the datasource provisioning file; True if its content changed."""
    text = provisioning_yaml()
    if path.exists() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return True
