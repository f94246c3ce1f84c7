"""The actions of a rule (``on_activate``, ``on_clear``): commands to devices, alarms and webhooks.

A command is checked here as the edge will check it (core.commands), against the kinds that accept
it (core.kinds), so a rule file never loads with a command the devices would reject.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable, Collection
from typing import Any

from core.commands import Action as CommandName
from core.commands import CommandError, bike_priority, dim_level
from core.kinds import KINDS
from rules.rule_file_fields import Fields, show
from rules.rule_model import ANY, ATTRIBUTES, Action, AlarmAction, CommandAction, Severity, TargetSpec, WebhookAction

# The params each command takes and the edge's validator of them (core.commands.parse_command).
# A key the edge would ignore is refused here: in a rule file it is a typo.
PARAMS: dict[str, tuple[tuple[str, ...], Callable[[dict[str, Any]], object]]] = {
    CommandName.DIM.value: (("level",), dim_level),
    CommandName.BIKE_PRIORITY.value: (("enabled",), bike_priority),
}
ACTION_TYPES = ("command", "alarm", "webhook")
_KNOWN = {"command": ("command", "params", "targets"), "alarm": ("alarm", "severity"), "webhook": ("webhook",)}
MAX_ALARM_TEXT = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _command(f: Fields, group_by: str, value_kinds: Collection[str]) -> CommandAction:
    action = f.choice("command", sorted(PARAMS))
    targets = f.table_of("targets", ("kind", "same"))
    kind = targets.choice("kind", sorted(KINDS))
    if action not in KINDS[kind].actions:
        accepting = sorted(k for k in KINDS if action in KINDS[k].actions)
        raise f.fail(f"{f.name('command')} {action!r} is not an action of {kind} "
                     f"(kinds that accept it: {', '.join(accepting)})")
    same = targets.choice("same", ("group", *ATTRIBUTES), default="group")
    attribute = group_by if same == "group" else same
    if same == "device" and group_by != "device":
        raise f.fail(f"{targets.name('same')} = \"device\" needs group_by = \"device\" "
                     f"(this rule's slots are {group_by} groups, not devices)")
    if attribute == "device" and ANY not in value_kinds and kind not in value_kinds:
        # The slot is one device of the value kinds; a target must be that very device.
        raise f.fail(f"{targets.name('kind')} {kind!r} never matches: the targets are the slot's own "
                     f"device, which is of kind {', '.join(sorted(value_kinds))}")
    keys, validate = PARAMS[action]
    params = f.table_of("params", keys)
    try:
        validate(params.table)
    except CommandError as exc:
        raise f.fail(f"{f.name('params')}: {exc}") from None
    return CommandAction(action, dict(params.table), TargetSpec(kind, same))


def _alarm(f: Fields) -> AlarmAction:
    text = f.text("alarm")
    if len(text) > MAX_ALARM_TEXT or _CONTROL.search(text):
        raise f.fail(f"{f.name('alarm')} must be one line of at most {MAX_ALARM_TEXT} characters: {show(text)}")
    severity = Severity(f.choice("severity", [s.value for s in Severity]))
    return AlarmAction(text, severity)


def check_url(url: str) -> str | None:
    """What is wrong with a webhook URL, or None if it is a usable http(s) URL without credentials."""
    if _CONTROL.search(url) or " " in url:
        return "must not contain spaces or control characters"
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if parts.scheme not in ("http", "https"):
        return "must be an http:// or https:// URL"
    if parts.username is not None or parts.password is not None:
        # Rule files are shared and versioned; secrets belong in the service's environment.
        return "must not contain credentials (user:password@): secrets do not belong in rule files"
    if not parts.hostname:
        return "must name a host"
    return None


def _webhook(f: Fields) -> WebhookAction:
    url = f.text("webhook")
    problem = check_url(url)
    if problem:
        raise f.fail(f"{f.name('webhook')} {problem}: {show(url)}")
    return WebhookAction(url)


def parse_actions(rule: Fields, key: str, group_by: str, value_kinds: Collection[str]) -> tuple[Action, ...]:
    """The actions of on_activate or on_clear (key); value_kinds are the kinds the rule's values read."""
    out: list[Action] = []
    for index, entry in enumerate(rule.array(key)):
        path = f"{key}[{index}]"
        if not isinstance(entry, dict):
            raise rule.fail(f"{path} must be a table such as {{ command = ... }}: {show(entry)}")
        types = [t for t in ACTION_TYPES if t in entry]
        if len(types) != 1:
            found = f"has {' and '.join(types)}; an action does one thing" if types else "names no action"
            raise rule.fail(f"{path} {found}: give one of {', '.join(ACTION_TYPES)}")
        f = Fields(entry, rule.where, path, _KNOWN[types[0]])
        if types[0] == "command":
            out.append(_command(f, group_by, value_kinds))
        elif types[0] == "alarm":
            if key != "on_activate":
                raise rule.fail(f"{path}: an alarm is raised only in on_activate (the rule's clear clears it)")
            out.append(_alarm(f))
        else:
            out.append(_webhook(f))
    return tuple(out)
