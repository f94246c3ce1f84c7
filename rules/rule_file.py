"""The rule file (version 2, rules/README.md): TOML validated once at load into rules.rule_model.

Every error names the file, the rule and the field (``rules.toml: rule 'rain': for must be a
duration ...: 'x'``); unknown keys are refused everywhere, so a typo never silently means a default.
``rules/examples/*.toml`` are the documented samples. A version-1 file is migrated on load, with a
warning naming ``smartcity rules migrate FILE``, which prints its version-2 text (:func:`migrate_text`).
"""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.kinds import KINDS, Classification
from core.registry import GEMEENTE, WIJK
from core.topics import ID_PATTERN
from rules import expressions
from rules.expressions import IDENTIFIER, RESERVED, ExpressionError, ExprType
from rules.rule_file_actions import parse_actions
from rules.rule_file_fields import Fields, RuleFileError, show, unknown_keys_message
from rules.rule_file_schedules import parse_schedules, parse_timezone
from rules.rule_file_v1 import migrate_data, to_toml
from rules.rule_model import (
    ANY,
    ATTRIBUTES,
    DEFAULT_STALE_AFTER,
    FILE_VERSION,
    Expression,
    Reducer,
    Rule,
    RuleSet,
    Schedule,
    SeriesFn,
    ValueSpec,
)

__all__ = ["RuleFileError", "load_rules", "migrate_file", "migrate_text", "parse_rules"]

log = logging.getLogger(__name__)

SUPPORTED_VERSIONS = (1, FILE_VERSION)
TOP_KEYS = ("version", "timezone", "schedules", "rules")
RULE_KEYS = ("name", "description", "kind", "where", "group_by", "values", "when", "for", "clear_when",
             "clear_for", "cooldown", "reassert", "stale_after", "urgent", "on_activate", "on_clear")
VALUE_KEYS = ("kind", "metric", "fn", "over", "reduce")
NAME_PATTERN = ID_PATTERN  # rule names travel in command origins and InfluxDB tags, like device ids
KIND_CHOICES = (ANY, *sorted(KINDS))
_ALL_METRICS = frozenset(m for k in KINDS.values() for m in k.metrics)
# What each where attribute may hold; a value that cannot occur in the registry is a typo.
_WHERE_CHECKS: dict[str, tuple[Callable[[str], object], str]] = {
    "gemeente": (GEMEENTE.match, f"a gemeente code ({GEMEENTE.pattern})"),
    "wijk": (WIJK.match, f"a wijk code ({WIJK.pattern})"),
    "kind": (KINDS.__contains__, f"a kind ({', '.join(sorted(KINDS))})"),
    "classification": ({c.value for c in Classification}.__contains__,
                       f"a classification ({', '.join(c.value for c in Classification)})"),
    "link": ({"lora", "serial"}.__contains__, "a link (lora, serial)"),
    "device": (ID_PATTERN.match, f"a device id ({ID_PATTERN.pattern})"),
    "gateway": (ID_PATTERN.match, f"a gateway id ({ID_PATTERN.pattern})"),
}


def _value(name: str, table: Any, rule: Fields, rule_kind: str) -> ValueSpec:
    f = Fields(table, rule.where, f"values.{name}", VALUE_KEYS)
    kind = f.choice("kind", KIND_CHOICES, rule_kind)
    fn = SeriesFn(f.choice("fn", [s.value for s in SeriesFn], SeriesFn.LAST.value))
    metric = f.text("metric")
    if metric == ANY:
        if fn is not SeriesFn.SILENCE:
            raise f.fail(f'{f.name("metric")} "*" (every metric) is allowed only with fn = "silence"')
    else:
        known = _ALL_METRICS if kind == ANY else KINDS[kind].metrics
        if metric not in known:
            raise f.fail(f"{f.name('metric')} must be a metric of {'any kind' if kind == ANY else kind} "
                         f"({', '.join(sorted(known))}) or \"*\": {show(metric)}")
    over = None
    if fn.windowed:
        if not f.has("over"):
            raise f.fail(f"{f.name('fn')} {fn.value!r} is a trailing window: it needs over, a duration > 0")
        over = f.duration("over", 0.0, positive=True)
    elif f.has("over"):
        raise f.fail(f"{f.name('over')} is only for the windowed functions "
                     f"({', '.join(s.value for s in SeriesFn if s.windowed)}), not fn = {fn.value!r}")
    reduce = Reducer(f.choice("reduce", [r.value for r in Reducer], Reducer.MAX.value))
    return ValueSpec(name, kind, metric, fn, over, reduce)


