"""Connection settings from the environment, so that no secret ever sits on a command line or in the repo.

Every service reads the same variables (a CLI flag overrides where one exists):

SMARTCITY_MQTT_HOST (127.0.0.1), SMARTCITY_MQTT_PORT (1883), SMARTCITY_MQTT_USERNAME,
SMARTCITY_MQTT_PASSWORD or SMARTCITY_MQTT_PASSWORD_FILE, SMARTCITY_MQTT_TLS_CA (enables TLS),
SMARTCITY_NS_MQTT_* (the same five, for the broker of a LoRaWAN network server's MQTT integration),
SMARTCITY_INFLUX_URL (http://127.0.0.1:8086), SMARTCITY_INFLUX_DATABASE (smartcity),
SMARTCITY_INFLUX_USERNAME, SMARTCITY_INFLUX_PASSWORD (or a 2.x/3.x token).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import ConfigError


class SettingsError(ConfigError):
    """A setting with an unusable value; the message names the variable."""


@dataclass(slots=True)
class MqttSettings:
    """How a service reaches the broker."""

    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls_ca: str | None = None


def _port(value: str, name: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise SettingsError(f"{name} must be a port number: {value!r}") from None
    if not 0 < port < 65536:
        raise SettingsError(f"{name} must be 1-65535: {port}")
    return port


MQTT_ENV = "SMARTCITY_MQTT"  # the platform's broker
NS_MQTT_ENV = "SMARTCITY_NS_MQTT"  # a LoRaWAN network server's broker (edge bridge, simulated server)


def mqtt_from_env(env: Mapping[str, str] | None = None, prefix: str = MQTT_ENV) -> MqttSettings:
    """MQTT settings from the <prefix>_* variables (SMARTCITY_MQTT_HOST, ... by default)."""
    env = os.environ if env is None else env
    password = env.get(f"{prefix}_PASSWORD")
    password_file = env.get(f"{prefix}_PASSWORD_FILE")
    if password is None and password_file:
        try:
            password = Path(password_file).read_text().strip()
        except OSError as exc:
            raise SettingsError(f"{prefix}_PASSWORD_FILE {password_file}: {exc.strerror}") from None
    return MqttSettings(
        host=env.get(f"{prefix}_HOST", "127.0.0.1"),
        port=_port(env.get(f"{prefix}_PORT", "1883"), f"{prefix}_PORT"),
        username=env.get(f"{prefix}_USERNAME") or None,
        password=password,
        tls_ca=env.get(f"{prefix}_TLS_CA") or None,
    )


def mqtt_to_env(settings: MqttSettings, prefix: str = MQTT_ENV) -> dict[str, str]:
    """The <prefix>_* environment variables that reproduce settings in a child process."""
    env = {f"{prefix}_HOST": settings.host, f"{prefix}_PORT": str(settings.port)}
    if settings.username:
        env[f"{prefix}_USERNAME"] = settings.username
    if settings.password:
        env[f"{prefix}_PASSWORD"] = settings.password
    if settings.tls_ca:
        env[f"{prefix}_TLS_CA"] = settings.tls_ca
    return env


@dataclass(slots=True)
class InfluxSettings:
    """Where InfluxDB is (the v1 HTTP API) and how to log in."""

    url: str = "http://127.0.0.1:8086"
    database: str = "smartcity"
    username: str | None = None
    password: str | None = field(default=None, repr=False)


def influx_from_env(env: Mapping[str, str] | None = None) -> InfluxSettings:
    """InfluxDB settings from SMARTCITY_INFLUX_* variables."""
    env = os.environ if env is None else env
    url = env.get("SMARTCITY_INFLUX_URL", "http://127.0.0.1:8086")
    if not url.startswith(("http://", "https://")):
        raise SettingsError(f"SMARTCITY_INFLUX_URL must start with http:// or https://: {url!r}")
    return InfluxSettings(
        url=url,
        database=env.get("SMARTCITY_INFLUX_DATABASE", "smartcity"),
        username=env.get("SMARTCITY_INFLUX_USERNAME") or None,
        password=env.get("SMARTCITY_INFLUX_PASSWORD") or None,
    )


def influx_to_env(settings: InfluxSettings) -> dict[str, str]:
    """The environment variables that reproduce settings in a child process."""
    env = {"SMARTCITY_INFLUX_URL": settings.url, "SMARTCITY_INFLUX_DATABASE": settings.database}
    if settings.username:
        env["SMARTCITY_INFLUX_USERNAME"] = settings.username
    if settings.password:
        env["SMARTCITY_INFLUX_PASSWORD"] = settings.password
    return env
