"""The asset registry: gateways and devices as a GeoJSON FeatureCollection (the GIS exchange format).

Each Feature is a Point with ``properties.role`` either ``gateway`` or ``device``. Devices
name their ``kind`` (see core.kinds), ``gateway``, CBS ``gemeente``/``wijk`` codes, and how
the gateway reaches them: ``link`` = ``lora`` (point-to-point through the gateway's own modem) with
an 8-hex-digit ``address``, ``lorawan`` (through a LoRaWAN network server) with a 16-hex-digit
``dev_eui``, or ``serial`` with a ``port`` name the gateway's port map resolves.
``classification`` defaults to the kind's.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import jsonfast
from core.errors import ConfigError
from core.kinds import KINDS, Classification
from core.topics import TopicError, check_id

log = logging.getLogger(__name__)

GEMEENTE = re.compile(r"^GM\d{4}$")
WIJK = re.compile(r"^WK\d{6}$")
BUURT = re.compile(r"^BU\d{8}$")
LORA_ADDRESS = re.compile(r"^[0-9A-F]{8}$")
DEV_EUI = re.compile(r"^[0-9A-F]{16}$")
LINKS = ("lora", "lorawan", "serial")


class RegistryError(ConfigError):
    """A registry file that cannot be used; the message names the feature and field."""


@dataclass(frozen=True, slots=True)
class Gateway:
    """An edge gateway in a street cabinet."""

    id: str
    name: str
    gemeente: str
    lon: float
    lat: float


@dataclass(frozen=True, slots=True)
class Device:
    """A field device reached through one gateway."""

    id: str
    name: str
    kind: str
    gateway: str
    gemeente: str
    wijk: str
    lon: float
    lat: float
    classification: Classification
    link: str
    address: str | None = None  # LoRa address, upper-case hex
    port: str | None = None  # serial port name in the gateway's port map
    dev_eui: str | None = None  # LoRaWAN DevEUI, upper-case hex (link == "lorawan")
    buurt: str | None = None  # CBS buurt code (BU + gemeente + wijk + 2 digits), optional


@dataclass(frozen=True, slots=True)
class Registry:
    """All gateways and devices, with the CBS map year their codes come from."""

    gateways: dict[str, Gateway]
    devices: dict[str, Device]
    map_year: int

    def devices_of(self, gateway: str) -> list[Device]:
        """The devices reached through one gateway."""
        return [d for d in self.devices.values() if d.gateway == gateway]


def _str(props: dict[str, Any], key: str, where: str, pattern: re.Pattern[str] | None = None) -> str:
    value = props.get(key)
    if not isinstance(value, str) or not value:
        raise RegistryError(f"{where}: property '{key}' must be a non-empty string, got {value!r}")
    if pattern and not pattern.match(value):
        raise RegistryError(f"{where}: property '{key}' must match {pattern.pattern}, got {value!r}")
    return value


def _point(feature: dict[str, Any], where: str) -> tuple[float, float]:
    geom = feature.get("geometry")
    coords = geom.get("coordinates") if isinstance(geom, dict) else None
    if not isinstance(geom, dict) or geom.get("type") != "Point" or not isinstance(coords, list) \
            or len(coords) < 2 or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in coords[:2]):
        raise RegistryError(f"{where}: geometry must be a Point with [lon, lat] coordinates")
    # Compared before float(): a JSON integer beyond float range (the standard library's parser reads
    # one) made float() raise OverflowError. Only the two checked numbers are shown: a third may be too
    # long for str(), and a huge one is named, not printed.
    lon, lat = coords[0], coords[1]
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        shown = [c if -1e308 < c < 1e308 else "beyond float range" for c in (lon, lat)]
        raise RegistryError(f"{where}: coordinates out of range: {shown!r}")
    return float(lon), float(lat)


def _device(ident: str, props: dict[str, Any], lon: float, lat: float, where: str) -> Device:
    """One device feature's properties, validated."""
    kind = _str(props, "kind", where)
    if kind not in KINDS:
        raise RegistryError(f"{where}: unknown kind {kind!r}; known: {', '.join(sorted(KINDS))}")
    try:
        classification = Classification(props.get("classification", KINDS[kind].classification))
    except ValueError:
        raise RegistryError(f"{where}: classification must be one of "
                            f"{', '.join(c.value for c in Classification)}") from None
    link = _str(props, "link", where)
    address = port = dev_eui = None
    if link == "lora":
        address = _str(props, "address", where, LORA_ADDRESS)
    elif link == "lorawan":
        dev_eui = _str(props, "dev_eui", where, DEV_EUI)
    elif link == "serial":
        port = _str(props, "port", where)
    else:
        raise RegistryError(f"{where}: link must be one of {', '.join(LINKS)}, got {link!r}")
    wijk = _str(props, "wijk", where, WIJK)
    buurt = None
    if props.get("buurt") is not None:
        buurt = _str(props, "buurt", where, BUURT)
        if buurt[2:8] != wijk[2:]:
            raise RegistryError(f"{where}: buurt {buurt} does not lie in wijk {wijk} (its digits 1-6 are the wijk's)")
    return Device(
        ident, str(props.get("name", ident)), kind, _str(props, "gateway", where),
        _str(props, "gemeente", where, GEMEENTE), wijk,
        lon, lat, classification, link, address, port, dev_eui, buurt,
    )


