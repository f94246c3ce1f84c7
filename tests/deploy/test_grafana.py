"""deploy.grafana: Grafana is optional; when it is on PATH it is started on loopback with our provisioning.

No Grafana can be installed on the development machines, so a fake `grafana-server` (a Python
script written by the test) stands in: it records its argv and environment and serves /api/health
on the address and port Grafana would take from GF_SERVER_HTTP_ADDR / GF_SERVER_HTTP_PORT.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from dashboards.datasource import DASHBOARDS_JSON_DIR, PROVISIONING_DIR
from deploy import grafana
from deploy.processes import ServiceError
from tests.deploy.fake_grafana import install_fake


def record(state: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((state / "grafana" / "data" / "record.json").read_text())
    return data


def gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_no_grafana_on_path_means_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert grafana.find_grafana() is None
    assert grafana.start_grafana(tmp_path / "state", "http://127.0.0.1:8086") is None
    assert not (tmp_path / "state" / "grafana").exists()  # nothing written for a Grafana that is not there


def test_a_fake_grafana_server_is_started_on_loopback_with_our_provisioning(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    install_fake(tmp_path / "bin")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setenv("GF_AUTH_ANONYMOUS_ENABLED", "true")  # an operator's own setting must not leak in
    monkeypatch.setenv("SMARTCITY_INFLUX_PASSWORD", "the-operators-own")
    state = tmp_path / "state"
    caplog.set_level(logging.INFO, logger="deploy.grafana")
    server = grafana.start_grafana(state, "http://127.0.0.1:18086", "grafana", "influx-pw")
    assert server is not None
    try:
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert httpx.get(f"{server.url}/api/health", timeout=2).json()["database"] == "ok"
        assert server.url in caplog.text and str(server.pid) in caplog.text
        seen = record(state)
        env, argv = seen["env"], seen["argv"]
        assert seen["pid"] == server.pid  # spawned directly (PATH has no setpriv), so this is the PID we stop
        assert Path(argv[0]).name == "grafana-server" and "--homepath" not in argv  # no home next to the fake
        assert env["GF_SERVER_HTTP_ADDR"] == "127.0.0.1" and env["GF_SERVER_HTTP_PORT"] == str(server.port)
        assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false" and env["GF_USERS_ALLOW_SIGN_UP"] == "false"
        assert env["GF_ANALYTICS_REPORTING_ENABLED"] == env["GF_ANALYTICS_CHECK_FOR_UPDATES"] == "false"
        base = state / "grafana"
        paths = (("GF_PATHS_DATA", "data"), ("GF_PATHS_LOGS", "logs"), ("GF_PATHS_PROVISIONING", "provisioning"))
        for key, sub in paths:
            assert Path(env[key]) == base / sub
        provisioning = Path(env["GF_PATHS_PROVISIONING"])
        for rel in ("datasources/smartcity.yaml", "dashboards/smartcity.yaml"):
            assert (provisioning / rel).read_text() == (PROVISIONING_DIR / rel).read_text()
        assert Path(env["SMARTCITY_GRAFANA_DASHBOARDS"]) == DASHBOARDS_JSON_DIR
        assert (env["SMARTCITY_INFLUX_URL"], env["SMARTCITY_INFLUX_USERNAME"], env["SMARTCITY_INFLUX_PASSWORD"]) == (
            "http://127.0.0.1:18086", "grafana", "influx-pw")
        password_file = base / "admin-password"
        assert server.password_file == password_file
        assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
        assert password_file.read_text().strip() == server.admin_password == env["GF_SECURITY_ADMIN_PASSWORD"]
        assert len(server.admin_password) >= 24 and server.admin_password not in " ".join(argv)
        assert server.admin_password not in repr(server)
    finally:
        server.stop()
    assert gone(server.pid)
    assert not server.child.running()


def test_the_admin_password_is_kept_across_starts_and_the_port_can_be_chosen(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_fake(tmp_path / "bin")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    first = grafana.start_grafana(tmp_path / "state", "http://127.0.0.1:18086")
    assert first is not None
    first.stop()
    port = grafana.free_port()
    second = grafana.start_grafana(tmp_path / "state", "http://127.0.0.1:18086", port=port)
    assert second is not None
    try:
        assert second.port == port and second.url.endswith(f":{port}")
        assert second.admin_password == first.admin_password  # Grafana keeps the one it created its db with
        env = record(tmp_path / "state")["env"]
        assert env["SMARTCITY_INFLUX_USERNAME"] == env["SMARTCITY_INFLUX_PASSWORD"] == ""
    finally:
        second.stop()
    assert gone(second.pid)


def test_the_current_grafana_cli_is_run_as_grafana_server_with_its_home(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "grafana-12.0.0"
    install_fake(home / "bin", name="grafana")
    (home / "conf").mkdir()
    (home / "conf" / "defaults.ini").write_text("# a tarball's defaults\n")
    install_fake(tmp_path / "legacy", name="grafana-server")
    monkeypatch.setenv("PATH", f"{tmp_path / 'legacy'}{os.pathsep}{home / 'bin'}")
    server = grafana.start_grafana(tmp_path / "state", "http://127.0.0.1:18086")
    assert server is not None
    try:
        argv = record(tmp_path / "state")["argv"]
        assert argv[1:] == ["server", "--homepath", str(home)]  # `grafana server` preferred over the legacy binary
    finally:
        server.stop()


def test_a_grafana_that_exits_at_start_is_reported_with_its_log(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_fake(tmp_path / "bin", fail=True)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(ServiceError, match="failing on purpose"):
        grafana.start_grafana(tmp_path / "state", "http://127.0.0.1:18086", timeout=10)
