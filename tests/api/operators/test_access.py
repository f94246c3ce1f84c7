"""Every operator route: anonymous callers get 401, under-privileged ones 403, and each call is audited."""

from __future__ import annotations

import pytest
from fastapi.routing import APIRoute

from api.operators import setup
from tests.api.operators.conftest import ROLES

pytestmark = pytest.mark.integration

# (method, path, JSON body, the role it needs, the audit action the allowed call leaves)
ROUTES = [
    ("GET", "/v1/operator/me", None, "viewer", "me"),
    ("GET", "/v1/operator/holds", None, "viewer", "holds.list"),
    ("GET", "/v1/operator/commands", None, "viewer", "commands.history"),
    ("GET", "/v1/operator/dead-letters", None, "viewer", "dead_letters.list"),
    ("GET", "/v1/operator/rules", None, "viewer", "rules.list"),
    ("GET", "/v1/operator/alarms", None, "viewer", "alarms.list"),
    ("POST", "/v1/operator/commands", {"device": "vs-sl-101", "action": "dim", "params": {"level": 50}, "hold": 60},
     "operator", "command.send"),
    ("DELETE", "/v1/operator/holds/vs-sl-101/dim", None, "operator", "hold.release"),
    ("POST", "/v1/operator/rules/presence-lighting/disable", None, "operator", "rule.disable"),
    ("POST", "/v1/operator/rules/presence-lighting/enable", None, "operator", "rule.enable"),
    ("POST", "/v1/operator/rules/reload", None, "operator", "rules.reload"),
    ("POST", "/v1/operator/alarms/1/ack", None, "operator", "alarm.ack"),
    ("GET", "/v1/operator/audit", None, "admin", "audit.read"),
    ("GET", "/v1/operator/gateways", None, "admin", "gateways.list"),
    ("POST", "/v1/operator/gateways", {"gateway": "gw-vs-01"}, "admin", "gateway.provision"),
    ("DELETE", "/v1/operator/gateways/gw-nope", None, "admin", "gateway.revoke"),
]
USER_OF = {role.value: name for name, role in ROLES.items()}
BELOW = {"viewer": None, "operator": "viewer", "admin": "operator"}
IDS = [f"{m} {p}" for m, p, *_ in ROUTES]


def operator_routes():
    """Every route of the operators' part."""
    out = []
    for router in setup.routers():
        for route in router.routes:
            assert isinstance(route, APIRoute)
            out.append(route)
    return out


def test_the_table_covers_every_operator_route():
    routes = operator_routes()
    every = {(m, r.path) for r in routes for m in r.methods}
    # the route each table row reaches (the first whose path and method match, as Starlette routes)
    covered = {next((method, r.path) for r in routes if method in r.methods and r.path_regex.match(path))
               for method, path, *_ in ROUTES}
    assert covered == every


@pytest.mark.parametrize(("method", "path", "body", "role", "action"), ROUTES, ids=IDS)
def test_route_refuses_anonymous_and_under_privileged_and_audits_the_allowed(  # noqa: PLR0917 (parameters)
        served, method, path, body, role, action):
    with served.client() as anon:
        resp = anon.request(method, path, json=body)
    assert resp.status_code == 401, resp.text
    assert "Basic" in resp.headers["www-authenticate"]
    below = BELOW[role]
    if below is not None:
        with served.client(USER_OF[below]) as c:
            resp = c.request(method, path, json=body)
        assert resp.status_code == 403, resp.text
        forbidden = served.app.state.audit.entries(10, who=USER_OF[below], action="authorize")
        assert forbidden and forbidden[0].result == "forbidden" and forbidden[0].target == f"{method} {path}"
    allowed = USER_OF[role]
    with served.client(allowed) as c:
        resp = c.request(method, path, json=body)
    assert resp.status_code not in (401, 403, 500), resp.text
    rows = served.app.state.audit.entries(10, who=allowed, action=action)
    assert len(rows) == 1, [(r.action, r.result) for r in served.app.state.audit.entries(20)]
    assert rows[0].address == "127.0.0.1" and rows[0].result
    # a higher role may do it too
    if role != "admin":
        with served.client("ada") as c:
            assert c.request(method, path, json=body).status_code not in (401, 403, 500)