def parse(data: Any) -> Registry:
    """Build a Registry from parsed GeoJSON; raises RegistryError on the first problem found."""
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection" \
            or not isinstance(data.get("features"), list):
        raise RegistryError("registry must be a GeoJSON FeatureCollection with a 'features' array")
    map_year = data.get("cbs_map_year")
    if not isinstance(map_year, int):
        raise RegistryError(f"'cbs_map_year' (year of the CBS boundaries) must be an integer: {map_year!r}")
    gateways: dict[str, Gateway] = {}
    devices: dict[str, Device] = {}
    for i, feature in enumerate(data["features"]):
        props = feature.get("properties") if isinstance(feature, dict) else None
        if not isinstance(props, dict):
            raise RegistryError(f"feature {i}: not a Feature with properties")
        where = f"feature {i} ({props.get('id')!r})"
        try:
            ident = check_id(_str(props, "id", where), "id")
        except TopicError as exc:
            raise RegistryError(f"{where}: {exc}") from None
        if ident in gateways or ident in devices:
            raise RegistryError(f"{where}: duplicate id")
        lon, lat = _point(feature, where)
        role = props.get("role")
        if role == "gateway":
            gateways[ident] = Gateway(ident, str(props.get("name", ident)),
                                      _str(props, "gemeente", where, GEMEENTE), lon, lat)
        elif role == "device":
            devices[ident] = _device(ident, props, lon, lat, where)
        else:
            raise RegistryError(f"{where}: role must be 'gateway' or 'device', got {role!r}")
    for d in devices.values():
        if d.gateway not in gateways:
            raise RegistryError(f"device {d.id!r}: unknown gateway {d.gateway!r}")
    seen: dict[tuple[str, str], str] = {}
    for d in devices.values():
        if d.address is not None:
            other = seen.setdefault((d.gateway, d.address), d.id)
            if other != d.id:
                raise RegistryError(f"devices {other!r} and {d.id!r} share LoRa address {d.address}")
    eui: dict[str, str] = {}
    for d in devices.values():
        if d.dev_eui is not None:
            other = eui.setdefault(d.dev_eui, d.id)
            if other != d.id:
                raise RegistryError(f"devices {other!r} and {d.id!r} share DevEUI {d.dev_eui}")
    return Registry(gateways, devices, map_year)


def load(path: str | os.PathLike[str]) -> Registry:
    """Read and validate a registry file."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise RegistryError(f"cannot read registry {path}: {exc.strerror}") from None
    try:
        data = jsonfast.loads(raw)
    except ValueError as exc:
        raise RegistryError(f"registry {path} is not JSON: {exc}") from None
    return parse(data)


class WatchedRegistry:
    """A registry that reloads when its file changes or on request (SIGHUP); a bad edit keeps the old one."""

    def __init__(self, path: str | os.PathLike[str], check_interval: float = 1.0) -> None:
        self.path = Path(path)
        self._check_interval = check_interval
        self._lock = threading.Lock()
        self._registry = load(self.path)  # raises RegistryError naming the file if it cannot be read
        self._mtime = self.path.stat().st_mtime_ns
        self._next_check = time.monotonic() + check_interval
        self.reload_failures = 0

    def get(self) -> Registry:
        """The current registry, reloaded first if the file changed since the last check."""
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + self._check_interval
            try:
                mtime = self.path.stat().st_mtime_ns
            except OSError:
                mtime = self._mtime
            if mtime != self._mtime:
                self.reload()
        return self._registry

    def reload(self) -> bool:
        """Load the file again; on error log it, count it and keep serving the previous registry."""
        with self._lock:
            try:
                self._mtime = self.path.stat().st_mtime_ns
                self._registry = load(self.path)
            except (RegistryError, OSError) as exc:
                self.reload_failures += 1
                log.error("registry reload failed, keeping the previous one: %s", exc)
                return False
            log.info("registry reloaded: %d gateways, %d devices",
                     len(self._registry.gateways), len(self._registry.devices))
            return True
