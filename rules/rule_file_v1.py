"""Version-1 rule files: validated as before, then migrated to the version-2 table form and TOML text.

A version-1 file holds ``type = "presence_dimming"`` rules. Each becomes a version-2 rule over the
same sensors: ``present`` is the maximum reading over the hold time, the targets go to ``on_level``
while it is above 0 and to ``off_level`` once it is 0 (rules/README.md, "Version 1 files"). The
migration produces the data a version-2 file would load as; rules/rule_file.py validates it as such,
and :func:`to_toml` writes it out, so the text and the in-memory migration cannot disagree.
"""

from __future__ import annotations

import math
from typing import Any

from core.commands import Action as CommandName
from core.kinds import KINDS
from core.registry import GEMEENTE
from core.toml_text import toml_key, toml_string
from core.topics import ID_PATTERN
from rules.durations import format_duration
from rules.rule_file_fields import Fields, RuleFileError, show
from rules.rule_model import FILE_VERSION

V1_KEYS = ("name", "description", "type", "zone", "sensor_kind", "sensor_metric", "target_kind",
           "on_level", "off_level", "hold_seconds", "reassert_seconds", "gemeenten")
V1_DEFAULT_REASSERT = 300.0
V1_ZONES = ("wijk", "gemeente")
PRESENT = "present"  # the name of the migrated rule's one value


def _level(f: Fields, key: str) -> int:
    value = f.raw(key)
    # TOML has real booleans; `true` must not pass as the integer 1.
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise f.fail(f"{key} must be 0-100: {show(value)}")
    return value


def _seconds(f: Fields, key: str, default: float | None = None) -> float:
    value = f.raw(key) if default is None else f.raw(key, default)
    ok = not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value) \
        and (value > 0 if default is None else value >= 0)
    if not ok:
        bound = "a number > 0" if default is None else "a number >= 0"
        raise f.fail(f"{key} must be {bound} (seconds): {show(value)}")
    return float(value)


def _gemeenten(f: Fields) -> list[str] | None:
    value = f.raw("gemeenten", None)
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise f.fail(f"gemeenten must be a non-empty array of gemeente codes: {show(value)}")
    for code in value:
        if not isinstance(code, str) or not GEMEENTE.match(code):
            raise f.fail(f"gemeenten entries must match {GEMEENTE.pattern}: {show(code)}")
    if len(set(value)) != len(value):
        raise f.fail(f"gemeenten lists a code twice: {show(value)}")
    return sorted(value)


def _presence_dimming(f: Fields) -> dict[str, Any]:
    """One presence_dimming rule as the version-2 rule table it migrates to."""
    sensor_kind = f.choice("sensor_kind", sorted(KINDS))
    metrics = sorted(KINDS[sensor_kind].metrics)
    sensor_metric = f.text("sensor_metric")
    if sensor_metric not in metrics:
        raise f.fail(f"sensor_metric must be a metric of {sensor_kind} ({', '.join(metrics)}): "
                     f"{show(sensor_metric)}")
    dimmable = sorted(k for k in KINDS if CommandName.DIM.value in KINDS[k].actions)
    target_kind = f.raw("target_kind")
    if target_kind not in dimmable:
        raise f.fail(f"target_kind must be a dimmable kind ({', '.join(dimmable)}): {show(target_kind)}")
    rule: dict[str, Any] = {"name": f.table["name"]}
    description = f.text("description", "", allow_empty=True)
    if description:
        rule["description"] = description
    rule["kind"] = sensor_kind
    gemeenten = _gemeenten(f)
    if gemeenten:
        rule["where"] = {"gemeente": gemeenten}
    rule["group_by"] = f.choice("zone", V1_ZONES)
    hold = _seconds(f, "hold_seconds")
    # The maximum over the hold time is > 0 exactly when a sensor saw someone within it.
    rule["values"] = {PRESENT: {"metric": sensor_metric, "fn": "max", "over": format_duration(hold), "reduce": "max"}}
    rule["when"] = f"{PRESENT} > 0"
    rule["urgent"] = True  # version 1 turned the lights up on the reading itself, not on a tick
    rule["reassert"] = format_duration(_seconds(f, "reassert_seconds", V1_DEFAULT_REASSERT))
    targets = {"kind": target_kind}
    rule["on_activate"] = [{"command": "dim", "params": {"level": _level(f, "on_level")}, "targets": targets}]
    rule["on_clear"] = [{"command": "dim", "params": {"level": _level(f, "off_level")}, "targets": dict(targets)}]
    return rule


def migrate_data(data: dict[str, Any], source: str) -> dict[str, Any]:
    """A loaded version-1 file as the data of the equivalent version-2 file; raises RuleFileError."""
    unknown = sorted(set(data) - {"version", "rules"})
    if unknown:
        raise RuleFileError(f"{source}: unknown top-level key{'s' if len(unknown) > 1 else ''} "
                            f"{', '.join(map(show, unknown))}; known: rules, version (version 1)")
    tables = data.get("rules", [])
    if not isinstance(tables, list):
        raise RuleFileError(f"{source}: 'rules' must be an array of tables ([[rules]])")
    rules = []
    for index, table in enumerate(tables):
        if not isinstance(table, dict):
            raise RuleFileError(f"{source}: rules[{index}] must be a table ([[rules]])")
        name = table.get("name")
        if not isinstance(name, str) or not ID_PATTERN.match(name):
            raise RuleFileError(f"{source}: rules[{index}]: name must match {ID_PATTERN.pattern}: {show(name)}")
        where = f"{source}: rule {name!r}"
        rule_type = table.get("type")
        if rule_type != "presence_dimming":
            problem = "missing 'type'" if rule_type is None else f"unknown type {show(rule_type)}"
            raise RuleFileError(f"{where}: {problem}; known: presence_dimming")
        rules.append(_presence_dimming(Fields(table, where, "", V1_KEYS)))
    return {"version": FILE_VERSION, "rules": rules}


# ---- TOML text, written by hand for the few shapes a migrated file has ----

def toml_value(value: object) -> str:
    """One value as inline TOML (strings, booleans, finite numbers, arrays, inline tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"TOML text for a non-finite number: {value!r}")
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def to_toml(data: dict[str, Any], comment: str = "") -> str:
    """Version-2 file data (as tomllib would load it) as TOML text: top-level keys, then [[rules]]."""
    lines = [f"# {line}".rstrip() for line in comment.splitlines()]
    for key, value in data.items():
        if key != "rules":
            lines.append(f"{toml_key(key)} = {toml_value(value)}")
    for rule in data.get("rules", []):
        lines += ["", "[[rules]]"]
        for key, value in rule.items():
            if key == "values" and isinstance(value, dict) and value:  # one value a line, as the examples
                lines += [f"values.{toml_key(n)} = {toml_value(spec)}" for n, spec in value.items()]
            else:
                lines.append(f"{toml_key(key)} = {toml_value(value)}")
    return "\n".join(lines) + "\n"
