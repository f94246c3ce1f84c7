"""A scenario file (TOML): which gateways and devices exist, how fast time runs, which faults happen when.

``firmware-sim/scenarios/faults-demo.toml`` is the documented example. Everything is checked
once, at load, and every message names the file and the key (``faults[2].target: ...``);
unknown keys are refused with the nearest known one ("did you mean"). The city comes from
``registry = "path"`` (relative to the scenario file), from inline ``[[gateways]]`` and
``[[devices]]`` tables (turned into GeoJSON and validated by ``core.registry.parse``, so the
rules are the registry's), or, with neither, from the registry the caller passes (the
``smartcity sim --registry`` file). All times are simulated: ``at`` is simulated time since the
scenario started, ``for`` a simulated span; ``speed`` says how many simulated seconds pass per
real second.
"""

from __future__ import annotations

import difflib
import itertools
import math
import os
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from core.registry import Registry, RegistryError, load, parse
from edge.gateway_config_model import LORA_MODEMS
from firmware_sim.scenario_clock import DurationError, format_duration, parse_duration

VERSION = 1
LORA_PORT = "lora"  # the modem's port name in the port map (firmware_sim.city.LORA_PORT)
MIN_REAL_INTERVAL = 0.01  # s: faster device timers than this the firmware threads cannot keep
MAX_GARBAGE = 65536
DEFAULT_PLACE = (4.43, 52.12)  # lon, lat of an inline gateway without coordinates (Voorschoten)

TOP_KEYS = ("version", "seed", "speed", "duration", "lora_modem", "registry", "cbs_map_year", "gateways",
            "devices", "report_interval", "occupancy_busy", "occupancy_quiet", "rain_tick", "faults")
GATEWAY_KEYS = ("id", "gemeente", "name", "lon", "lat")
DEVICE_KEYS = ("id", "kind", "gateway", "link", "address", "port", "dev_eui", "wijk", "gemeente", "name",
               "lon", "lat", "classification")
# Words people reach for that difflib would not connect to ours.
HINTS = {"duration": "for", "until": "for", "time": "at", "when": "at", "device": "target", "port": "target",
         "type": "kind", "count": "lines", "length": "bytes", "size": "bytes"}


class ScenarioError(ConfigError):
    """A scenario file that cannot be run; the message names the file and the key."""


class FaultKind(StrEnum):
    """What a fault does (firmware_sim.faults has one action per kind)."""

    GARBAGE = "garbage"  # random bytes on a port, between two lines
    TRUNCATE = "truncate"  # the next line(s) on a port cut short
    SILENT = "silent"  # a device says nothing for a while
    MODEM_RESET = "modem_reset"  # a gateway's LoRa modem reboots on its own
    UNPLUG = "unplug"  # a USB serial adapter disappears for a while and comes back


COMMON_FAULT_KEYS = ("at", "kind", "target")
FAULT_OPTIONS: dict[FaultKind, tuple[str, ...]] = {
    FaultKind.GARBAGE: ("bytes", "newline"),
    FaultKind.TRUNCATE: ("lines", "keep", "prefix", "newline"),
    FaultKind.SILENT: ("for",),
    FaultKind.MODEM_RESET: (),
    FaultKind.UNPLUG: ("for", "power_cycle"),
}
SPANNING = (FaultKind.SILENT, FaultKind.UNPLUG)  # the faults that last ``for`` a while


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """One ``[[faults]]`` entry, validated; times in simulated seconds."""

    index: int
    kind: FaultKind
    target: str  # "gateway/port" (a port or the modem's "lora"), or a device id for silent
    at: float
    span: float | None = None  # ``for``: silent and unplug
    bytes: int = 64  # garbage
    newline: bool = True  # garbage and truncate: end the noise / the cut line with CRLF
    lines: int = 1  # truncate: how many lines to cut
    keep: int | None = None  # truncate: bytes kept of each cut line (None: half)
    prefix: str | None = None  # truncate: cut only lines starting so (None: the device's data lines)
    power_cycle: bool | None = None  # unplug: the device reboots on replug (None: modems do, gauges not)

    @property
    def where(self) -> str:
        """How messages name this entry: faults[i]."""
        return f"faults[{self.index}]"

    @property
    def end(self) -> float:
        """Simulated time the fault is over (at, for an instant fault)."""
        return self.at + (self.span or 0.0)

    def describe(self) -> str:
        """One line for logs: kind, target, when."""
        span = f" for {format_duration(self.span)}" if self.span is not None else ""
        return f"{self.kind.value} {self.target} at {format_duration(self.at)}{span}"


