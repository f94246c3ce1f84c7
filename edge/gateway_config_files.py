"""The files a gateway config names (key file, password files, CA bundle), checked when it is loaded,
and the broker settings built from them."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

from core.settings import MqttSettings, mqtt_from_env
from edge.gateway_config_model import GatewayConfig, GatewayConfigError, MqttConfig, NetworkServerConfig
from edge.lora_keys import KeyFileError, KeyRing


def _secret(path: Path, where: str) -> bytes:
    """The content of a file that only the agent may read; raises naming where and what is wrong."""
    try:
        st = path.stat()
    except OSError as exc:
        raise GatewayConfigError(f"{where}: {path}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise GatewayConfigError(f"{where}: {path} is not a regular file")
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise GatewayConfigError(f"{where}: {path} is open to group or others (mode {stat.S_IMODE(st.st_mode):o}); "
                                 "chmod 600 it and make the agent's user its owner")
    return _read(path, where)


def _read(path: Path, where: str) -> bytes:
    try:
        return path.read_bytes()
    except PermissionError as exc:
        raise GatewayConfigError(f"{where}: {path}: {exc.strerror} for uid {os.geteuid()}, the agent's user; "
                                 "it must be owned by that user with mode 0600") from None
    except OSError as exc:
        raise GatewayConfigError(f"{where}: {path}: {exc.strerror}") from None


def _ca(path: Path, where: str) -> None:
    if b"-----BEGIN CERTIFICATE-----" not in _read(path, where):
        raise GatewayConfigError(f"{where}: {path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")


def check_files(config: GatewayConfig, source: str) -> None:
    """Check the files the config names: secrets 0600 and readable, a key for every LoRa node, PEM CA files."""
    for table, broker in (("[mqtt]", config.mqtt), ("[network_server]", config.network_server)):
        if broker is None:
            continue
        if broker.password_file is not None:
            where = f"{source}: {table} 'password_file'"
            if not _secret(broker.password_file, where).strip():
                raise GatewayConfigError(f"{where}: {broker.password_file} is empty")
        if broker.ca_file is not None:
            _ca(broker.ca_file, f"{source}: {table} 'ca_file'")
    if config.lora is not None:
        where = f"{source}: [lora] 'keys'"
        _secret(config.lora.keys, where)
        try:
            ring = KeyRing.load(config.lora.keys)
        except KeyFileError as exc:
            raise GatewayConfigError(f"{where}: {exc}") from None
        missing = [f"{d.id} ({d.address})" for d in config.devices_on("lora") if ring.key_for(str(d.address)) is None]
        if missing:
            raise GatewayConfigError(f"{where}: {config.lora.keys} has no key (and no master) for "
                                     f"{', '.join(missing)}")


def broker_settings(broker: MqttConfig | NetworkServerConfig) -> MqttSettings:
    """How to reach the broker a table names, reading its password file."""
    password = None
    if broker.password_file is not None:
        password = _read(broker.password_file, "'password_file'").decode("utf-8", "replace").strip()
    return MqttSettings(broker.host, broker.port, broker.username, password,
                        str(broker.ca_file) if broker.ca_file else None)


def mqtt_settings(config: GatewayConfig, env: Mapping[str, str] | None = None) -> MqttSettings:
    """How this gateway reaches the broker: [mqtt] if the file has it (reading the password file), else
    the SMARTCITY_MQTT_* environment; the user name defaults to the gateway id either way."""
    settings = mqtt_from_env(env) if config.mqtt is None else broker_settings(config.mqtt)
    settings.username = settings.username or config.gateway
    return settings
