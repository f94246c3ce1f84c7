"""Authentication: Basic and Bearer, roles, the credential cache, throttling, the operators file."""

from __future__ import annotations

import os
import stat
import time

import httpx
import pytest
from argon2 import PasswordHasher

from api.operators import auth, users
from api.operators.auth import Role
from api.operators.throttle import LoginThrottle, Throttle
from api.operators.users import (
    Operator,
    UsersFileError,
    load_operators,
    new_token,
    save_operators,
    write_users_file,
)
from tests.api.operators.conftest import PASSWORDS
from tests.conftest import wait_for

pytestmark = pytest.mark.integration


def audit_rows(served, **where):
    return [e for e in served.app.state.audit.entries(1000)
            if all(getattr(e, k) == v for k, v in where.items())]


def test_users_file_is_private_toml_of_argon2id_hashes(users_file):
    text = users_file.read_text()
    assert stat.S_IMODE(users_file.stat().st_mode) == 0o600
    assert "$argon2id$" in text
    assert not any(pw in text for pw in PASSWORDS.values())
    assert {n: o.role for n, o in load_operators(users_file).items()} == {
        "vera": Role.VIEWER, "otto": Role.OPERATOR, "ada": Role.ADMIN}


def test_users_file_readable_by_others_is_refused(users_file):
    os.chmod(users_file, 0o644)
    with pytest.raises(UsersFileError, match="must be private"):
        load_operators(users_file)


def test_plain_password_in_the_file_is_refused(tmp_path):
    path = tmp_path / "ops.toml"
    path.write_text('[operators.bob]\nrole = "admin"\npassword = "hunter2hunter2"\n')
    os.chmod(path, 0o600)
    with pytest.raises(UsersFileError, match="argon2id hash"):
        load_operators(path)


def test_anonymous_gets_401_with_challenge(served):
    with served.client() as c:
        resp = c.get("/v1/operator/me")
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"].startswith("Basic realm=")
    assert "Bearer" in resp.headers["www-authenticate"]


def test_basic_login_gives_the_operator_and_role(served):
    with served.client("otto") as c:
        assert c.get("/v1/operator/me").json() == {"name": "otto", "role": "operator"}


def test_wrong_password_is_401_and_audited(served):
    with httpx.Client(base_url=served.url, auth=("otto", "wrong"), timeout=10) as c:
        resp = c.get("/v1/operator/me")
    assert resp.status_code == 401
    rows = audit_rows(served, action="login")
    assert [(r.who, r.result, r.target, r.address) for r in rows] == [
        ("otto", "denied", "GET /v1/operator/me", "127.0.0.1")]


def test_unknown_name_is_401_like_a_wrong_password(served):
    with httpx.Client(base_url=served.url, auth=("nobody", "x" * 16), timeout=10) as c:
        resp = c.get("/v1/operator/me")
    assert resp.status_code == 401
    assert audit_rows(served, action="login", who="nobody")[0].result == "denied"


def test_under_privileged_is_403_and_audited(served):
    with served.client("vera") as c:
        resp = c.get("/v1/operator/audit")
    assert resp.status_code == 403
    assert "admin" in resp.json()["detail"]
    rows = audit_rows(served, action="authorize")
    assert [(r.who, r.result) for r in rows] == [("vera", "forbidden")]


def test_bearer_token_made_by_new_token_works_and_is_stored_hashed(served, users_file):
    token = new_token(users_file, "ada")
    assert token.split(".")[1] not in users_file.read_text()
    time.sleep(1.1)  # the operators file is checked for changes once a second
    with httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {token}"}, timeout=10) as c:
        assert c.get("/v1/operator/me").json() == {"name": "ada", "role": "admin"}
    bad = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    with httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {bad}"}, timeout=10) as c:
        assert c.get("/v1/operator/me").status_code == 401
    assert audit_rows(served, action="login")[0].who == f"token:{token.split('.')[0]}"


def test_verified_credentials_are_cached_so_requests_skip_argon2(served, monkeypatch):
    checks = []
    real = auth._verify

    def counting(stored, secret):
        checks.append(secret)
        return real(stored, secret)

    monkeypatch.setattr(auth, "_verify", counting)  # the server runs in this process (a uvicorn thread)
    with served.client("otto") as c:
        for _ in range(20):
            assert c.get("/v1/operator/me").status_code == 200
    assert len(checks) == 1
    with httpx.Client(base_url=served.url, auth=("otto", "wrong"), timeout=10) as c:
        for _ in range(3):
            assert c.get("/v1/operator/me").status_code == 401
    assert len(checks) == 4  # failures are never cached


