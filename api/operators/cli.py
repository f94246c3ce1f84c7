"""`smartcity operator add|passwd|token|list|remove`: the operators file (names, roles, argon2id hashes).

    smartcity operator add NAME --role viewer|operator|admin    asks for the password (or --password-stdin)
    smartcity operator passwd NAME                                a new password
    smartcity operator token NAME [--revoke ID]                   prints a new token once (or revokes one)
    smartcity operator list                                       names, roles, whether a password is set, tokens
    smartcity operator remove NAME

The file is SMARTCITY_API_OPERATORS (or --file); it is written 0600, atomically, and the running API
picks changes up within a second. Each change is also written to the API's audit log (who: the
local user) when its state directory exists (SMARTCITY_API_STATE_DIR, or --state-dir).
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from dataclasses import replace
from pathlib import Path

from api.operators.audit import AuditError, AuditLog
from api.operators.roles import Role
from api.operators.users import (
    MIN_PASSWORD_LENGTH,
    Operator,
    UsersFileError,
    check_name,
    hash_secret,
    load_operators,
    new_token,
    read_or_empty,
    save_operators,
)
from core.errors import ConfigError


def default_state_dir() -> str:
    """The API's state directory as api.settings derives it from the environment."""
    env = os.environ
    return env.get("SMARTCITY_API_STATE_DIR", str(Path(env.get("SMARTCITY_STATE_DIR", ".state")) / "api"))


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--file", default=os.environ.get("SMARTCITY_API_OPERATORS"),
                   help="the operators file (default: $SMARTCITY_API_OPERATORS)")
    p.add_argument("--state-dir", default=default_state_dir(),
                   help="the API's state directory, whose audit log records the change")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the operator subcommand."""
    sub = parser.add_subparsers(dest="operator_command", required=True, metavar="ACTION")
    add = sub.add_parser("add", help="add an operator (asks for the password)")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=[r.value for r in Role])
    add.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    passwd = sub.add_parser("passwd", help="set a new password")
    passwd.add_argument("name")
    passwd.add_argument("--password-stdin", action="store_true")
    token = sub.add_parser("token", help="make a token (printed once) or revoke one")
    token.add_argument("name")
    token.add_argument("--revoke", metavar="ID", help="revoke the token with this id (the part before the dot)")
    sub.add_parser("list", help="list the operators")
    remove = sub.add_parser("remove", help="remove an operator (and its tokens)")
    remove.add_argument("name")
    for p in (add, passwd, token, remove, sub.choices["list"]):
        _common(p)


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            raise UsersFileError("the passwords differ")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UsersFileError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if not password.isascii() or not password.isprintable():
        # HTTP Basic credentials are decoded as ASCII by the API: other characters could never log in.
        raise UsersFileError("a password must be printable ASCII")
    return password


def _audit(args: argparse.Namespace, action: str, target: str, detail: str = "") -> None:
    state = Path(args.state_dir)
    if not state.is_dir():
        return
    try:
        log = AuditLog(state / "audit.sqlite")
        log.append(f"local:{getpass.getuser()}", action, target, "ok", address="local", detail=detail)
        log.close()
    except AuditError as exc:
        print(f"smartcity operator: warning: not recorded in the audit log: {exc}", file=sys.stderr)


def _run(args: argparse.Namespace, path: Path) -> int:
    cmd = args.operator_command
    if cmd == "list":
        ops = read_or_empty(path)
        print(f"{'name':24} {'role':9} {'password':9} tokens")
        for op in sorted(ops.values(), key=lambda o: o.name):
            print(f"{op.name:24} {op.role.value:9} {'set' if op.password_hash else '-':9} "
                  f"{' '.join(sorted(op.tokens)) or '-'}")
        return 0
    name = check_name(args.name)
    if cmd == "add":
        ops = read_or_empty(path)
        if name in ops:
            raise UsersFileError(f"operator {name} exists already (use passwd, or remove it first)")
        ops[name] = Operator(name, Role(args.role), hash_secret(_password(args)))
        save_operators(path, ops)
        _audit(args, "operator.add", name, f"role {args.role}")
        print(f"operator {name} added ({args.role})")
        return 0
    ops = load_operators(path)
    if name not in ops:
        raise UsersFileError(f"no operator {name}")
    if cmd == "passwd":
        ops[name] = replace(ops[name], password_hash=hash_secret(_password(args)))
        save_operators(path, ops)
        _audit(args, "operator.passwd", name)
        print(f"password of {name} changed")
    elif cmd == "token" and args.revoke:
        tokens = dict(ops[name].tokens)
        if tokens.pop(args.revoke, None) is None:
            raise UsersFileError(f"{name} has no token {args.revoke[:20]}")
        ops[name] = replace(ops[name], tokens=tokens)
        save_operators(path, ops)
        _audit(args, "operator.token_revoke", name, args.revoke)
        print(f"token {args.revoke} of {name} revoked")
    elif cmd == "token":
        token = new_token(path, name)
        _audit(args, "operator.token", name, token.split(".")[0])
        print(token)  # shown this once; only its hash is stored
    else:  # remove
        del ops[name]
        save_operators(path, ops)
        _audit(args, "operator.remove", name)
        print(f"operator {name} removed")
    return 0


def run(args: argparse.Namespace) -> int:
    """Run one action; returns the exit status (1: refused, with the reason on stderr)."""
    if not args.file:
        raise ConfigError("no operators file: set SMARTCITY_API_OPERATORS or pass --file")
    try:
        return _run(args, Path(args.file))
    except UsersFileError as exc:
        print(f"smartcity operator: {exc}", file=sys.stderr)
        return 1
