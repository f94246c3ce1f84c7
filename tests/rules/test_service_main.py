"""`smartcity rules` as a person runs it: bad options fail at start naming them; status endpoint; SIGHUP; migrate."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from core.settings import mqtt_to_env
from deploy.processes import spawn
from rules.rule_file import parse_rules
from tests.conftest import settings_for, wait_for
from tests.rules.test_service import presence, rules_text

REPO = Path(__file__).resolve().parents[2]


def rules_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "smartcity", "rules", *args], capture_output=True, text=True,
                          check=False, timeout=60, cwd=REPO, env=env)


@pytest.mark.parametrize(("args", "message"), [
    (["--partition", "2/2"], "--partition must be I/N with 0 <= I < N: 2/2"),
    (["--partition", "one"], "--partition must be I/N"),
    (["--tick", "0"], "--tick must be > 0"),
    (["--max-skew", "-5"], "--max-skew must be > 0"),
    (["--health-interval", "-1"], "--health-interval must be >= 0"),
    (["--rules", "/nonexistent/rules.toml"], "cannot read rule file /nonexistent/rules.toml"),
])
def test_bad_options_fail_at_start_with_a_precise_message(args, message, tmp_path):
    result = rules_cli("--state-dir", str(tmp_path), "--no-events", *args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr


def test_a_rule_that_the_partition_would_split_fails_at_start(tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text(rules_text().replace('group_by = "wijk"', 'group_by = "gemeente"'))
    result = rules_cli("--rules", str(rules), "--partition", "0/2", "--partition-by", "wijk",
                       "--state-dir", str(tmp_path), "--no-events")
    assert result.returncode == 2
    assert "rule 'presence-lighting' groups by 'gemeente', a coarser zone than --partition-by wijk" in result.stderr


def test_migrate_prints_a_version_2_file(tmp_path):
    result = rules_cli("migrate", str(REPO / "rules/examples/presence-lighting-v1.toml"))
    assert result.returncode == 0, result.stderr
    assert "version = 2" in result.stdout
    assert parse_rules(result.stdout).rules[0].name == "presence-lighting"
    v2 = rules_cli("migrate", str(REPO / "rules/examples/city-rules.toml"))
    assert v2.returncode == 2 and "nothing to migrate" in v2.stderr


@pytest.mark.integration
def test_a_running_worker_serves_status_reloads_on_sighup_and_saves_its_state(broker, env, tmp_path):
    child_env = {**os.environ, **mqtt_to_env(settings_for(broker, "rules")), "PYTHONPATH": str(REPO)}
    child_env.pop("SMARTCITY_INFLUX_URL", None)
    argv = [sys.executable, "-m", "smartcity", "--log-level", "INFO", "rules", "--rules", str(env.city.rules),
            "--registry", str(env.city.registry), "--state-dir", str(env.city.state), "--metrics-port", "0",
            "--client-id", "rules-cli-test"]
    worker = spawn("rules", argv, tmp_path / "rules.log", env=child_env)
    try:
        status_file = env.city.state / "rules" / "status-0of1.json"
        wait_for(status_file.exists, 20)
        url = json.loads(status_file.read_text())["url"]
        assert url.startswith("http://127.0.0.1:")
        wait_for(lambda: httpx.get(f"{url}/healthz").json().get("mqtt") == "connected", 10)
        time.sleep(0.3)  # the SUBSCRIBE
        env.publish("gw-vs-01", presence("vs-oc-101"))
        wait_for(lambda: env.commands.count() == 3, 10)
        worker.process.send_signal(signal.SIGHUP)
        wait_for(lambda: "smartcity_rules_reloads_total 1.0" in httpx.get(f"{url}/metrics").text, 10)
        health = httpx.get(f"{url}/healthz").json()
        assert health["status"] == "ok" and health["generation"] == 1 and health["partition"] == "0/1 by gemeente"
    finally:
        worker.stop()
    assert worker.process.returncode == 0, worker.log_tail()
    assert (env.city.state / "rules" / "state-0of1.npz").exists()
    assert (env.city.state / "rules" / "alarms.sqlite").exists()
    assert "rules 0of1 stopped: 1 messages, 1 readings used, 3 commands published" in worker.log_tail()