@dataclass(frozen=True, slots=True)
class ScenarioSpec:
    """A whole scenario, validated; durations in simulated seconds."""

    source: str
    seed: int
    speed: float
    duration: float
    lora_modem: str
    registry: Registry
    report_interval: float
    occupancy_busy: float
    occupancy_quiet: float
    rain_tick: float
    faults: tuple[FaultSpec, ...]


def load_scenario(path: str | os.PathLike[str], *, default_registry: str | os.PathLike[str] | None = None
                  ) -> ScenarioSpec:
    """Read and validate a scenario file; raises ScenarioError naming the file and the key."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(f"cannot read scenario {p}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{p}: not valid TOML: {exc}") from None
    return parse_scenario(data, source=str(p), base_dir=p.parent, default_registry=default_registry)


def parse_scenario(data: dict[str, Any], *, source: str = "<scenario>", base_dir: Path | None = None,
                   default_registry: str | os.PathLike[str] | None = None) -> ScenarioSpec:
    """Validate a parsed scenario (a dict as tomllib gives it); relative paths are taken from base_dir."""
    return _Reader(source, base_dir or Path.cwd()).scenario(data, default_registry)


def suggest(key: str, known: Iterable[str]) -> str:
    """'; did you mean X?' for the closest known key, or '' if none is close."""
    known = list(known)
    hint = HINTS.get(key)
    close = [hint] if hint in known else difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


class _Reader:
    """Validation with the file name in every message."""

    def __init__(self, source: str, base_dir: Path) -> None:
        self.source, self.base_dir = source, base_dir

    def error(self, where: str, message: str) -> ScenarioError:
        return ScenarioError(f"{self.source}: {where}: {message}" if where else f"{self.source}: {message}")

    def keys(self, table: dict[str, Any], allowed: Iterable[str], where: str) -> None:
        allowed = tuple(allowed)
        for key in table:
            if key not in allowed:
                raise self.error(where, f"unknown key {key!r}{suggest(key, allowed)} (known: {', '.join(allowed)})")

    def duration(self, table: dict[str, Any], key: str, where: str, default: str | None = None, *,
                 positive: bool = True) -> float:
        value = table.get(key, default)
        label = f"{where}.{key}" if where else key
        if value is None:
            raise self.error(label, "is required (a duration such as '90s', '10m', '2h')")
        try:
            seconds = parse_duration(value)
        except DurationError as exc:
            raise self.error(label, str(exc)) from None
        if positive and seconds <= 0:
            raise self.error(label, f"must be more than 0: {value!r}")
        return seconds

    def integer(self, table: dict[str, Any], key: str, where: str, default: int, *, low: int, high: int) -> int:
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.error(f"{where}.{key}" if where else key, f"must be an integer {low}-{high}, got {value!r}")
        return value

    def flag(self, table: dict[str, Any], key: str, where: str, default: bool | None) -> bool | None:
        value = table.get(key, default)
        if value is not None and not isinstance(value, bool):
            raise self.error(f"{where}.{key}", f"must be true or false, got {value!r}")
        return value

    def tables(self, data: dict[str, Any], key: str) -> list[dict[str, Any]]:
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
            raise self.error(key, f"must be an array of tables ([[{key}]])")
        return value

    # --- the whole file ---

    def scenario(self, data: dict[str, Any], default_registry: str | os.PathLike[str] | None) -> ScenarioSpec:
        self.keys(data, TOP_KEYS, "")
        if "version" not in data:
            raise self.error("version", f"is required (this simulator reads version = {VERSION})")
        if data["version"] != VERSION:
            raise self.error("version", f"must be {VERSION}, got {data['version']!r}")
        seed = self.integer(data, "seed", "", 1, low=0, high=2**63 - 1)
        speed = data.get("speed", 1)
        if isinstance(speed, bool) or not isinstance(speed, int | float) or not math.isfinite(speed) \
                or not 0 < speed <= 1_000_000:
            raise self.error("speed", f"must be a number of simulated seconds per real second, "
                                      f"0 < speed <= 1000000, got {speed!r}")
        lora_modem = data.get("lora_modem", "rn2483")
        if lora_modem not in LORA_MODEMS:
            raise self.error("lora_modem", f"must be one of {', '.join(LORA_MODEMS)}, got {lora_modem!r}"
                             f"{suggest(str(lora_modem), tuple(LORA_MODEMS))}")
        timers = {key: self.duration(data, key, "", default) for key, default in (
            ("report_interval", "10m"), ("occupancy_busy", "20m"), ("occupancy_quiet", "40m"),
            ("rain_tick", "10s"))}
        for key in ("report_interval", "rain_tick"):
            if timers[key] / speed < MIN_REAL_INTERVAL:
                raise self.error(key, f"{format_duration(timers[key])} at speed {speed:g} is "
                                      f"{timers[key] / speed * 1000:.1f} ms of real time; the simulator needs "
                                      f">= {MIN_REAL_INTERVAL * 1000:g} ms (lower the speed)")
        duration = self.duration(data, "duration", "")
        registry = self.registry(data, default_registry)
        faults = tuple(self.fault(i, t, registry) for i, t in enumerate(self.tables(data, "faults")))
        self.check_timeline(faults, duration)
        return ScenarioSpec(self.source, seed, float(speed), duration, str(lora_modem), registry,
                            timers["report_interval"], timers["occupancy_busy"], timers["occupancy_quiet"],
                            timers["rain_tick"], faults)

    # --- the city ---

    def registry(self, data: dict[str, Any], default: str | os.PathLike[str] | None) -> Registry:
        inline = "gateways" in data or "devices" in data
        if "registry" in data and inline:
            raise self.error("registry", "give either registry = PATH or [[gateways]]/[[devices]], not both")
        if inline:
            if "cbs_map_year" in data:
                self.integer(data, "cbs_map_year", "", 2024, low=1900, high=2100)
            return self.inline_registry(data)
        if "cbs_map_year" in data:
            raise self.error("cbs_map_year", "only applies to inline [[gateways]]/[[devices]]")
        if "registry" in data:
            path = data["registry"]
            if not isinstance(path, str) or not path:
                raise self.error("registry", f"must be the path of a GeoJSON registry, got {path!r}")
            full = self.base_dir / path
        elif default is not None:
            full = Path(default)
        else:
            raise self.error("", "no city: give registry = PATH or [[gateways]] and [[devices]] tables")
        try:
            return load(full)
        except RegistryError as exc:
            raise self.error("registry", str(exc)) from None

    def inline_registry(self, data: dict[str, Any]) -> Registry:
        features: list[dict[str, Any]] = []
        places: dict[str, tuple[Any, Any, Any]] = {}  # gateway id -> lon, lat, gemeente
        for i, gw in enumerate(self.tables(data, "gateways")):
            self.keys(gw, GATEWAY_KEYS, f"gateways[{i}]")
            lon, lat = gw.get("lon", DEFAULT_PLACE[0]), gw.get("lat", DEFAULT_PLACE[1])
            places[str(gw.get("id"))] = (lon, lat, gw.get("gemeente"))
            features.append(_feature({"role": "gateway", **{k: v for k, v in gw.items() if k not in ("lon", "lat")}},
                                     lon, lat))
        for i, dev in enumerate(self.tables(data, "devices")):
            self.keys(dev, DEVICE_KEYS, f"devices[{i}]")
            lon, lat, gemeente = places.get(str(dev.get("gateway")), (*DEFAULT_PLACE, None))
            props = {"role": "device", **({"gemeente": gemeente} if gemeente is not None else {}),
                     **{k: v for k, v in dev.items() if k not in ("lon", "lat")}}
            features.append(_feature(props, dev.get("lon", lon), dev.get("lat", lat)))
        if not places:
            raise self.error("gateways", "an inline city needs at least one [[gateways]] table")
        geojson = {"type": "FeatureCollection", "cbs_map_year": data.get("cbs_map_year", 2024), "features": features}
        try:
            return parse(geojson)
        except RegistryError as exc:
            raise self.error("inline registry", str(exc)) from None

    # --- faults ---

    def fault(self, index: int, table: dict[str, Any], registry: Registry) -> FaultSpec:
        where = f"faults[{index}]"
        raw_kind = table.get("kind")
        try:
            kind = FaultKind(str(raw_kind))
        except ValueError:
            known = [k.value for k in FaultKind]
            raise self.error(f"{where}.kind", f"must be one of {', '.join(known)}, got {raw_kind!r}"
                                              f"{suggest(str(raw_kind), known)}") from None
        allowed = (*COMMON_FAULT_KEYS, *FAULT_OPTIONS[kind])
        for key in table:
            if key not in allowed and any(key in options for options in FAULT_OPTIONS.values()):
                raise self.error(where, f"{key!r} does not apply to kind {kind.value!r} "
                                        f"(its keys: {', '.join(allowed)})")
        self.keys(table, allowed, where)
        at = self.duration(table, "at", where, positive=False)
        target = table.get("target")
        if not isinstance(target, str) or not target:
            raise self.error(f"{where}.target", f"is required: {_TARGET_HELP[kind]}")
        self.check_target(kind, target, registry, f"{where}.target")
        span = self.duration(table, "for", where) if kind in SPANNING else None
        prefix = table.get("prefix")
        if prefix is not None and (not isinstance(prefix, str) or not prefix.isascii()):
            raise self.error(f"{where}.prefix", f"must be an ASCII string, got {prefix!r}")
        keep = table.get("keep")
        if keep is not None:
            keep = self.integer(table, "keep", where, 0, low=0, high=4096)
        newline = self.flag(table, "newline", where, True)
        return FaultSpec(
            index, kind, target, at, span,
            bytes=self.integer(table, "bytes", where, 64, low=1, high=MAX_GARBAGE),
            newline=bool(newline), lines=self.integer(table, "lines", where, 1, low=1, high=10_000), keep=keep,
            prefix=prefix, power_cycle=self.flag(table, "power_cycle", where, None))

    def check_target(self, kind: FaultKind, target: str, registry: Registry, where: str) -> None:
        if kind is FaultKind.SILENT:
            device = registry.devices.get(target)
            if device is None:
                raise self.error(where, f"no device {target!r} in the registry{suggest(target, registry.devices)}")
            if device.link not in ("lora", "serial"):
                raise self.error(where, f"device {target!r} is reached over {device.link}; the simulator plays "
                                        f"only lora and serial devices")
            return
        gateway, slash, port = target.partition("/")
        if not slash:
            raise self.error(where, f"{target!r} is not a port: {_TARGET_HELP[kind]}")
        if gateway not in registry.gateways:
            raise self.error(where, f"no gateway {gateway!r} in the registry{suggest(gateway, registry.gateways)}")
        devices = registry.devices_of(gateway)
        ports = sorted({d.port for d in devices if d.link == "serial" and d.port}
                       | ({LORA_PORT} if any(d.link == "lora" for d in devices) else set()))
        if kind is FaultKind.MODEM_RESET and port != LORA_PORT:
            raise self.error(where, f"modem_reset needs a gateway's modem, '{gateway}/{LORA_PORT}', got {target!r}")
        if port not in ports:
            raise self.error(where, f"gateway {gateway!r} has no port {port!r}{suggest(port, ports)} "
                                    f"(its ports: {', '.join(ports) or 'none'})")

    def check_timeline(self, faults: tuple[FaultSpec, ...], duration: float) -> None:
        for f in faults:
            if f.end > duration:
                raise self.error(f.where, f"{f.describe()} ends at {format_duration(f.end)}, after the "
                                          f"scenario's duration {format_duration(duration)}")
        # Two silences of one device, or two unplugs of one port, at once cannot both be undone in order.
        spans = sorted((f for f in faults if f.kind in SPANNING), key=lambda f: (f.kind, f.target, f.at))
        for a, b in itertools.pairwise(spans):
            if (a.kind, a.target) == (b.kind, b.target) and b.at < a.end:
                raise self.error(b.where, f"overlaps {a.where} ({a.describe()})")


_TARGET_HELP = {
    FaultKind.GARBAGE: "a port, 'gateway/port' (e.g. 'gw-vs-01/rg15', or 'gw-vs-01/lora' for the modem)",
    FaultKind.TRUNCATE: "a port, 'gateway/port' (e.g. 'gw-vs-01/rg15', or 'gw-vs-01/lora' for the modem)",
    FaultKind.SILENT: "a device id (a LoRa node or a serial rain gauge)",
    FaultKind.MODEM_RESET: "a gateway's modem, 'gateway/lora'",
    FaultKind.UNPLUG: "a port, 'gateway/port' (e.g. 'gw-vs-01/rg15', or 'gw-vs-01/lora' for the modem)",
}


def _feature(props: dict[str, Any], lon: Any, lat: Any) -> dict[str, Any]:
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]}, "properties": props}