def test_production_hash_cost_is_argon2id_with_the_library_defaults(tmp_path, monkeypatch):
    monkeypatch.setattr(users, "hasher", PasswordHasher())
    path = tmp_path / "ops.toml"
    write_users_file(path, [("ada", Role.ADMIN, "a-long-password")])
    stored = load_operators(path)["ada"].password_hash
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")


def test_removed_operator_is_refused_after_the_file_reloads(served, users_file):
    with served.client("otto") as c:
        assert c.get("/v1/operator/me").status_code == 200  # now cached
        ops = load_operators(users_file)
        del ops["otto"]
        save_operators(users_file, ops)
        wait_for(lambda: c.get("/v1/operator/me").status_code == 401, 5)


def test_role_change_takes_effect_on_reload(served, users_file):
    with served.client("vera") as c:
        assert c.get("/v1/operator/audit").status_code == 403
        ops = load_operators(users_file)
        ops["vera"] = Operator("vera", Role.ADMIN, ops["vera"].password_hash)
        save_operators(users_file, ops)
        wait_for(lambda: c.get("/v1/operator/audit").status_code == 200, 5)


def test_failed_logins_are_throttled_per_name_with_429_and_retry_after(served):
    with httpx.Client(base_url=served.url, auth=("otto", "guess"), timeout=10) as c:
        codes = [c.get("/v1/operator/me").status_code for _ in range(7)]
        assert codes[:5] == [401] * 5
        assert 429 in codes[5:]
        throttled = c.get("/v1/operator/me")
    assert throttled.status_code == 429
    assert int(throttled.headers["retry-after"]) >= 1
    # while throttled even the right password is not checked
    with served.client("otto") as c:
        assert c.get("/v1/operator/me").status_code == 429
    throttled_rows = audit_rows(served, action="login", result="throttled")
    assert len(throttled_rows) == 1  # a flood of refused attempts is one row per name and address and 10 s
    # another name from the same address still gets through (per-address budget is larger)
    with served.client("vera") as c:
        assert c.get("/v1/operator/me").status_code == 200


def test_failed_logins_are_throttled_per_address_across_names(served):
    with httpx.Client(base_url=served.url, timeout=10) as c:
        codes = [c.get("/v1/operator/me", auth=(f"user{i}", "guess")).status_code for i in range(22)]
    assert codes[:20] == [401] * 20
    assert codes[-1] == 429


def test_throttle_delays_grow_and_are_forgotten():
    now = [0.0]
    t = Throttle(free=2, base_delay=1, max_delay=8, forget_after=100, clock=lambda: now[0])
    assert [t.failure("k") for _ in range(7)] == [0, 0, 1, 2, 4, 8, 8]
    assert t.wait("k") == 8
    now[0] = 5
    assert t.wait("k") == 3
    now[0] = 200
    assert t.wait("k") == 0
    assert t.failure("k") == 0  # forgotten: the free attempts are back
    t.success("k")
    assert t.wait("k") == 0


def test_refused_attempts_are_audited_in_summary():
    now = [0.0]
    t = LoginThrottle(audit_interval=10, clock=lambda: now[0])
    assert t.audit_refusal("otto", "1.2.3.4") == 0
    assert [t.audit_refusal("otto", "1.2.3.4") for _ in range(3)] == [None] * 3
    assert t.audit_refusal("ada", "1.2.3.4") == 0  # another name: its own row
    now[0] = 11
    assert t.audit_refusal("otto", "1.2.3.4") == 3  # the row says how many were not written


def test_throttle_table_is_bounded():
    t = Throttle(free=0, max_keys=3)
    for i in range(10):
        t.failure(f"k{i}")
    assert t.wait("k0") == 0 and t.wait("k9") > 0


def test_write_users_file_refuses_bad_names(tmp_path):
    with pytest.raises(UsersFileError, match="operator name"):
        write_users_file(tmp_path / "o.toml", [("bad name", Role.ADMIN, "x" * 12)])


def test_audit_db_is_private(served):
    assert stat.S_IMODE(served.app.state.audit.path.stat().st_mode) == 0o600
