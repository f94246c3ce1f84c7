"""Per-device AES-128 keys of the LoRa point-to-point nodes, from a key file that is never in git.

The file is JSON: ``{"devices": {"<ADDRESS>": "<32 hex>"}, "master": "<64 hex>"}``, either part
optional. A device listed under ``devices`` uses its own key (what a production deployment
provisions: one random key per node); any other device's key is derived from ``master`` as
HMAC-SHA256(master, "smartcity-lora-p2p/<ADDRESS>")[:16], which lets a demo or a test bench share one
secret. A leaked master exposes every derived key, so production should list devices. The file must
not be readable by group or others (0600).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import stat
from pathlib import Path

from core.errors import ConfigError

KEY_BYTES = 16


class KeyFileError(ConfigError):
    """A key file that cannot be used; the message names the file and the problem."""


def _hex_bytes(value: object, size: int, where: str) -> bytes:
    try:
        raw = bytes.fromhex(str(value))
    except ValueError:
        raw = b""
    if len(raw) != size:
        raise KeyFileError(f"{where} must be {2 * size} hex digits")
    return raw


class KeyRing:
    """The keys of a gateway's (or a simulator's) LoRa nodes."""

    def __init__(self, *, master: bytes | None = None, devices: dict[str, bytes] | None = None) -> None:
        self._master = master
        self._devices = {a.upper(): k for a, k in (devices or {}).items()}

    @classmethod
    def generate(cls) -> KeyRing:
        """A key ring with a fresh random master (demo and tests)."""
        return cls(master=secrets.token_bytes(32))

    def key_for(self, address: str) -> bytes | None:
        """The 16-byte key of the node with this address, or None if it has none."""
        address = address.upper()
        key = self._devices.get(address)
        if key is None and self._master is not None:
            key = hmac.new(self._master, f"smartcity-lora-p2p/{address}".encode(), hashlib.sha256).digest()[:KEY_BYTES]
        return key

    def save(self, path: Path) -> None:
        """Write the key file with 0600 permissions (created that way, never widened)."""
        data: dict[str, object] = {}
        if self._master is not None:
            data["master"] = self._master.hex()
        if self._devices:
            data["devices"] = {a: k.hex() for a, k in self._devices.items()}
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> KeyRing:
        """Read a key file; raises KeyFileError naming what is wrong."""
        p = Path(path)
        try:
            mode = p.stat().st_mode
            text = p.read_text()
        except OSError as exc:
            raise KeyFileError(f"LoRa key file {p}: {exc.strerror}") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyFileError(f"LoRa key file {p} is readable by others (mode {stat.S_IMODE(mode):o}); chmod 600 it")
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise KeyFileError(f"LoRa key file {p} is not JSON: {exc}") from None
        if not isinstance(data, dict) or not ({"master", "devices"} & set(data)):
            raise KeyFileError(f"LoRa key file {p} needs 'master' and/or 'devices'")
        master = _hex_bytes(data["master"], 32, f"{p}: 'master'") if "master" in data else None
        raw_devices = data.get("devices", {})
        if not isinstance(raw_devices, dict):
            raise KeyFileError(f"{p}: 'devices' must map addresses to keys")
        devices = {str(a): _hex_bytes(k, KEY_BYTES, f"{p}: key of {a}") for a, k in raw_devices.items()}
        return cls(master=master, devices=devices)