def _values(f: Fields, rule_kind: str, schedules: dict[str, Schedule]) -> tuple[ValueSpec, ...]:
    tables = f.mapping("values")
    if not tables:
        raise f.fail('values: a rule needs at least one value, e.g. values.x = { metric = "..." }')
    out = []
    for name, table in tables.items():
        if not IDENTIFIER.fullmatch(name) or name in RESERVED:
            raise f.fail(f"value name {show(name)} must be {expressions.IDENTIFIER_HELP}, "
                         f"other than {', '.join(sorted(RESERVED))}")
        if name in schedules:
            raise f.fail(f"values.{name}: a schedule has that name; values and schedules share the "
                         "names of the conditions")
        out.append(_value(name, table, f, rule_kind))
    return tuple(out)


def _where(f: Fields, value_kinds: set[str]) -> dict[str, frozenset[str]]:
    table = f.table_of("where", ATTRIBUTES, default={})
    out: dict[str, frozenset[str]] = {}
    for attribute in ATTRIBUTES:  # in a fixed order, so equal filters compare (and fingerprint) equal
        if not table.has(attribute):
            continue
        allowed, describe = _WHERE_CHECKS[attribute]
        entries = table.strings(attribute)
        for entry in entries:
            if not allowed(entry):
                raise f.fail(f"where.{attribute} entries must each be {describe}: {show(entry)}")
        out[attribute] = frozenset(entries)
    if "kind" in out and ANY not in value_kinds and not value_kinds & out["kind"]:
        raise f.fail(f"where.kind excludes every kind the values read ({', '.join(sorted(value_kinds))})")
    return out


def _condition(f: Fields, key: str, names: dict[str, ExprType]) -> Expression:
    text = f.text(key)
    shown = show(text if len(text) <= 60 else text[:57] + "...")
    try:
        tree = expressions.parse(text)
        kind = expressions.check(tree, names)
    except ExpressionError as exc:
        raise f.fail(f"{key} {shown}: {exc}") from None
    if kind is not ExprType.BOOLEAN:
        raise f.fail(f"{key} must be a condition (true or false), got a number: {shown}")
    return Expression(text, tree)


def _rule(table: Any, index: int, source: str, schedules: dict[str, Schedule]) -> Rule:
    if not isinstance(table, dict):
        raise RuleFileError(f"{source}: rules[{index}] must be a table ([[rules]]): {show(table)}")
    name = table.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise RuleFileError(f"{source}: rules[{index}]: name must match {NAME_PATTERN.pattern}: {show(name)}")
    f = Fields(table, f"{source}: rule {name!r}", "", RULE_KEYS)
    kind = f.choice("kind", KIND_CHOICES)
    group_by = f.choice("group_by", ATTRIBUTES)
    values = _values(f, kind, schedules)
    value_kinds = {v.kind for v in values}
    names = {v.name: ExprType.NUMBER for v in values}
    names.update(dict.fromkeys((*expressions.BUILTINS, *schedules), ExprType.BOOLEAN))
    return Rule(
        name=name,
        kind=kind,
        group_by=group_by,
        values=values,
        when=_condition(f, "when", names),
        clear_when=_condition(f, "clear_when", names) if f.has("clear_when") else None,
        for_seconds=f.duration("for", 0.0),
        clear_for_seconds=f.duration("clear_for", 0.0),
        cooldown_seconds=f.duration("cooldown", 0.0),
        reassert_seconds=f.duration("reassert", 0.0),
        stale_after=f.duration("stale_after", DEFAULT_STALE_AFTER, positive=True),
        urgent=f.boolean("urgent", False),
        where=_where(f, value_kinds),
        on_activate=parse_actions(f, "on_activate", group_by, value_kinds),
        on_clear=parse_actions(f, "on_clear", group_by, value_kinds),
        description=f.text("description", "", allow_empty=True),
    )


