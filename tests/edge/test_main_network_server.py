"""`smartcity edge --gateway ... --network-server`: the registry form's lorawan devices and their bridge's broker.

The options and the SMARTCITY_NS_MQTT_* environment become the config's [network_server] table
and the bridge's settings; without --network-server the gateway runs without its lorawan devices
(left out, logged, counted). The running bridge is tested end to end in tests/e2e.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from core.settings import MqttSettings
from edge.agent import EdgeConfigError
from edge.gateway_config import NetworkServerConfig
from edge.main import _env_ns_settings, add_arguments, config_source, network_server
from smartcity.data import demo_registry_path

ENV = {"SMARTCITY_NS_MQTT_HOST": "10.1.2.3", "SMARTCITY_NS_MQTT_PORT": "1884",
       "SMARTCITY_NS_MQTT_USERNAME": "ns-bridge", "SMARTCITY_NS_MQTT_PASSWORD": "secret",
       "SMARTCITY_MQTT_PASSWORD": "the platform's, not this one"}


def args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--registry", default=str(demo_registry_path()))
    add_arguments(parser)
    return parser.parse_args(["--gateway", "gw-vs-01", "--port", "lora=/dev/null", "--port", "rg15=/dev/null",
                              "--lora-keys", "/k.json", *argv])


def test_the_options_and_the_ns_environment_make_the_network_server_table() -> None:
    got = network_server(args("--network-server", "tts", "--ns-application", "lights-{gateway}@gemeente",
                              "--ns-downlink-fport", "15"), ENV)
    assert got is not None
    config, settings = got
    # "{gateway}" is this gateway's own application (as the demo and the simulator name them).
    assert config == NetworkServerConfig("tts", "10.1.2.3", "lights-gw-vs-01@gemeente", 15, 1884, "ns-bridge")
    assert settings.password == "secret"
    # The bridge gets the environment's password with the table's broker (there is no password file).
    assert _env_ns_settings(settings.password)(config) == MqttSettings("10.1.2.3", 1884, "ns-bridge", "secret")
    assert network_server(args(), ENV) is None


def test_the_password_may_come_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "ns-password"
    secret.write_text("from-a-file\n")
    env = {**ENV, "SMARTCITY_NS_MQTT_PASSWORD_FILE": str(secret)}
    del env["SMARTCITY_NS_MQTT_PASSWORD"]
    got = network_server(args("--network-server", "chirpstack", "--ns-application", "app"), env)
    assert got is not None and got[1].password == "from-a-file"


@pytest.mark.parametrize(("argv", "env", "message"), [
    (["--network-server", "chirpstack"], ENV, "--network-server needs --ns-application ID"),
    (["--ns-application", "app"], ENV, "--ns-application needs --network-server"),
    (["--network-server", "chirpstack", "--ns-application", "a/b"], ENV, "must be one topic level"),
    (["--network-server", "chirpstack", "--ns-application", "app", "--ns-downlink-fport", "224"], ENV,
     "--ns-downlink-fport must be 1-223: 224"),
    (["--network-server", "chirpstack", "--ns-application", "app"], {"SMARTCITY_NS_MQTT_USERNAME": "ns-bridge"},
     "SMARTCITY_NS_MQTT_USERNAME and SMARTCITY_NS_MQTT_PASSWORD"),
    (["--network-server", "chirpstack", "--ns-application", "app", "--config", "/gw.toml"], ENV,
     "a config file names its network server in the [network_server] table"),
])
def test_incomplete_options_are_refused_by_name(argv: list[str], env: dict[str, str], message: str) -> None:
    with pytest.raises(EdgeConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        network_server(args(*argv), env)


def test_without_a_network_server_the_lorawan_devices_are_left_out_and_counted(
        caplog: pytest.LogCaptureFixture) -> None:
    unbridged = {"devices": -1}
    source, read = config_source(args(), None, unbridged)
    config = read(source)
    assert config.devices_on("lorawan") == [] and config.network_server is None
    assert (len(config.devices_on("lora")), len(config.devices_on("serial"))) == (10, 1)  # the others all stay
    assert unbridged == {"devices": 2}
    assert "lorawan devices vs-sl-204, vs-sl-205 are left out: no --network-server given" in caplog.text


def test_with_a_network_server_they_are_the_bridges() -> None:
    got = network_server(args("--network-server", "chirpstack", "--ns-application", "app-{gateway}"), ENV)
    assert got is not None
    unbridged = {"devices": -1}
    source, read = config_source(args(), got[0], unbridged)
    config = read(source)
    assert [d.id for d in config.devices_on("lorawan")] == ["vs-sl-204", "vs-sl-205"]
    assert config.network_server == got[0]
    assert unbridged == {"devices": -1}  # nothing left out


def test_the_command_fails_at_start_with_the_reason() -> None:
    env: dict[str, Any] = {k: v for k, v in os.environ.items() if not k.startswith("SMARTCITY_NS_MQTT_")}
    result = subprocess.run([sys.executable, "-m", "smartcity", "edge", "--gateway", "gw-vs-01", "--lora-keys",
                             "/k.json", "--network-server", "chirpstack", "--ns-application", "app"],
                            capture_output=True, text=True, timeout=30, check=False, env=env)
    assert result.returncode == 2, result.stderr
    assert "needs the bridge's account on the network server's broker" in result.stderr
    assert "Traceback" not in result.stderr
