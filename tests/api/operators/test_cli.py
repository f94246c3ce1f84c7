"""`smartcity operator ...` and `smartcity audit list` (api/operators/cli.py, audit_cli.py)."""

from __future__ import annotations

import argparse
import io
import sqlite3
import stat

import pytest

from api.operators import audit_cli, cli, users
from api.operators.audit import AuditLog
from api.operators.auth import Authenticator
from api.operators.users import OperatorsFile, load_operators
from tests.api.operators.conftest import CHEAP


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch):
    monkeypatch.setattr(users, "hasher", CHEAP)


def run(module, argv, stdin="", monkeypatch=None):
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    args = parser.parse_args(argv)
    if monkeypatch is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return module.run(args)


def test_add_token_list_passwd_remove(tmp_path, monkeypatch, capsys):
    path = tmp_path / "ops.toml"
    state = tmp_path / "api-state"
    state.mkdir()
    common = ["--file", str(path), "--state-dir", str(state)]
    assert run(cli, ["add", "ada", "--role", "admin", "--password-stdin", *common], "a-long-password\n",
               monkeypatch) == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    auth = Authenticator(OperatorsFile(path))
    assert auth.check_password("ada", "a-long-password").role.value == "admin"
    capsys.readouterr()
    assert run(cli, ["token", "ada", *common]) == 0
    token = capsys.readouterr().out.strip()
    assert Authenticator(OperatorsFile(path)).check_token(token) is not None
    assert token.split(".")[1] not in path.read_text()
    assert run(cli, ["list", *common]) == 0
    listing = capsys.readouterr().out
    assert "ada" in listing and "admin" in listing and token.split(".")[0] in listing
    assert run(cli, ["token", "ada", "--revoke", token.split(".")[0], *common]) == 0
    assert load_operators(path)["ada"].tokens == {}
    assert run(cli, ["passwd", "ada", "--password-stdin", *common], "another-password\n", monkeypatch) == 0
    assert Authenticator(OperatorsFile(path)).check_password("ada", "a-long-password") is None
    assert run(cli, ["remove", "ada", *common]) == 0
    assert load_operators(path) == {}
    capsys.readouterr()
    assert run(audit_cli, ["list", "--state-dir", str(state), "--verify"]) == 0
    out = capsys.readouterr().out
    assert "hash chain intact: 5 entries" in out
    for action in ("operator.add", "operator.token", "operator.token_revoke", "operator.passwd", "operator.remove"):
        assert action in out


@pytest.mark.parametrize(("argv", "stdin", "message"), [
    (["add", "bob", "--role", "viewer", "--password-stdin"], "short\n", "at least 12"),
    (["add", "bob", "--role", "viewer", "--password-stdin"], "wachtwoord-één-twee\n", "ASCII"),
    (["add", "bad name", "--role", "viewer", "--password-stdin"], "long-enough-pw\n", "operator name"),
    (["remove", "nobody"], "", "no operator"),
])
def test_refusals_name_the_problem(tmp_path, monkeypatch, capsys, argv, stdin, message):  # noqa: PLR0917
    path = tmp_path / "ops.toml"
    users.write_users_file(path, [("ada", users.Role.ADMIN, "a-long-password")])
    assert run(cli, [*argv, "--file", str(path), "--state-dir", str(tmp_path / "none")], stdin, monkeypatch) == 1
    assert message in capsys.readouterr().err


def test_audit_list_reports_a_broken_chain(tmp_path, capsys):
    log = AuditLog(tmp_path / "audit.sqlite")
    for i in range(3):
        log.append("x", "a", str(i), "ok", address="-")
    log.close()
    db = sqlite3.connect(tmp_path / "audit.sqlite")
    db.execute("DROP TRIGGER audit_no_delete")
    db.execute("DELETE FROM audit WHERE seq = 2")
    db.commit()
    db.close()
    assert run(audit_cli, ["list", "--state-dir", str(tmp_path), "--verify"]) == 1
    assert "BROKEN at seq 3" in capsys.readouterr().out
