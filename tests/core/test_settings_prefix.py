"""mqtt_from_env / mqtt_to_env with a prefix: a second broker's settings (a LoRaWAN network server's)."""

import pytest

from core.settings import NS_MQTT_ENV, MqttSettings, SettingsError, mqtt_from_env, mqtt_to_env


def test_a_prefix_reads_its_own_variables_only():
    env = {"SMARTCITY_MQTT_HOST": "platform", "SMARTCITY_MQTT_USERNAME": "gw-vs-01",
           "SMARTCITY_NS_MQTT_HOST": "chirpstack.gemeente.example", "SMARTCITY_NS_MQTT_PORT": "8883",
           "SMARTCITY_NS_MQTT_USERNAME": "ns-bridge", "SMARTCITY_NS_MQTT_PASSWORD": "pw",
           "SMARTCITY_NS_MQTT_TLS_CA": "/etc/ssl/ca.pem"}
    assert mqtt_from_env(env, prefix=NS_MQTT_ENV) == MqttSettings("chirpstack.gemeente.example", 8883, "ns-bridge",
                                                                  "pw", "/etc/ssl/ca.pem")
    assert mqtt_from_env(env) == MqttSettings("platform", 1883, "gw-vs-01")
    assert mqtt_from_env({}, prefix=NS_MQTT_ENV) == MqttSettings()


def test_the_round_trip_through_the_environment_keeps_the_prefix():
    settings = MqttSettings("h", 1884, "network-server", "pw")
    env = mqtt_to_env(settings, prefix=NS_MQTT_ENV)
    assert set(env) == {f"{NS_MQTT_ENV}_{k}" for k in ("HOST", "PORT", "USERNAME", "PASSWORD")}
    assert mqtt_from_env(env, prefix=NS_MQTT_ENV) == settings


@pytest.mark.parametrize(("env", "message"), [
    ({"SMARTCITY_NS_MQTT_PORT": "x"}, "SMARTCITY_NS_MQTT_PORT must be a port number: 'x'"),
    ({"SMARTCITY_NS_MQTT_PASSWORD_FILE": "/nonexistent"}, "SMARTCITY_NS_MQTT_PASSWORD_FILE /nonexistent"),
])
def test_errors_name_the_prefixed_variable(env, message):
    with pytest.raises(SettingsError, match=message):
        mqtt_from_env(env, prefix=NS_MQTT_ENV)
