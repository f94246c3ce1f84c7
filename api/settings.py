"""Settings of the API service, read once and cached (not a module-level singleton)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

from core.settings import InfluxSettings, MqttSettings, influx_from_env, mqtt_from_env
from smartcity.data import demo_registry_path


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """Where the registry, InfluxDB, the broker and the service's own files are.

    ``state_dir`` holds what the API itself keeps: the SensorThings metadata store
    (``sta.sqlite``), the audit log (``audit.sqlite``) and the $count cache. ``operators_path``
    is the operators file (names, roles, argon2 hashes; never in git). ``public_url`` is the
    service root clients see (for absolute ``@iot.selfLink`` / ``@iot.nextLink``); empty: taken
    from each request. ``mqtt`` is used for operator commands; None: commands are refused (503).
    """

    registry_path: str
    influx: InfluxSettings = field(default_factory=InfluxSettings)
    # The account of the operators' writes (SensorThings create / update / delete, alarm acks); None: influx's.
    # Two accounts so that the one every public read uses may only read (deploy/influx_accounts.py).
    influx_writer: InfluxSettings | None = None
    latest_window: str = "7d"
    state_dir: str = ".state/api"
    operators_path: str | None = None
    mqtt: MqttSettings | None = None
    rules_path: str | None = None  # the rule file the rules service runs (operator rule routes)
    alarms_path: str | None = None  # the rules service's alarm database
    public_url: str = ""
    # anonymous requests per client address and minute (0: unlimited)
    anonymous_rate_limit: int = 600
    # gateway provisioning: the broker's password file and pid file (for the reload signal); None: refused
    mosquitto_password_file: str | None = None
    mosquitto_pid_file: str | None = None
    # the anonymous SensorThings MQTT endpoint advertised in the service root (empty: not advertised)
    sta_mqtt_url: str = ""

    @property
    def state_path(self) -> Path:
        """state_dir as a Path."""
        return Path(self.state_dir)


WRITE_USERNAME_ENV, WRITE_PASSWORD_ENV = "SMARTCITY_API_INFLUX_WRITE_USERNAME", "SMARTCITY_API_INFLUX_WRITE_PASSWORD"


def writer_from_env(env: Mapping[str, str]) -> InfluxSettings | None:
    """The writing account (same server and database) from SMARTCITY_API_INFLUX_WRITE_USERNAME / _PASSWORD."""
    user = env.get(WRITE_USERNAME_ENV)
    if not user:
        return None
    return replace(influx_from_env(env), username=user, password=env.get(WRITE_PASSWORD_ENV) or None)


@lru_cache(maxsize=1)
def settings_from_env() -> ApiSettings:
    """Settings from SMARTCITY_REGISTRY, SMARTCITY_INFLUX_*, SMARTCITY_MQTT_* and SMARTCITY_API_*."""
    env = os.environ
    return ApiSettings(
        registry_path=env.get("SMARTCITY_REGISTRY", str(demo_registry_path())),
        influx=influx_from_env(),
        influx_writer=writer_from_env(env),
        state_dir=env.get("SMARTCITY_API_STATE_DIR", str(Path(env.get("SMARTCITY_STATE_DIR", ".state")) / "api")),
        operators_path=env.get("SMARTCITY_API_OPERATORS"),
        mqtt=mqtt_from_env() if env.get("SMARTCITY_MQTT_HOST") else None,
        rules_path=env.get("SMARTCITY_RULES"),
        alarms_path=env.get("SMARTCITY_ALARMS"),
        public_url=env.get("SMARTCITY_API_PUBLIC_URL", "").rstrip("/"),
        anonymous_rate_limit=int(env.get("SMARTCITY_API_RATE_LIMIT", "600")),
        mosquitto_password_file=env.get("SMARTCITY_MOSQUITTO_PASSWORD_FILE"),
        mosquitto_pid_file=env.get("SMARTCITY_MOSQUITTO_PID_FILE"),
        sta_mqtt_url=env.get("SMARTCITY_API_STA_MQTT_URL", ""),
    )
