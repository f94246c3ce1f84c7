"""The rule file: versioned TOML, validated once at load with messages that name the rule and field.

A file holds ``version`` and an array of ``[[rules]]`` tables; each rule names its ``type``,
which decides the rest of its keys. ``rules/examples/presence-lighting.toml`` is the
documented sample. Everything is checked here, so the kernels can trust their rules.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from core.kinds import KINDS
from core.registry import GEMEENTE
from core.topics import ID_PATTERN

SUPPORTED_VERSIONS = (1,)
# A dimmable kind is one that reports its light level; the contract's DIM action acts on it.
DIMMABLE_METRIC = "dim_level"
DEFAULT_REASSERT_SECONDS = 300.0


class RuleFileError(ConfigError):
    """A rule file that cannot be used; the message names the file, rule and field."""


class ZoneLevel(StrEnum):
    """Which registry code groups devices into the zones a rule acts on."""

    WIJK = "wijk"
    GEMEENTE = "gemeente"


@dataclass(frozen=True, slots=True)
class PresenceDimmingRule:
    """Targets of a zone to on_level while its sensors saw presence within hold_seconds, else off_level."""

    name: str
    description: str
    zone: ZoneLevel
    sensor_kind: str
    sensor_metric: str
    target_kind: str
    on_level: int
    off_level: int
    hold_seconds: float
    reassert_seconds: float = DEFAULT_REASSERT_SECONDS
    # None: every gemeente; else only devices in these (sorted, unique) gemeente codes.
    gemeenten: tuple[str, ...] | None = None

    @property
    def type(self) -> str:
        """The rule type name used in the file."""
        return "presence_dimming"

    def in_scope(self, gemeente: str) -> bool:
        """True if devices in this gemeente fall under the rule."""
        return self.gemeenten is None or gemeente in self.gemeenten


# The union of all rule classes; a new rule type adds its class here and its parser to RULE_TYPES.
Rule = PresenceDimmingRule


@dataclass(frozen=True, slots=True)
class RuleSet:
    """The validated rules of one file, in file order."""

    version: int
    rules: tuple[Rule, ...]
    source: str


class _Fields:
    """Typed access to one rule table that records which keys were read, to reject the rest."""

    def __init__(self, table: dict[str, Any], where: str) -> None:
        self.table = table
        self.where = where
        self.used: set[str] = set()

    def fail(self, message: str) -> RuleFileError:
        """An error naming the file and rule."""
        return RuleFileError(f"{self.where}: {message}")

    def raw(self, key: str, default: Any = None, required: bool = True) -> Any:
        """The value of key as TOML gave it, or default if it is absent and not required."""
        self.used.add(key)
        if key not in self.table:
            if required:
                raise self.fail(f"missing '{key}'")
            return default
        return self.table[key]

    def text(self, key: str, default: str | None = None) -> str:
        """A string; required unless a default is given."""
        value = self.raw(key, default, required=default is None)
        if not isinstance(value, str):
            raise self.fail(f"{key} must be a string: {value!r}")
        return value

    def choice(self, key: str, choices: list[str]) -> str:
        """A required string out of choices."""
        value = self.text(key)
        if value not in choices:
            raise self.fail(f"{key} must be one of {', '.join(choices)}: {value!r}")
        return value

    def level(self, key: str) -> int:
        """A required integer dim level 0-100."""
        value = self.raw(key)
        # TOML has real booleans; `true` must not pass as the integer 1.
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
            raise self.fail(f"{key} must be 0-100: {value!r}")
        return value

    def seconds(self, key: str, default: float | None = None, allow_zero: bool = False) -> float:
        """A finite duration > 0 (or >= 0); required unless a default is given."""
        value = self.raw(key, default, required=default is None)
        ok = not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value) \
            and (value >= 0 if allow_zero else value > 0)
        if not ok:
            bound = "a number >= 0" if allow_zero else "a number > 0"
            raise self.fail(f"{key} must be {bound} (seconds): {value!r}")
        return float(value)

    def reject_unknown(self) -> None:
        """Raise if the table has keys that no accessor read."""
        unknown = sorted(set(self.table) - self.used)
        if unknown:
            raise self.fail(f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                            f"known: {', '.join(sorted(self.used))}")


def _kind_and_metric(f: _Fields) -> tuple[str, str, str]:
    known = sorted(KINDS)
    sensor_kind = f.choice("sensor_kind", known)
    metrics = sorted(KINDS[sensor_kind].metrics)
    sensor_metric = f.text("sensor_metric")
    if sensor_metric not in metrics:
        raise f.fail(f"sensor_metric must be a metric of {sensor_kind} ({', '.join(metrics)}): "
                     f"{sensor_metric!r}")
    dimmable = [k for k in known if DIMMABLE_METRIC in KINDS[k].metrics]
    target_kind = f.text("target_kind")
    if target_kind not in dimmable:
        raise f.fail(f"target_kind must be a dimmable kind ({', '.join(dimmable)}): {target_kind!r}")
    return sensor_kind, sensor_metric, target_kind


def _gemeenten(f: _Fields) -> tuple[str, ...] | None:
    value = f.raw("gemeenten", required=False)
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise f.fail(f"gemeenten must be a non-empty array of gemeente codes: {value!r}")
    for code in value:
        if not isinstance(code, str) or not GEMEENTE.match(code):
            raise f.fail(f"gemeenten entries must match {GEMEENTE.pattern}: {code!r}")
    if len(set(value)) != len(value):
        raise f.fail(f"gemeenten lists a code twice: {value!r}")
    return tuple(sorted(value))


def _presence_dimming(f: _Fields, name: str) -> PresenceDimmingRule:
    description = f.text("description", default="")
    zone = ZoneLevel(f.choice("zone", [z.value for z in ZoneLevel]))
    sensor_kind, sensor_metric, target_kind = _kind_and_metric(f)
    rule = PresenceDimmingRule(
        name=name,
        description=description,
        zone=zone,
        sensor_kind=sensor_kind,
        sensor_metric=sensor_metric,
        target_kind=target_kind,
        on_level=f.level("on_level"),
        off_level=f.level("off_level"),
        hold_seconds=f.seconds("hold_seconds"),
        reassert_seconds=f.seconds("reassert_seconds", DEFAULT_REASSERT_SECONDS, allow_zero=True),
        gemeenten=_gemeenten(f),
    )
    f.reject_unknown()
    return rule


RULE_TYPES: dict[str, Callable[[_Fields, str], Rule]] = {
    "presence_dimming": _presence_dimming,
}
NAME_PATTERN = ID_PATTERN  # names travel in command origins and InfluxDB tags, like device ids


def _rule(table: Any, index: int, source: str) -> Rule:
    if not isinstance(table, dict):
        raise RuleFileError(f"{source}: rules[{index}] must be a table ([[rules]])")
    name = table.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise RuleFileError(f"{source}: rules[{index}]: name must match {NAME_PATTERN.pattern}: {name!r}")
    f = _Fields(table, f"{source}: rule {name!r}")
    f.used.add("name")
    rule_type = f.text("type")
    if rule_type not in RULE_TYPES:
        raise f.fail(f"unknown type {rule_type!r}; known: {', '.join(sorted(RULE_TYPES))}")
    return RULE_TYPES[rule_type](f, name)


def parse_rules(text: str, source: str = "<rules>") -> RuleSet:
    """Parse and validate rule-file text; source names the file in error messages."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RuleFileError(f"{source}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - {"version", "rules"})
    if unknown:
        raise RuleFileError(f"{source}: unknown top-level key{'s' if len(unknown) > 1 else ''} "
                            f"{', '.join(unknown)}; known: rules, version")
    if "version" not in data:
        raise RuleFileError(f"{source}: missing 'version' (this build reads version "
                            f"{', '.join(map(str, SUPPORTED_VERSIONS))})")
    version = data["version"]
    if isinstance(version, bool) or version not in SUPPORTED_VERSIONS:
        raise RuleFileError(f"{source}: unsupported version {version!r}; this build reads version "
                            f"{', '.join(map(str, SUPPORTED_VERSIONS))}")
    tables = data.get("rules", [])
    if not isinstance(tables, list):
        raise RuleFileError(f"{source}: 'rules' must be an array of tables ([[rules]])")
    rules: list[Rule] = []
    seen: set[str] = set()
    for index, table in enumerate(tables):
        rule = _rule(table, index, source)
        if rule.name in seen:
            raise RuleFileError(f"{source}: rule {rule.name!r}: duplicate name")
        seen.add(rule.name)
        rules.append(rule)
    return RuleSet(version, tuple(rules), source)


def load_rules(path: str | os.PathLike[str]) -> RuleSet:
    """Read and validate a rule file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise RuleFileError(f"cannot read rule file {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise RuleFileError(f"{path}: not UTF-8: {exc}") from None
    return parse_rules(text, str(path))

