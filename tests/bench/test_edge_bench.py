"""Smoke run of bench/edge.py: a few seconds per phase, so that CI notices when the benchmark breaks.

Not a measurement (the window is far below the 60 s the recorded figures need): it checks that the bench
starts the simulator, the real `smartcity edge` and the bare reader against a private mosquitto, that
both rows come out with readings delivered, and that nothing the modem put on the serial line was lost.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

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
    assert set(rows) == {"ours", "bare"}, result.stderr
    for kind, r in rows.items():
        assert r["delivered_readings"] > 0, (kind, r)
        assert r["phase_readings_lost"] <= 12, (kind, r)
        assert r["rss_mb"] > 0 and r["threads"] >= 1 and r["cpu_s"] >= 0, (kind, r)
    assert "| 10/s | ours: smartcity edge |" in result.stdout
    assert "| 10/s | bare: python + paho + pyserial |" in result.stdout
