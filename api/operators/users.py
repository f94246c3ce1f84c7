"""The operators file: names, roles and argon2id hashes of passwords and tokens (never in git).

A TOML file people may read and edit, written 0600 and refused when group or others may read it
(as ssh refuses a private key others can read: the hashes are offline-guessable)::

    [operators.alice]
    role = "admin"
    password = "$argon2id$v=19$m=65536,t=3,p=4$..."

    [operators.alice.tokens]
    3f9c0a1b2c3d4e5f = "$argon2id$v=19$..."

A token is ``<id>.<secret>``: the id (16 hex digits) says which hash to check, so one request
costs one argon2 verification, not one per stored token. The secret is shown once, when made
(`smartcity operator token NAME`); only its hash is kept. The API reloads the file when it
changes (OperatorsFile), so adding or removing an operator needs no restart.
"""

from __future__ import annotations

import logging
import re
import secrets
import stat
import threading
import time
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from argon2 import PasswordHasher

from api.operators.roles import Role
from core.errors import ConfigError
from core.private_file import write_private
from core.toml_text import toml_key, toml_string

log = logging.getLogger(__name__)

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}", re.ASCII)
TOKEN_ID = re.compile(r"[0-9a-f]{16}", re.ASCII)
MIN_PASSWORD_LENGTH = 12

# argon2-cffi's defaults are argon2id with RFC 9106's "low memory" profile (t=3, 64 MiB, p=4).
hasher = PasswordHasher()


class UsersFileError(ConfigError):
    """An operators file that cannot be used; the message names the problem (never a hash)."""


@dataclass(frozen=True, slots=True)
class Operator:
    """One operator: a role, an optional password hash and token hashes by token id."""

    name: str
    role: Role
    password_hash: str | None = None
    tokens: Mapping[str, str] = field(default_factory=dict)


def check_name(name: str) -> str:
    """The name if it is a valid operator name, else UsersFileError."""
    if not NAME.fullmatch(name):
        raise UsersFileError(f"operator name must be 1-64 letters, digits or _.@- (starting with a letter or "
                             f"digit): {name[:64]!r}")
    return name


def hash_secret(secret: str) -> str:
    """The argon2id hash of a password or token secret."""
    return hasher.hash(secret)


def _role(value: object, name: str) -> Role:
    try:
        return Role(str(value))
    except ValueError:
        raise UsersFileError(f"operator {name}: role must be one of {', '.join(Role)}: {str(value)[:20]!r}") from None


def _operator(name: str, entry: object) -> Operator:
    check_name(name)
    if not isinstance(entry, dict):
        raise UsersFileError(f"operator {name}: must be a table")
    unknown = set(entry) - {"role", "password", "tokens"}
    if unknown:
        raise UsersFileError(f"operator {name}: unknown keys {sorted(unknown)}")
    password = entry.get("password")
    if password is not None and not (isinstance(password, str) and password.startswith("$argon2id$")):
        raise UsersFileError(f"operator {name}: password must be an argon2id hash (never a plain password)")
    tokens = entry.get("tokens", {})
    if not isinstance(tokens, dict):
        raise UsersFileError(f"operator {name}: tokens must be a table of token id = argon2id hash")
    for token_id, token_hash in tokens.items():
        if not TOKEN_ID.fullmatch(token_id) or not (isinstance(token_hash, str)
                                                     and token_hash.startswith("$argon2id$")):
            raise UsersFileError(f"operator {name}: token {token_id[:20]!r} must be 16 hex digits = an argon2id hash")
    return Operator(name, _role(entry.get("role"), name), password, dict(tokens))


