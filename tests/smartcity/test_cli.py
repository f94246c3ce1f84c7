"""The smartcity command: bad configuration fails at start with a precise message and exit status 2."""

import os
import subprocess
import sys

import pytest


def smartcity(*args, env=None):
    return subprocess.run([sys.executable, "-m", "smartcity", *args], capture_output=True, text=True,
                          timeout=30, check=False, env=env)


@pytest.mark.parametrize(("args", "message"), [
    (["rules", "--rules", "/etc/hostname"], "not valid TOML"),
    (["edge", "--gateway", "gw-nowhere"], "gateway 'gw-nowhere' is not in the registry"),
    (["edge", "--gateway", "gw-vs-01", "--port", "lora"], "--port must be NAME=PATH"),
    (["edge", "--gateway", "gw-vs-01", "--port-map", "/nonexistent.json"], "port map /nonexistent.json"),
    (["ingest", "--registry", "/nonexistent.geojson"], "cannot read registry"),
])
def test_bad_configuration_is_named_and_exits_2(args, message):
    result = smartcity(*args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_environment_setting_is_named():
    env = dict(os.environ, SMARTCITY_MQTT_PORT="abc")
    result = smartcity("edge", "--gateway", "gw-vs-01", env=env)
    assert result.returncode == 2
    assert "SMARTCITY_MQTT_PORT must be a port number: 'abc'" in result.stderr


def test_help_lists_every_service_and_each_service_its_options():
    top = smartcity("--help").stdout
    for name in ("demo", "sim", "edge", "ingest", "rules", "api"):
        assert name in top
    assert "--gateway" in smartcity("edge", "--help").stdout
    assert "--state-dir" in smartcity("demo", "--help").stdout
