"""The demo goes on when a service dies: kill -9 of a child is followed by its restart, not by the end of the city.

Run against the real demo (`smartcity demo --duration`), its children found by their parent PID in /proc, so
that the test checks what the person at the terminal sees, not what the supervisor says of itself.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core.influx import InfluxClient, InfluxConfig, InfluxError
from deploy.processes import free_port
from tests.conftest import wait_for
from tests.deploy.fake_grafana import install_fake

pytestmark = pytest.mark.integration

DURATION = 45  # the demo's own bound; the test ends it with SIGINT well before


def demo_children(demo_pid: int) -> dict[str, int]:
    """{service name: pid} of the demo's living children, named as the demo names them (edge-<gateway>)."""
    found: dict[str, int] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            argv = [a.decode() for a in (proc / "cmdline").read_bytes().split(b"\0") if a]
        except OSError:
            continue  # gone meanwhile
        if int(stat[1]) != demo_pid or stat[0] == "Z" or not argv:
            continue
        found[_name(argv)] = int(proc.name)
    return found


def _name(argv: list[str]) -> str:
    if "smartcity" in argv and "--log-level" in argv:
        service = argv[argv.index("--log-level") + 2]
        return f"edge-{argv[argv.index('--gateway') + 1]}" if service == "edge" else service
    if "-c" in argv:  # mosquitto -c <state>/mosquitto[-open-data]/mosquitto.conf
        return Path(argv[argv.index("-c") + 1]).parent.name
    return Path(argv[0]).name


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path, Path]]:
    """The demo, with a stand-in Grafana on PATH (the demo starts Grafana when one is installed)."""
    out = tmp_path / "demo.out"
    install_fake(tmp_path / "bin")
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    with out.open("wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "smartcity", "demo", "--duration", str(DURATION),
                                 "--state-dir", str(tmp_path / "state"), "--report-interval", "0.5",
                                 "--busy-seconds", "3", "--quiet-seconds", "40", "--api-port", str(free_port())],
                                stdout=sink, stderr=subprocess.STDOUT, env=env)
    yield proc, out, tmp_path / "state"
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def influx_url(out: Path) -> str:
    line = next((ln for ln in out.read_text().splitlines() if ln.strip().startswith("InfluxDB")), "")
    return line.split()[1] if line else ""


def grafana_account(state: Path) -> tuple[str, str]:
    """The demo's read-only InfluxDB account (deploy/influx_accounts.py): what the test reads with."""
    return "grafana", json.loads((state / "influx-credentials.json").read_text())["grafana"]


def stored_since(url: str, since_ms: int, gateway: str | None = None, account: tuple[str, str] = ("", "")) -> int:
    where = f" AND \"gateway\" = '{gateway}'" if gateway else ""
    try:
        with InfluxClient(InfluxConfig(url, "smartcity", *account)) as influx:
            series = influx.query(f'SELECT count("power") FROM "street_light" WHERE time > {since_ms}ms{where}')
    except InfluxError:
        return 0
    return int(series[0].values[0][1]) if series and series[0].values else 0