def load_operators(path: Path) -> dict[str, Operator]:
    """The operators of a file; UsersFileError if it is unreadable, malformed or readable by others."""
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise UsersFileError(f"operators file {path} must be private (mode 0600), is {stat.S_IMODE(mode):04o}")
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsersFileError(f"operators file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsersFileError(f"operators file {path}: not TOML: {exc}") from None
    section = data.get("operators", {})
    if not isinstance(section, dict) or set(data) - {"operators"}:
        raise UsersFileError(f"operators file {path}: expected only [operators.NAME] tables")
    return {name: _operator(name, entry) for name, entry in section.items()}


def _render(operators: Mapping[str, Operator]) -> str:
    lines = ["# smartcity operators: argon2id hashes only. Keep this file 0600 and out of git.",
             "# Managed with `smartcity operator add|passwd|token|list|remove`.", ""]
    for op in sorted(operators.values(), key=lambda o: o.name):
        lines.append(f"[operators.{toml_key(op.name)}]")
        lines.append(f"role = {toml_string(op.role.value)}")
        if op.password_hash:
            lines.append(f"password = {toml_string(op.password_hash)}")
        if op.tokens:
            lines.append(f"[operators.{toml_key(op.name)}.tokens]")
            lines.extend(f"{tid} = {toml_string(h)}" for tid, h in sorted(op.tokens.items()))
        lines.append("")
    return "\n".join(lines)


def save_operators(path: Path, operators: Mapping[str, Operator]) -> None:
    """Write the file atomically (a reader sees the old or the new file, never half), mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, _render(operators))  # the hashes are never readable by others, not even for an instant


def write_users_file(path: Path, users: Sequence[tuple[str, Role, str]]) -> None:
    """Write a file of operators (name, role, password), passwords hashed with argon2id; mode 0600."""
    operators = {}
    for name, role, password in users:
        operators[check_name(name)] = Operator(name, Role(role), hash_secret(password))
    save_operators(path, operators)


def read_or_empty(path: Path) -> dict[str, Operator]:
    """The operators of the file, or none if it does not exist yet (for the CLI's first `add`)."""
    return load_operators(path) if path.exists() else {}


def new_token(path: Path, name: str) -> str:
    """Make a token for an operator, store its hash and return ``<id>.<secret>`` (shown once)."""
    operators = load_operators(path)
    if name not in operators:
        raise UsersFileError(f"no operator {name[:64]!r}")
    token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    op = operators[name]
    operators[name] = replace(op, tokens={**op.tokens, token_id: hash_secret(secret)})
    save_operators(path, operators)
    return f"{token_id}.{secret}"


def split_token(token: str) -> tuple[str, str] | None:
    """(token id, secret) of a well-formed token, else None."""
    token_id, dot, secret = token.partition(".")
    if not dot or not TOKEN_ID.fullmatch(token_id) or not 16 <= len(secret) <= 128:
        return None
    return token_id, secret


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """What tells a changed file: mtime, size and inode (save_operators replaces the file: a new inode,
    even within one tick of a coarse file system clock); None if it is gone."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class OperatorsFile:
    """The operators file as the API sees it: reloaded when it changes; a bad edit keeps the old content.

    ``generation`` increments on every successful reload, so that caches of verified credentials
    (auth.CredentialCache) drop what they hold when an operator or token is removed.
    """

    def __init__(self, path: Path | None, check_interval: float = 1.0) -> None:
        self.path = path
        self._check_interval = check_interval
        self._lock = threading.Lock()
        self._operators: dict[str, Operator] = {}
        self._stamp: tuple[int, int, int] | None = None
        self._next_check = 0.0
        self.generation = 0
        self.reload_failures = 0
        if path is None:
            log.warning("no operators file configured (SMARTCITY_API_OPERATORS): every operator request answers 401")
        else:
            self._stamp = _stamp(path)
            self._operators = load_operators(path)  # at start a bad file fails loudly

    def get(self) -> dict[str, Operator]:
        """The current operators, reloaded first if the file changed since the last check."""
        if self.path is not None:
            now = time.monotonic()
            if now >= self._next_check:
                self._next_check = now + self._check_interval
                stamp = _stamp(self.path)
                if stamp != self._stamp:
                    self._reload(stamp)
        return self._operators

    def _reload(self, stamp: tuple[int, int, int] | None) -> None:
        with self._lock:
            self._stamp = stamp
            if stamp is None or self.path is None:
                self._operators = {}
                self.generation += 1
                log.warning("operators file removed: nobody can log in until it is back")
                return
            try:
                self._operators = load_operators(self.path)
            except UsersFileError as exc:
                self.reload_failures += 1
                log.error("operators file reload failed, keeping the previous operators: %s", exc)
                return
            self.generation += 1
            log.info("operators file reloaded: %d operators", len(self._operators))
