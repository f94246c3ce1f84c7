"""The rule-file tests' shared cases: the example files, a base rule to vary, and how a rejection is read."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from rules.rule_file import RuleFileError, parse_rules
from rules.rule_file_v1 import to_toml

ROOT = Path(__file__).parents[2]
EXAMPLES = sorted((ROOT / "rules" / "examples").glob("*.toml"))
CITY = ROOT / "rules" / "examples" / "city-rules.toml"
V1_EXAMPLE = ROOT / "rules" / "examples" / "presence-lighting-v1.toml"
SCHEMA = ROOT / "rules" / "rule-file.schema.json"
FAST = settings(max_examples=150, derandomize=True, database=None, deadline=None)
MUNICIPALITIES = frozenset({"GM0626", "GM0629"})

BASE_RULE: dict[str, Any] = {
    "name": "rain",
    "kind": "rain_gauge",
    "group_by": "wijk",
    "values": {"rain": {"metric": "rain_intensity"}},
    "when": "rain > 0.5",
    "on_activate": [{"command": "bike_priority", "params": {"enabled": True}, "targets": {"kind": "traffic_light"}}],
    "on_clear": [{"command": "bike_priority", "params": {"enabled": False}, "targets": {"kind": "traffic_light"}}],
}
DELETE = object()


def rule_file(changes: dict[str, Any] | None = None, schedules: dict[str, Any] | None = None) -> str:
    """A version-2 file with one rule: BASE_RULE with dotted-path changes ("values.rain.fn", "on_activate.0")."""
    rule = copy.deepcopy(BASE_RULE)
    for path, value in (changes or {}).items():
        *parents, last = path.split(".")
        node: Any = rule
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        key: Any = int(last) if isinstance(node, list) else last
        if value is DELETE:
            del node[key]
        else:
            node[key] = value
    data: dict[str, Any] = {"version": 2}
    if schedules is not None:
        data["schedules"] = schedules
    data["rules"] = [rule]
    return to_toml(data)


def rejects(text: str) -> str:
    """The message of the RuleFileError that parsing text (as city.toml) raises."""
    with pytest.raises(RuleFileError) as info:
        parse_rules(text, "city.toml")
    message = str(info.value)
    assert message.startswith("city.toml: ")
    assert len(message) < 600, message  # hostile values are shortened
    return message
