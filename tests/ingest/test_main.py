"""`smartcity ingest` as a person runs it: bad options fail at start naming the option; the status endpoint."""

import json
import subprocess
import sys

import httpx
import pytest

from core.settings import InfluxSettings
from tests.conftest import settings_for, wait_for
from tests.ingest.support import REPO, spawn_ingest


def ingest_cli(*args):
    return subprocess.run([sys.executable, "-m", "smartcity", "ingest", *args], capture_output=True, text=True,
                          check=False, timeout=60, cwd=REPO)


@pytest.mark.parametrize(("args", "message"), [
    (["--batch-lines", "0"], "--batch-lines must be > 0: 0"),
    (["--max-latency", "-1"], "--max-latency must be > 0"),
    (["--receive-maximum", "70000"], "at most 65535"),
    (["--retire"], "--retire needs --worker"),
    (["--worker", "has space"], "--worker must match"),
])
def test_bad_options_fail_at_start_with_a_precise_message(args, message, tmp_path):
    result = ingest_cli("--state-dir", str(tmp_path), *args)
    assert result.returncode == 2
    assert message in result.stderr


@pytest.mark.integration
def test_metrics_and_health_of_a_running_worker(broker, influxd, influx, tmp_path):
    worker = spawn_ingest(tmp_path, "m1", settings_for(broker, "ingest"),
                          InfluxSettings(influxd.url, influx.config.database))
    try:
        status_file = tmp_path / "state" / "ingest" / "m1" / "status.json"
        wait_for(status_file.exists, 15)
        url = json.loads(status_file.read_text())["url"]
        assert url.startswith("http://127.0.0.1:")
        wait_for(lambda: httpx.get(f"{url}/healthz").json().get("mqtt") == "connected", 10)
        health = httpx.get(f"{url}/healthz").json()
        assert health["status"] == "ok" and health["worker"] == "m1"
        metrics = httpx.get(f"{url}/metrics").text
        for name in ("smartcity_ingest_points_written_total", "smartcity_ingest_write_seconds_bucket",
                     "smartcity_ingest_spool_bytes", "smartcity_ingest_unacknowledged_messages"):
            assert name in metrics
        second = spawn_ingest(tmp_path, "m1", settings_for(broker, "ingest"),
                              InfluxSettings(influxd.url, influx.config.database), "--metrics-port", "-1")
        second.process.wait(30)
        assert second.process.returncode == 2
        assert "in use by pid" in second.log_tail()
    finally:
        worker.stop()
