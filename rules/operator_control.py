"""What operators tell the rules service: holds on manual commands, disabled rules, reload requests.

Three small files in the rules service's control directory, the directory of its alarm database
(``STATE_DIR/rules`` by default), which the operator API writes and every rules worker reads:

- ``holds.json``: ``{"holds": [{"device", "action", "until", "by", "command"}]}``. While a hold on
  (device, action) has not ended (``until``, epoch seconds), the rules send no command for that
  action to that device: an operator's manual command overrides the rules for a set time.
  Workers read the file when it changes (one ``stat`` per dispatch that has commands), so a hold
  written before the manual command is published is in force before the command arrives.
- ``rule-overrides.json``: ``{"disabled": {"<rule>": {"by", "at"}}}``. A disabled rule is left out
  of the rule set when it is loaded, as if it were not in the file; it survives restarts.
- ``reload-request``: its content changing (the API writes a new counter) is a reload request
  (as SIGHUP), and so is any change of ``rule-overrides.json``.

Writers take an exclusive lock (``.control.lock``) around read-modify-write and replace files
atomically, so concurrent API requests lose no update and readers never see half a file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from core.private_file import write_private
from rules.rule_model import RuleSet

log = logging.getLogger(__name__)

HOLDS_FILE = "holds.json"
OVERRIDES_FILE = "rule-overrides.json"
RELOAD_FILE = "reload-request"
_LOCK_FILE = ".control.lock"


@dataclass(frozen=True, slots=True)
class Hold:
    """The rules send no `action` command to `device` until `until` (epoch seconds)."""

    device: str
    action: str
    until: float
    by: str = ""
    command: str = ""  # the id of the manual command that set it


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.error("operator control file %s unreadable, ignored: %s", path, exc)
        return {}
    return data if isinstance(data, dict) else {}


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    write_private(path, json.dumps(data, indent=1, sort_keys=True))


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / _LOCK_FILE, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _holds(data: Mapping[str, Any]) -> dict[tuple[str, str], Hold]:
    out: dict[tuple[str, str], Hold] = {}
    for item in data.get("holds", []):
        try:
            hold = Hold(str(item["device"]), str(item["action"]), float(item["until"]), str(item.get("by", "")),
                        str(item.get("command", "")))
        except (KeyError, TypeError, ValueError):
            log.error("operator hold %s ignored: needs device, action and until", str(item)[:100])
            continue
        key = (hold.device, hold.action)
        if key not in out or out[key].until < hold.until:
            out[key] = hold
    return out


def read_holds(directory: Path, now: float | None = None) -> dict[tuple[str, str], Hold]:
    """The holds in force at now (default: the current time), by (device, action)."""
    at = time.time() if now is None else now
    return {k: h for k, h in _holds(_read_json(directory / HOLDS_FILE)).items() if h.until > at}


def _save_holds(directory: Path, holds: Mapping[tuple[str, str], Hold]) -> None:
    items = [{"device": h.device, "action": h.action, "until": h.until, "by": h.by, "command": h.command}
             for _, h in sorted(holds.items())]
    _write_json(directory / HOLDS_FILE, {"holds": items})


def add_holds(directory: Path, holds: list[Hold], now: float | None = None) -> None:
    """Put holds in force (a new hold on the same device and action replaces the old); drops ended ones."""
    with _locked(directory):
        current = read_holds(directory, now)
        for hold in holds:
            current[hold.device, hold.action] = hold
        _save_holds(directory, current)


def release_hold(directory: Path, device: str, action: str) -> Hold | None:
    """End a hold now; returns it, or None if there was none in force."""
    with _locked(directory):
        current = read_holds(directory)
        gone = current.pop((device, action), None)
        if gone is not None:
            _save_holds(directory, current)
        return gone


def read_disabled(directory: Path) -> dict[str, dict[str, Any]]:
    """Disabled rules: name -> {"by", "at"}."""
    disabled = _read_json(directory / OVERRIDES_FILE).get("disabled", {})
    return {str(k): (v if isinstance(v, dict) else {}) for k, v in disabled.items()} if isinstance(
        disabled, dict) else {}


def set_enabled(directory: Path, rule: str, enabled: bool, by: str) -> bool:
    """Enable or disable a rule persistently; returns False if it already was so."""
    with _locked(directory):
        disabled = read_disabled(directory)
        if enabled == (rule not in disabled):
            return False
        if enabled:
            del disabled[rule]
        else:
            disabled[rule] = {"by": by, "at": time.time()}
        _write_json(directory / OVERRIDES_FILE, {"disabled": disabled})
        return True


def request_reload(directory: Path) -> None:
    """Ask every rules worker reading this directory to reload the rule file and registry now."""
    with _locked(directory):
        _write_json(directory / RELOAD_FILE, {"requested_at": time.time(), "nonce": secrets.token_hex(8)})


def without_disabled(ruleset: RuleSet, disabled: Mapping[str, object]) -> RuleSet:
    """The rule set without the disabled rules."""
    if not disabled:
        return ruleset
    return replace(ruleset, rules=tuple(r for r in ruleset.rules if r.name not in disabled))


def _stamp(path: Path) -> tuple[int, int, int]:
    try:
        st = path.stat()
    except OSError:
        return (0, 0, 0)
    return (st.st_mtime_ns, st.st_size, st.st_ino)  # a replace gives a new inode even within one mtime tick


class OperatorControl:
    """A rules worker's view of the control directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._holds_stamp: tuple[int, int, int] | None = None
        self._holds: dict[tuple[str, str], Hold] = {}

    def holds(self) -> Mapping[tuple[str, str], Hold]:
        """The holds of the file (re-read when it changed; ended ones included, compare until yourself)."""
        path = self.directory / HOLDS_FILE
        stamp = _stamp(path)
        with self._lock:
            if stamp != self._holds_stamp:
                self._holds = _holds(_read_json(path))
                self._holds_stamp = stamp
            return self._holds

    def disabled(self) -> dict[str, dict[str, Any]]:
        """The disabled rules."""
        return read_disabled(self.directory)

    def reload_key(self) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
        """Changes when the overrides change or a reload is requested."""
        return (_stamp(self.directory / OVERRIDES_FILE), _stamp(self.directory / RELOAD_FILE))