def test_a_killed_service_is_restarted_and_the_city_goes_on(demo) -> None:
    proc, out, state = demo
    started = time.monotonic()
    wait_for(lambda: proc.poll() is not None or influx_url(out), 30)
    assert proc.poll() is None, out.read_text()
    url = influx_url(out)
    account = grafana_account(state)
    wait_for(lambda: proc.poll() is not None or stored_since(url, 0, account=account) > 0, 30)
    assert proc.poll() is None, out.read_text()
    before = demo_children(proc.pid)
    assert {"ingest", "edge-gw-vs-01", "edge-gw-ws-01", "rules", "api", "sim", "mosquitto", "influxd"} <= set(before)
    grafana = _grafana_started(out, state, url)
    _gateways_use_tls(out, before["edge-gw-vs-01"], state)

    killed_ms = int(time.time() * 1000)
    os.kill(before["ingest"], signal.SIGKILL)
    os.kill(before["edge-gw-vs-01"], signal.SIGKILL)

    def restarted() -> dict[str, int]:
        if proc.poll() is not None:
            return {"(the demo ended)": 0}  # truthy: the assertion below then says what happened
        now = demo_children(proc.pid)
        fresh = {n: now.get(n) for n in ("ingest", "edge-gw-vs-01")}
        return now if all(pid and pid != before[n] for n, pid in fresh.items()) else {}

    after = wait_for(restarted, 15)
    assert proc.poll() is None, "the demo stopped after one service died:\n" + out.read_text()[-3000:]
    # Nobody else was stopped or restarted: the same processes still run.
    untouched = {n: pid for n, pid in before.items() if n not in ("ingest", "edge-gw-vs-01")}
    assert {n: after.get(n) for n in untouched} == untouched
    # Data keeps arriving, through the new ingest, from the gateway whose agent was killed too.
    wait_for(lambda: stored_since(url, killed_ms, "gw-vs-01", account) > 0, 20)
    _authentication_is_on(url, state)

    status = json.loads((state / "supervisor.json").read_text())["children"]
    for name in ("ingest", "edge-gw-vs-01"):
        assert status[name]["restarts"] == 1 and status[name]["last_exit"] == -signal.SIGKILL, status[name]
        assert status[name]["pid"] == after[name] and status[name]["state"] == "running", status[name]
    assert status["rules"]["restarts"] == 0 and status["rules"]["pid"] == before["rules"]

    # The broker too: restarted on the same port (the services' settings name it), and the API's PID
    # file (gateway provisioning sends mosquitto SIGHUP) follows it.
    port = int(next(ln for ln in out.read_text().splitlines() if ln.strip().startswith("MQTT broker"))
               .split()[2].rsplit(":", 1)[1])
    os.kill(after["mosquitto"], signal.SIGKILL)
    again = wait_for(lambda: (now := demo_children(proc.pid)).get("mosquitto", after["mosquitto"]) != after["mosquitto"]
                     and now, 15)
    wait_for(lambda: _answers(port), 10)
    assert (state / "mosquitto" / "mosquitto.pid").read_text().strip() == str(again["mosquitto"])
    assert {n: again.get(n) for n in ("rules", "api", "sim", "influxd")} == {n: after[n] for n in
                                                                           ("rules", "api", "sim", "influxd")}

    # The progress line and the summary say how many restarts each service had.
    proc.send_signal(signal.SIGINT)
    assert proc.wait(30) == 0, out.read_text()[-3000:]
    text = out.read_text()
    summary = text[text.index("summary after"):]
    restarts = next(ln for ln in summary.splitlines() if ln.strip().startswith("restarts"))
    for name in ("ingest 1", "edge-gw-vs-01 1", "mosquitto 1"):
        assert name in restarts, restarts
    assert "rules" not in restarts
    # It says where the council report of the run is, and the report holds the demo city's wijken.
    report = Path(next(ln for ln in summary.splitlines() if ln.strip().startswith("report:")).split(None, 1)[1])
    assert report == state / "report" / "report.html" and report.is_file()
    wijken = (report.parent / "wijken.csv").read_text().splitlines()
    assert wijken[0].startswith("gemeente,wijk,") and {r.split(",")[0] for r in wijken[1:]} == {"GM0626", "GM0629"}
    assert not Path(f"/proc/{grafana}").exists(), "the demo left Grafana running"
    assert time.monotonic() - started < 60


def _gateways_use_tls(out: Path, edge_pid: int, state: Path) -> None:
    """The edge agents reach the broker on its TLS listener and verify it against the demo's CA."""
    line = next(ln for ln in out.read_text().splitlines() if ln.strip().startswith("TLS on"))
    tls_port = line.split()[2].lstrip(":")
    env = dict(item.split("=", 1) for item in
               Path(f"/proc/{edge_pid}/environ").read_bytes().decode().split("\0") if "=" in item)
    assert env["SMARTCITY_MQTT_PORT"] == tls_port
    assert env["SMARTCITY_MQTT_TLS_CA"] == str(state / "tls" / "ca.crt")
    assert "SMARTCITY_INFLUX_PASSWORD" not in env  # an edge agent has no business with InfluxDB


def _authentication_is_on(url: str, state: Path) -> None:
    """Anonymous queries are refused, the read-only account cannot write; the services wrote with theirs."""
    assert httpx.get(f"{url}/query", params={"q": "SHOW DATABASES"}, timeout=5).status_code == 401
    wrote = httpx.post(f"{url}/write", params={"db": "smartcity"}, content=b"x v=1", auth=grafana_account(state),
                       timeout=5)
    assert wrote.status_code == 403, wrote.text
    services = json.loads((state / "influx-credentials.json").read_text())
    assert set(services) >= {"admin", "ingest", "rules", "api", "api-writer", "grafana"}
    assert (state / "influx-credentials.json").stat().st_mode & 0o777 == 0o600


def _grafana_started(out: Path, state: Path, influx: str) -> int:
    """The demo printed Grafana's URL, which answers, and gave it the demo's InfluxDB; Grafana's PID."""
    line = next(ln for ln in out.read_text().splitlines() if ln.strip().startswith("Grafana"))
    url = line.split()[1]
    assert url.startswith("http://127.0.0.1:"), line
    assert httpx.get(f"{url}/api/health", timeout=5).json()["database"] == "ok"
    record = json.loads((state / "grafana" / "data" / "record.json").read_text())
    assert record["env"]["SMARTCITY_INFLUX_URL"] == influx
    assert record["env"]["SMARTCITY_INFLUX_USERNAME"] == "grafana"  # the read-only account
    assert record["env"]["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    return int(record["pid"])


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False
