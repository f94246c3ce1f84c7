"""The files `smartcity gateway add` writes for one gateway: its edge config (gateway.toml) and its MQTT password.

The config is built from the registry (the gateway's devices) and what only the installer knows (the
serial ports of its modem and devices, the LoRa key file's place, the network server), rendered by the
edge's own writer and read back by the edge's own parser before anything is written, so a file that
leaves here is one the agent accepts (less the checks of files that live on the gateway: key file, CA).

The password goes by file reference (``password_file = "mqtt-password"``, next to the config, 0600):
the edge refuses a ``password`` key, and a config file gets copied and mailed around.

Both files are first written under temporary names in the gateway's directory and renamed into place
only by ``commit()``, after the broker's password file has changed; ``abort()`` leaves no trace.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from core.registry import Registry
from edge.edge_device import EdgeDevice
from edge.gateway_config import (
    LORA_PORT,
    GatewayConfig,
    GatewayConfigError,
    LoraConfig,
    MqttConfig,
    NetworkServerConfig,
    SerialPortConfig,
    parse_config,
    render_config,
)

CONFIG_NAME = "gateway.toml"
PASSWORD_NAME = "mqtt-password"
DEFAULT_LORA_KEYS = "lora-keys.json"  # relative: next to gateway.toml on the gateway, as in the sample


@dataclass(frozen=True, slots=True)
class Hardware:
    """What the registry does not say: where the gateway's devices are plugged in, and its network server."""

    ports: Mapping[str, str] = field(default_factory=dict)  # port name ('lora' is the modem) -> device path
    lora_modem: str = "rn2483"
    lora_keys: str = DEFAULT_LORA_KEYS
    network_server: NetworkServerConfig | None = None


def build_config(registry: Registry, gateway: str, mqtt: MqttConfig, hw: Hardware) -> GatewayConfig:
    """The gateway's config; GatewayConfigError says what is missing (a port, the network server)."""
    source = f"gateway {gateway}"
    devices = tuple(EdgeDevice.of(d) for d in registry.devices_of(gateway))
    if not devices:
        raise GatewayConfigError(f"{source}: the registry lists no devices for it")
    needed = {str(d.port) for d in devices if d.link == "serial"}
    if any(d.link == "lora" for d in devices):
        needed.add(LORA_PORT)
    missing = sorted(needed - set(hw.ports))
    if missing:
        raise GatewayConfigError(f"{source}: its devices use port(s) {', '.join(missing)}: give "
                                 + " ".join(f"--port {m}=/dev/..." for m in missing))
    unused = sorted(set(hw.ports) - needed)
    if unused:
        raise GatewayConfigError(f"{source}: no device of it uses port(s) {', '.join(unused)} (a typo?)")
    lorawan = [d.id for d in devices if d.link == "lorawan"]
    if lorawan and hw.network_server is None:
        raise GatewayConfigError(f"{source}: its lorawan devices ({', '.join(lorawan)}) need a network server: "
                                 "give --network-server chirpstack|tts --ns-host HOST --ns-application ID")
    lora = LoraConfig(hw.ports[LORA_PORT], hw.lora_modem, Path(hw.lora_keys)) if LORA_PORT in needed else None
    serial = {n: SerialPortConfig(n, p) for n, p in hw.ports.items() if n != LORA_PORT}
    return GatewayConfig(gateway, devices, serial, mqtt, lora=lora,
                         network_server=hw.network_server if lorawan else None)


def render_checked(config: GatewayConfig, out_dir: Path, header: str) -> str:
    """The TOML text, after the edge's parser has read it back to the same config (files not checked)."""
    text = render_config(config, header=header)
    source = f"{out_dir / CONFIG_NAME} (to be written)"
    back = parse_config(tomllib.loads(text), source, base_dir=None, files=False)
    if back != config:  # a writer/reader mismatch would hand the installer a file that means something else
        raise GatewayConfigError(f"{source}: the written config does not read back the same")
    return text


def _write_new(path: Path, data: str, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), mode)  # not widened by the umask, not narrowed either
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


@dataclass
class StagedFiles:
    """gateway.toml and mqtt-password written under temporary names, to be renamed or removed."""

    directory: Path
    created_dir: bool
    staged: dict[Path, Path]  # temporary -> final

    def commit(self) -> None:
        """Rename both into place (same directory, so each rename is atomic)."""
        for tmp, final in self.staged.items():
            os.replace(tmp, final)
        self.staged = {}

    def abort(self) -> None:
        """Remove the temporary files (and the gateway's directory if this made it)."""
        for tmp in self.staged:
            tmp.unlink(missing_ok=True)
        self.staged = {}
        if self.created_dir:
            with contextlib.suppress(OSError):
                self.directory.rmdir()


def stage_files(out_dir: Path, gateway: str, config_text: str, password: str) -> StagedFiles:
    """Write both files under temporary names in out_dir/gateway; OSError if that cannot be done (nothing left)."""
    directory = out_dir / gateway
    created = not directory.exists()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)  # it holds a secret until installed
    files = StagedFiles(directory, created, {})
    token = secrets.token_hex(4)
    try:
        for name, data, mode in ((PASSWORD_NAME, password + "\n", 0o600), (CONFIG_NAME, config_text, 0o644)):
            tmp = directory / f".{name}.{token}.tmp"
            files.staged[tmp] = directory / name
            _write_new(tmp, data, mode)
    except OSError:
        files.abort()
        raise
    return files
