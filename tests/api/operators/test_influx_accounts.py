"""The API on an InfluxDB with authentication: public reads through a READ account, the operators' writes
through their own account (deploy/influx_accounts.py), on a real auth-enabled influxd."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from api.settings import ApiSettings
from core.settings import InfluxSettings
from deploy.influx_accounts import SERVICE_PRIVILEGES, ensure_accounts, load_or_create_passwords
from deploy.influxdb import Influxd, start_influxd
from rules.alarm_store import AlarmStore, Severity
from tests.api.operators.conftest import Served

pytestmark = pytest.mark.integration

ADMIN = ("admin", "admin-password-for-the-test")
DB = "smartcity"


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[tuple[Influxd, dict[str, str]]]:
    server = start_influxd(tmp_path / "secured", admin=ADMIN)
    try:
        server.admin_query(f'CREATE DATABASE "{DB}"')
        passwords = load_or_create_passwords(tmp_path / "influx-credentials.json", SERVICE_PRIVILEGES)
        ensure_accounts(server, DB, passwords)
        yield server, passwords
    finally:
        server.stop()


def _alarm_points(server: Influxd) -> list[list[object]]:
    resp = httpx.get(f"{server.url}/query", params={"db": DB, "q": 'SELECT "state", "by" FROM "alarm"'},
                     auth=ADMIN, timeout=10)
    series = resp.json()["results"][0].get("series", [])
    return [row[1:] for s in series for row in s["values"]]


def _ack(make_served: Callable[..., Served], settings: ApiSettings) -> int:
    with AlarmStore(settings.alarms_path or "") as store:
        alarm = store.raise_alarm("lamp-failure", "vs-sl-101", "Lamp failure", Severity("major"),
                                  at=time.time() - 60, values={"power": 0.0})
    served = make_served(settings)
    with served.client("otto") as c:
        resp = c.post(f"/v1/operator/alarms/{alarm}/ack")
        assert resp.status_code == 200, resp.text
        history = c.get("/v1/operator/commands")
        assert history.status_code == 200, history.text  # reads work with the READ account
    return alarm


def test_operators_write_through_their_own_account_and_public_reads_cannot_write(
        secured: tuple[Influxd, dict[str, str]], op_settings: ApiSettings,
        make_served: Callable[..., Served]) -> None:
    server, passwords = secured
    reader = InfluxSettings(server.url, DB, "api", passwords["api"])
    writer = InfluxSettings(server.url, DB, "api-writer", passwords["api-writer"])
    _ack(make_served, dataclasses.replace(op_settings, influx=reader, influx_writer=writer))
    assert _alarm_points(server) == [["acknowledged", "otto"]]
    # The READ account alone (no writer configured): the acknowledgement stands in the alarm store, but
    # InfluxDB refuses the point: the public account really cannot write.
    alone = dataclasses.replace(op_settings, influx=reader, influx_writer=None,
                                alarms_path=str(Path(op_settings.alarms_path or "").with_name("alarms-2.sqlite")))
    _ack(make_served, alone)
    assert _alarm_points(server) == [["acknowledged", "otto"]]


def test_each_account_has_exactly_its_privilege(secured: tuple[Influxd, dict[str, str]]) -> None:
    server, passwords = secured
    seen = {}
    for user in SERVICE_PRIVILEGES:
        auth = (user, passwords[user])
        wrote = httpx.post(f"{server.url}/write", params={"db": DB}, content=b"probe,device=x v=1 1000000000",
                           auth=auth, timeout=10).status_code == 204
        read = httpx.get(f"{server.url}/query", params={"db": DB, "q": "SELECT * FROM probe"}, auth=auth,
                         timeout=10).json()
        admin = httpx.post(f"{server.url}/query", data={"q": "CREATE USER intruder WITH PASSWORD 'x'"}, auth=auth,
                           timeout=10).status_code
        seen[user] = (wrote, "error" not in read, admin)
    assert seen == {"ingest": (True, True, 403), "rules": (True, False, 403), "api": (False, True, 403),
                    "api-writer": (True, True, 403), "grafana": (False, True, 403)}
    # A second setup run keeps the passwords and narrows a grant widened by hand.
    server.admin_query(f'GRANT ALL ON "{DB}" TO "grafana"')
    ensure_accounts(server, DB, passwords)
    assert httpx.post(f"{server.url}/write", params={"db": DB}, content=b"probe,device=y v=1 2000000000",
                      auth=("grafana", passwords["grafana"]), timeout=10).status_code == 403
