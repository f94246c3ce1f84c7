import pytest

from core.settings import (
    SettingsError,
    influx_from_env,
    influx_to_env,
    mqtt_from_env,
    mqtt_to_env,
)


def test_mqtt_settings_round_trip_through_the_environment():
    env = {"SMARTCITY_MQTT_HOST": "::1", "SMARTCITY_MQTT_PORT": "18830", "SMARTCITY_MQTT_USERNAME": "gw",
           "SMARTCITY_MQTT_PASSWORD": "s3cret"}
    s = mqtt_from_env(env)
    assert (s.host, s.port, s.username, s.password) == ("::1", 18830, "gw", "s3cret")
    assert mqtt_from_env(mqtt_to_env(s)) == s
    assert "s3cret" not in repr(s)


def test_password_file(tmp_path):
    f = tmp_path / "pw"
    f.write_text("from-file\n")
    assert mqtt_from_env({"SMARTCITY_MQTT_PASSWORD_FILE": str(f)}).password == "from-file"
    with pytest.raises(SettingsError, match="PASSWORD_FILE"):
        mqtt_from_env({"SMARTCITY_MQTT_PASSWORD_FILE": str(tmp_path / "missing")})


@pytest.mark.parametrize("port", ["x", "0", "70000"])
def test_bad_ports_are_named(port):
    with pytest.raises(SettingsError, match="SMARTCITY_MQTT_PORT"):
        mqtt_from_env({"SMARTCITY_MQTT_PORT": port})


def test_influx_settings():
    s = influx_from_env({"SMARTCITY_INFLUX_URL": "http://127.0.0.1:9", "SMARTCITY_INFLUX_DATABASE": "x"})
    assert influx_from_env(influx_to_env(s)) == s
    with pytest.raises(SettingsError, match="http"):
        influx_from_env({"SMARTCITY_INFLUX_URL": "127.0.0.1:8086"})