def _parse_v2(data: dict[str, Any], source: str, migrated_from: int | None) -> RuleSet:
    message = unknown_keys_message(data, TOP_KEYS)
    if message:
        raise RuleFileError(f"{source}: {message.replace('unknown key', 'unknown top-level key', 1)}")
    timezone = parse_timezone(data.get("timezone"), source)
    schedules = parse_schedules(data.get("schedules"), source)
    tables = data.get("rules", [])
    if not isinstance(tables, list):
        raise RuleFileError(f"{source}: 'rules' must be an array of tables ([[rules]])")
    rules: list[Rule] = []
    seen: set[str] = set()
    for index, table in enumerate(tables):
        rule = _rule(table, index, source, schedules)
        if rule.name in seen:
            raise RuleFileError(f"{source}: rule {rule.name!r}: duplicate name")
        seen.add(rule.name)
        rules.append(rule)
    return RuleSet(FILE_VERSION, tuple(rules), schedules, timezone, source, migrated_from)


def _load_toml(text: str, source: str) -> tuple[dict[str, Any], int]:
    """The TOML data of a rule file and its (supported) version."""
    try:
        data = tomllib.loads(text)
    except ValueError as exc:  # TOMLDecodeError, or an integer too long to convert (over 4300 digits)
        raise RuleFileError(f"{source}: not valid TOML: {exc}") from None
    except RecursionError:  # tomllib recurses on nested arrays and inline tables
        raise RuleFileError(f"{source}: not valid TOML: nested too deeply") from None
    versions = ", ".join(map(str, SUPPORTED_VERSIONS))
    if "version" not in data:
        raise RuleFileError(f"{source}: missing 'version' (this build reads version {versions})")
    version = data["version"]
    if type(version) is not int or version not in SUPPORTED_VERSIONS:  # not true, not 2.0
        raise RuleFileError(f"{source}: unsupported version {show(version)}; this build reads version {versions}")
    return data, version


def parse_rules(text: str, source: str = "<rules>") -> RuleSet:
    """Parse and validate rule-file text (version 2, or version 1 migrated); source names it in errors."""
    data, version = _load_toml(text, source)
    if version == 1:
        ruleset = _parse_v2(migrate_data(data, source), source, migrated_from=1)
        log.warning("%s: a version-1 rule file, migrated on load; `smartcity rules migrate %s` prints "
                    "the version-2 equivalent to replace it with", source, source)
        return ruleset
    return _parse_v2(data, source, migrated_from=None)


def _read(path: str | os.PathLike[str]) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise RuleFileError(f"cannot read rule file {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise RuleFileError(f"{path}: not UTF-8: {exc}") from None


def load_rules(path: str | os.PathLike[str]) -> RuleSet:
    """Read and validate a rule file."""
    return parse_rules(_read(path), str(path))


def migrate_text(v1_text: str, source: str = "<rules>") -> str:
    """The version-2 TOML text of a version-1 file; it parses to the rule set the version-1 file loads as."""
    data, version = _load_toml(v1_text, source)
    if version != 1:
        raise RuleFileError(f"{source}: already version {version}; there is nothing to migrate")
    migrated = migrate_data(data, source)
    _parse_v2(migrated, source, migrated_from=1)  # the same checks as loading, so the text is loadable
    name = " ".join(source.split())  # a comment line must not be broken by a newline in the name
    return to_toml(migrated, f"Migrated from version 1 ({name}) by `smartcity rules migrate`.\n"
                             "See rules/examples/city-rules.toml for every key of version 2.")


def migrate_file(path: str | os.PathLike[str]) -> str:
    """The version-2 TOML text of a version-1 rule file (what `smartcity rules migrate FILE` prints)."""
    return migrate_text(_read(path), str(path))
