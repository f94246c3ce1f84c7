"""Smoke run of bench/edge.py: a few seconds per phase, so that CI notices when the benchmark breaks.

Not a measurement (the window is far below the 60 s the recorded figures need): it checks that the bench
starts the simulator, the real `smartcity edge`, the bare reader and the ThingsBoard IoT Gateway peer
against a private mosquitto, that the three rows come out with readings delivered, and that nothing the
modem put on the serial line was lost. The peer's venv (bench/thingsboard/.venv) is installed by the
bench on its first run from the pinned bench/thingsboard/requirements.txt (~25 s here, from PyPI).
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import edge_support, edge_tb

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(300)
def test_the_edge_bench_measures_the_agent_and_the_bare_reader(tmp_path):
    out = tmp_path / "edge.json"
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "edge.py"), "--rates", "10", "--seconds", "3", "--warmup", "1",
         "--wait-quiet", "0", "--json", str(out)],
        capture_output=True, text=True, timeout=280, check=False, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    phases = json.loads(out.read_text())["phases"]
    rows = {r["kind"]: r for r in phases}
    assert set(rows) == {"ours", "bare", "tb"}, result.stderr
    for kind, r in rows.items():
        assert r["delivered_readings"] > 0, (kind, r)
        assert r["phase_readings_lost"] <= 12, (kind, r)
        assert r["rss_mb"] > 0 and r["threads"] >= 1 and r["cpu_s"] >= 0, (kind, r)
    assert "| 10/s | ours: smartcity edge |" in result.stdout
    assert "| 10/s | bare: python + paho + pyserial |" in result.stdout
    assert "| 10/s | peer: ThingsBoard IoT Gateway 3.8.5 |" in result.stdout
    assert "| RSS ours / TB |" in result.stdout
    assert rows["tb"]["exit_status"] == 0 and rows["tb"]["threads"] > 2, rows["tb"]


def test_the_tb_config_is_the_committed_one_with_this_runs_port_pty_and_password(tmp_path):
    logs = tmp_path / "logs.json"
    logs.write_text("{}")
    config = edge_tb.write_config(tmp_path / "tb", broker_port=41234, modem_pty="/dev/pts/77", password="pw-x",
                                  logs_json=logs)
    main = json.loads((config / "tb_gateway.json").read_text())
    committed = json.loads((edge_tb.HERE / "tb_gateway.json").read_text())
    assert (main["thingsboard"]["host"], main["thingsboard"]["port"]) == ("127.0.0.1", 41234)
    assert main["thingsboard"]["security"] == {**committed["thingsboard"]["security"], "password": "pw-x"}
    assert main["thingsboard"]["security"]["type"] == "usernamePassword"
    assert main["thingsboard"]["security"]["username"] == edge_tb.TB_USER == edge_support.TB_USER
    assert main["storage"] == committed["storage"] and main["connectors"] == committed["connectors"]
    assert (config / "tb_gateway.json").stat().st_mode & 0o077 == 0  # it holds a password
    connector = json.loads((config / main["connectors"][0]["configuration"]).read_text())
    assert [d["port"] for d in connector["devices"]] == ["/dev/pts/77"]
    assert (config / "logs.json").read_text() == "{}"
    argv, env = edge_tb.argv_env(config)
    assert env["TB_GW_CONFIG_DIR"] == str(config) and "pw-x" not in " ".join(argv)
    assert not any(k.startswith("SMARTCITY_") for k in env)


def test_the_tb_acl_lets_the_gateway_publish_telemetry_but_not_hear_itself():
    acl = edge_tb.acl_lines("operator")
    tb_block = acl.split(f"user {edge_tb.TB_USER}\n")[1].split("\nuser ")[0]
    assert "topic write v1/gateway/#" in tb_block
    assert "read v1/devices/me/rpc/request" not in tb_block  # else it answers its own getSessionLimits
    operator = acl.split("user operator\n")[1]
    assert "topic read v1/gateway/telemetry" in operator and "write v1/devices/me/rpc/response/+" in operator


def test_tb_telemetry_counts_frames_and_refuses_what_is_not_an_object():
    payload = {"rn2483-modem": [{"ts": 1, "values": {"frame": "40AB"}}, {"ts": 2, "values": {"frame": "40CD"}},
                                {"ts": 3, "values": {"other": 1}}]}
    assert edge_support.tb_frames(json.dumps(payload).encode()) == 2
    with pytest.raises(ValueError):
        edge_support.tb_frames(b"[1, 2]")
