"""Typed access to the tables of a rule file, with messages that name the file, rule and field.

Every table is checked for unknown keys before any of its fields, so a misspelt key is reported as
such (with the known ones and a close match) rather than as a missing or defaulted field.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

from core.errors import ConfigError
from rules.durations import DurationError, parse_duration

_MISSING = object()


class RuleFileError(ConfigError):
    """A rule file that cannot be used; the message names the file, rule and field."""


def show(value: object) -> str:
    """repr of a value for a message, shortened so a hostile file cannot flood the log."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def unknown_keys_message(table: dict[str, Any], known: Iterable[str], path: str = "") -> str | None:
    """The complaint about keys of table not in known, or None if there are none."""
    known = sorted(known)
    unknown = sorted(set(table) - set(known))
    if not unknown:
        return None
    guesses = [g for key in unknown for g in difflib.get_close_matches(key, known, n=1)]
    hint = f" (did you mean {', '.join(guesses)}?)" if len(guesses) == len(unknown) else ""
    prefix = f"{path}: " if path else ""
    return (f"{prefix}unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(show, unknown))}{hint}; "
            f"known: {', '.join(known)}")


class Fields:
    """One TOML table of the file: where it is (for messages) and typed getters for its keys."""

    def __init__(self, table: object, where: str, path: str, known: Iterable[str]) -> None:
        self.where = where  # "rules.toml: rule 'rain'"
        self.path = path  # "values.rain" ("" for the rule table itself)
        if not isinstance(table, dict):
            raise self.fail(f"{path or 'the rule'} must be a table: {show(table)}")
        self.table: dict[str, Any] = table
        message = unknown_keys_message(table, known, path)
        if message:
            raise self.fail(message)

    def fail(self, message: str) -> RuleFileError:
        """An error naming the file and rule."""
        return RuleFileError(f"{self.where}: {message}")

    def name(self, key: str) -> str:
        """The dotted field name of key, as messages show it."""
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        """True if the key is present."""
        return key in self.table

    def raw(self, key: str, default: Any = _MISSING) -> Any:
        """The value as TOML gave it; without a default the key is required."""
        if key in self.table:
            return self.table[key]
        if default is _MISSING:
            raise self.fail(f"missing {self.name(key)!r}")
        return default

    def text(self, key: str, default: Any = _MISSING, pattern: re.Pattern[str] | None = None,
             describe: str = "", allow_empty: bool = False) -> str:
        """A string, non-empty unless allowed, optionally matching a pattern (described by describe)."""
        value = self.raw(key, default)
        if not isinstance(value, str) or not (value or allow_empty):
            raise self.fail(f"{self.name(key)} must be a{'' if allow_empty else ' non-empty'} string: "
                            f"{show(value)}")
        if pattern is not None and not pattern.match(value):
            raise self.fail(f"{self.name(key)} must be {describe or 'a string matching ' + pattern.pattern}: "
                            f"{show(value)}")
        return value

    def choice(self, key: str, choices: Iterable[str], default: Any = _MISSING) -> str:
        """A string out of choices."""
        options = list(choices)
        value = self.raw(key, default)
        if not isinstance(value, str) or value not in options:
            raise self.fail(f"{self.name(key)} must be one of {', '.join(options)}: {show(value)}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        """true or false."""
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise self.fail(f"{self.name(key)} must be true or false: {show(value)}")
        return value

    def duration(self, key: str, default: float, positive: bool = False) -> float:
        """A duration in seconds (number or string such as "2m"); positive forbids 0."""
        value = self.raw(key, default)
        try:
            seconds = parse_duration(value, self.name(key))
        except DurationError as exc:
            raise self.fail(str(exc)) from None
        if positive and seconds <= 0:
            raise self.fail(f"{self.name(key)} must be a duration > 0: {show(value)}")
        return seconds

    def table_of(self, key: str, known: Iterable[str], default: Any = _MISSING) -> Fields:
        """A nested table, checked for unknown keys."""
        return Fields(self.raw(key, default), self.where, self.name(key), known)

    def mapping(self, key: str) -> dict[str, Any]:
        """A nested table whose keys are names the file chooses (values, where, params)."""
        value = self.raw(key, {})
        if not isinstance(value, dict):
            raise self.fail(f"{self.name(key)} must be a table: {show(value)}")
        return value

    def array(self, key: str) -> list[Any]:
        """An array (empty if absent)."""
        value = self.raw(key, [])
        if not isinstance(value, list):
            raise self.fail(f"{self.name(key)} must be an array: {show(value)}")
        return value

    def strings(self, key: str, what: str = "strings") -> list[str]:
        """A non-empty array of non-empty, distinct strings."""
        value = self.raw(key)
        if not isinstance(value, list) or not value:
            raise self.fail(f"{self.name(key)} must be a non-empty array of {what}: {show(value)}")
        for item in value:
            if not isinstance(item, str) or not item:
                raise self.fail(f"{self.name(key)} entries must be non-empty strings: {show(item)}")
        if len(set(value)) != len(value):
            twice = sorted(v for v, n in Counter(value).items() if n > 1)
            raise self.fail(f"{self.name(key)} lists {', '.join(map(show, twice))} twice")
        return value
