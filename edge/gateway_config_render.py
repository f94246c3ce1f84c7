"""Writing a gateway config back as TOML (tomllib reads; nothing in the standard library writes)."""

from __future__ import annotations

from collections.abc import Sequence

from core.toml_text import toml_key, toml_string
from edge.gateway_config_model import CONFIG_VERSION, GatewayConfig, MqttConfig, NetworkServerConfig


def format_duration(seconds: float) -> str:
    """TOML for a duration: "7d", "12h", "10m", "90s" when whole, else the number of seconds."""
    if float(seconds).is_integer():
        whole = int(seconds)
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
            if whole % size == 0:
                return f'"{whole // size}{unit}"'
        return f'"{whole}s"'
    return repr(float(seconds))


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return toml_string(str(value))


def _lines(pairs: Sequence[tuple[str, object]]) -> list[str]:
    return [f"{k} = {_value(v)}" for k, v in pairs if v is not None]


def _broker(b: MqttConfig | NetworkServerConfig) -> list[tuple[str, object]]:
    return [("host", b.host), ("port", b.port), ("username", b.username), ("password_file", b.password_file),
            ("ca_file", b.ca_file)]


def render_config(config: GatewayConfig, *, header: str | None = None) -> str:
    """The config as a TOML file this module reads back to an equal GatewayConfig."""
    out: list[str] = []
    if header:
        out += [f"# {line}".rstrip() for line in header.splitlines()]
    out += [f"version = {CONFIG_VERSION}", f"gateway = {toml_string(config.gateway)}"]
    if config.mqtt:
        out += ["", "[mqtt]", *_lines(_broker(config.mqtt))]
    q = config.queue
    out += ["", "[queue]", *_lines([("path", q.path), ("max_readings", q.max_readings)]),
            f"max_age = {format_duration(q.max_age)}", f"flush_interval = {format_duration(q.flush_interval)}"]
    if config.lora:
        out += ["", "[lora]", *_lines([("port", config.lora.port), ("modem", config.lora.modem),
                                       ("keys", config.lora.keys)])]
    if ns := config.network_server:
        out += ["", "[network_server]", *_lines([("type", ns.type), *_broker(ns), ("application", ns.application),
                                                 ("downlink_fport", ns.downlink_fport)])]
    for name, s in config.serial.items():
        out += ["", f"[serial.{toml_key(name)}]", f"path = {toml_string(s.path)}",
                f"poll_interval = {format_duration(s.poll_interval)}"]
    for d in config.devices:
        out += ["", "[[devices]]", *_lines([("id", d.id), ("kind", d.kind), ("link", d.link), ("address", d.address),
                                            ("dev_eui", d.dev_eui), ("port", d.port), ("decoder", d.decoder),
                                            ("tts_device_id", config.tts_device_ids.get(d.id))])]
    return "\n".join(out) + "\n"
