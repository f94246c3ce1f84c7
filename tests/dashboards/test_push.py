"""dashboards.push against a local HTTP server that behaves as Grafana's documented HTTP API.

The fake (http.server on 127.0.0.1, a thread) checks what the real API requires: the Bearer token,
JSON bodies with Content-Type application/json, the required keys of each endpoint, folderUid of an
existing folder, overwrite; it keeps state and answers with Grafana's response shapes (the stored
dashboard with id and version added, the datasource with secureJsonFields instead of secrets,
404 {"message"} for what does not exist). Every write is recorded, so idempotency is counted.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from dashboards import push
from dashboards.datasource import DATASOURCE_REF, DATASOURCE_UID, datasource_definition

TOKEN = "glsa_TestTokenThatMustNeverBePrinted_0123abcd"
CONTRACT_UIDS = {"smartcity-city-overview", "smartcity-lighting-energy", "smartcity-rain-cycling",
                 "smartcity-occupancy", "smartcity-alarms-commands", "smartcity-platform-health"}
DATASOURCE_KEYS = ("id", "uid", "orgId", "name", "type", "typeLogoUrl", "access", "url", "user", "database",
                   "basicAuth", "basicAuthUser", "withCredentials", "isDefault", "jsonData", "version", "readOnly")


class FakeGrafana:
    """State and rules of the fake: folders, datasources, dashboards, the writes made, faults to inject."""

    def __init__(self) -> None:
        self.folders: dict[str, dict[str, Any]] = {}
        self.datasources: dict[str, dict[str, Any]] = {}
        self.secrets: dict[str, dict[str, str]] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}  # uid -> {"dashboard", "folderUid", "provisioned"}
        self.writes: list[tuple[str, str, Any]] = []
        self.violations: list[str] = []
        self.faults: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
        self.delay: dict[tuple[str, str], float] = {}
        self.next_id = 1

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    # -- endpoints: (status, body) -----------------------------------------------------------------------
    def handle(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        if (method, path) in self.faults:
            return self.faults[method, path]
        parts = path.strip("/").split("/")
        if method != "GET":
            self.writes.append((method, path, body))
        match method, parts:
            case "GET", ["api", "folders", uid]:
                return (200, self.folders[uid]) if uid in self.folders else (404, {"message": "folder not found"})
            case "POST", ["api", "folders"]:
                return self.create_folder(body)
            case "PUT", ["api", "folders", uid]:
                return self.update_folder(uid, body)
            case "GET", ["api", "datasources", "uid", uid]:
                if uid not in self.datasources:
                    return 404, {"message": "Data source not found"}
                return 200, self.datasource_view(uid)
            case "POST", ["api", "datasources"]:
                return self.save_datasource(None, body)
            case "PUT", ["api", "datasources", "uid", uid]:
                return self.save_datasource(uid, body)
            case "GET", ["api", "dashboards", "uid", uid]:
                return self.get_dashboard(uid)
            case "POST", ["api", "dashboards", "db"]:
                return self.save_dashboard(body)
        self.violations.append(f"unknown endpoint {method} {path}")
        return 404, {"message": "Not found"}

    def bad(self, why: str) -> tuple[int, dict[str, str]]:
        self.violations.append(why)
        return 400, {"message": why}

    def create_folder(self, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("title"), str):
            return self.bad("POST /api/folders needs a title")
        uid = body.get("uid") or f"gen{self.new_id()}"
        if uid in self.folders:
            return 409, {"message": "a folder with the same uid already exists"}
        self.folders[uid] = {"id": self.new_id(), "uid": uid, "title": body["title"], "url": f"/dashboards/f/{uid}/",
                             "hasAcl": False, "canSave": True, "version": 1}
        return 200, self.folders[uid]

    def update_folder(self, uid: str, body: Any) -> tuple[int, Any]:
        if uid not in self.folders:
            return 404, {"message": "folder not found"}
        folder = self.folders[uid]
        if not body.get("overwrite") and body.get("version") != folder["version"]:
            return 412, {"message": "the folder has been changed by someone else", "status": "version-mismatch"}
        folder.update(title=body["title"], version=folder["version"] + 1)
        return 200, folder

    def datasource_view(self, uid: str) -> dict[str, Any]:
        view = copy.deepcopy(self.datasources[uid])
        view["secureJsonFields"] = {k: True for k, v in self.secrets.get(uid, {}).items() if v}
        return view

    def save_datasource(self, uid: str | None, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or not all(isinstance(body.get(k), str) for k in ("name", "type", "access")):
            return self.bad("a datasource needs name, type and access")
        if uid is None:
            uid = body.get("uid") or f"gen{self.new_id()}"
            taken = any(d["name"] == body["name"] for d in self.datasources.values())
            if uid in self.datasources or taken:
                return 409, {"message": "data source with the same name or uid already exists"}
            stored = {k: "" for k in ("typeLogoUrl", "user", "database", "basicAuthUser")}
            stored.update(id=self.new_id(), orgId=1, basicAuth=False, withCredentials=False, isDefault=False,
                          jsonData={}, version=0, readOnly=False)
            message = "Datasource added"
        elif uid not in self.datasources:
            return 404, {"message": "Data source not found"}
        else:
            stored, message = self.datasources[uid], "Datasource updated"
            if stored["readOnly"]:
                return 403, {"message": "Cannot update read-only data source"}
        for key in DATASOURCE_KEYS:
            if key in body and key not in ("id", "orgId", "version", "readOnly"):
                stored[key] = copy.deepcopy(body[key])
        stored.update(uid=uid, version=stored["version"] + 1)
        # Grafana keeps stored secrets the request does not name, and never returns one.
        self.secrets.setdefault(uid, {}).update(body.get("secureJsonData") or {})
        self.datasources[uid] = stored
        return 200, {"datasource": self.datasource_view(uid), "id": stored["id"], "message": message,
                     "name": stored["name"]}

    def get_dashboard(self, uid: str) -> tuple[int, Any]:
        if uid not in self.dashboards:
            return 404, {"message": "Dashboard not found"}
        entry = self.dashboards[uid]
        folder = self.folders.get(entry["folderUid"], {})
        return 200, {"dashboard": entry["dashboard"],
                     "meta": {"isStarred": False, "url": f"/d/{uid}/x", "folderId": folder.get("id"),
                              "folderUid": entry["folderUid"], "folderTitle": folder.get("title"),
                              "provisioned": entry["provisioned"], "version": entry["dashboard"]["version"]}}

    def save_dashboard(self, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("dashboard"), dict):
            return self.bad("POST /api/dashboards/db needs a dashboard object")
        dashboard, folder_uid = body["dashboard"], body.get("folderUid")
        uid = dashboard.get("uid")
        if not isinstance(uid, str) or not 0 < len(uid) <= 40 or not dashboard.get("title"):
            return self.bad("the dashboard needs a uid of 1-40 characters and a title")
        if folder_uid not in self.folders:
            return self.bad(f"folderUid {folder_uid!r} is not an existing folder")
        if not isinstance(body.get("message"), str):
            return self.bad("push should leave a version message")
        old = self.dashboards.get(uid)
        if old and not body.get("overwrite") and dashboard.get("version") != old["dashboard"]["version"]:
            return 412, {"message": "The dashboard has been changed by someone else", "status": "version-mismatch"}
        if old and old["provisioned"]:
            return 400, {"message": "Cannot save provisioned dashboard"}
        version = old["dashboard"]["version"] + 1 if old else 1
        dash_id = old["dashboard"]["id"] if old else self.new_id()
        self.dashboards[uid] = {"dashboard": {**copy.deepcopy(dashboard), "id": dash_id, "version": version},
                                "folderUid": folder_uid, "provisioned": False}
        return 200, {"id": dash_id, "uid": uid, "url": f"/d/{uid}/x", "status": "success", "version": version,
                     "slug": "x"}


def handler_for(state: FakeGrafana) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # keep test output clean
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if delay := state.delay.get((self.command, self.path)):
                time.sleep(delay)
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                status, body = 401, {"message": "invalid API key"}
            elif self.command != "GET" and not (self.headers.get("Content-Type") or "").startswith("application/json"):
                state.violations.append(f"{self.command} {self.path} without Content-Type application/json")
                status, body = 415, {"message": "unsupported media type"}
            elif self.command == "GET" and raw:
                state.violations.append(f"GET {self.path} with a body")
                status, body = 400, {"message": "GET with a body"}
            else:
                try:
                    payload = json.loads(raw) if raw else None
                except ValueError:
                    status, body = state.bad(f"{self.command} {self.path}: invalid JSON")
                else:
                    status, body = state.handle(self.command, self.path, payload)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _serve  # noqa: N815 (http.server calls them by these names)

    return Handler


@pytest.fixture
def grafana() -> Iterator[tuple[str, FakeGrafana]]:
    state = FakeGrafana()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(state))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", state
    server.shutdown()
    server.server_close()
    thread.join(5)


def small_dashboards() -> dict[str, dict[str, Any]]:
    """Two dashboards of the builder's shape (a target of raw InfluxQL on the fixed datasource)."""
    def one(uid: str, title: str) -> dict[str, Any]:
        target = {"refId": "A", "datasource": DATASOURCE_REF, "rawQuery": True, "resultFormat": "time_series",
                  "query": 'SELECT mean("power") FROM "street_light" WHERE $timeFilter GROUP BY time($__interval)'}
        return {"uid": uid, "title": title, "schemaVersion": 41, "tags": ["smartcity"],
                "panels": [{"id": 1, "type": "timeseries", "title": "Power", "description": "W per lamp",
                            "datasource": DATASOURCE_REF, "targets": [target],
                            "gridPos": {"h": 8, "w": 12, "x": 0, "y": 0}}]}
    return {"smartcity-test-a": one("smartcity-test-a", "A"), "smartcity-test-b": one("smartcity-test-b", "B")}


DATASOURCE = datasource_definition("http://127.0.0.1:8086", "grafana", "s3cret-influx", "smartcity")


def run(url: str, dashboards: dict[str, dict[str, Any]], token: str = TOKEN, **kw: Any) -> tuple[push.PushResult,
                                                                                                  list[str]]:
    lines: list[str] = []
    result = push.push_all(url, token, dashboards, datasource=kw.pop("datasource", DATASOURCE),
                           progress=lines.append, **kw)
    return result, lines


def test_first_push_creates_folder_datasource_and_every_dashboard(grafana: tuple[str, FakeGrafana]) -> None:
    url, state = grafana
    dashboards = small_dashboards()
    result, lines = run(url, dashboards)
    assert state.violations == []
    assert result.count("created") == 2 + len(dashboards) and result.writes == 2 + len(dashboards)
    assert state.folders["smartcity"]["title"] == "Smart city"
    ds = state.datasources[DATASOURCE_UID]
    assert (ds["type"], ds["access"], ds["url"], ds["user"]) == (
        "influxdb", "proxy", "http://127.0.0.1:8086", "grafana")
    assert ds["jsonData"] == {"version": "InfluxQL", "dbName": "smartcity", "httpMode": "POST"}
    assert state.secrets[DATASOURCE_UID] == {"password": "s3cret-influx"}  # sent as a secret, not in jsonData
    posts = [body for method, path, body in state.writes if path == "/api/dashboards/db"]
    assert sorted(b["dashboard"]["uid"] for b in posts) == sorted(dashboards)
    assert all(b["folderUid"] == "smartcity" and b["overwrite"] is True and b["dashboard"]["id"] is None
               for b in posts)
    for uid, dashboard in dashboards.items():
        stored = state.dashboards[uid]["dashboard"]
        assert push.comparable(stored) == dashboard and stored["version"] == 1
    assert any("dashboard 'smartcity-test-a': created (version 1)" in line for line in lines)
    assert lines[-1].endswith("4 created, 0 updated, 0 unchanged")


def test_second_push_changes_nothing(grafana: tuple[str, FakeGrafana]) -> None:
    url, state = grafana
    run(url, small_dashboards())
    state.writes.clear()
    result, _ = run(url, small_dashboards())
    assert state.writes == []
    assert result.writes == 0 and result.count("unchanged") == 4
    assert all(entry["dashboard"]["version"] == 1 for entry in state.dashboards.values())


def test_the_committed_dashboards_push_and_repush_without_changes(grafana: tuple[str, FakeGrafana]) -> None:
    url, state = grafana
    committed = push.load_dashboards()
    assert set(committed) == CONTRACT_UIDS  # H1's dashboards/json: every contract dashboard, uid = file name
    first, _ = run(url, committed)
    assert state.violations == [] and first.writes == 2 + len(CONTRACT_UIDS)
    state.writes.clear()
    again, _ = run(url, push.load_dashboards())
    assert state.writes == [] and again.writes == 0


def test_a_changed_dashboard_is_updated_alone(grafana: tuple[str, FakeGrafana]) -> None:
    url, state = grafana
    run(url, small_dashboards())
    state.writes.clear()
    changed = small_dashboards()
    changed["smartcity-test-b"]["panels"][0]["title"] = "Power per wijk"
    result, lines = run(url, changed)
    assert [(m, p, b["dashboard"]["uid"]) for m, p, b in state.writes] == [("POST", "/api/dashboards/db",
                                                                            "smartcity-test-b")]
    assert result.count("updated") == 1 and result.count("unchanged") == 3
    assert state.dashboards["smartcity-test-b"]["dashboard"]["version"] == 2
    assert state.dashboards["smartcity-test-a"]["dashboard"]["version"] == 1
    assert "dashboard 'smartcity-test-b': updated (version 2)" in "\n".join(lines)


def test_a_dashboard_in_another_folder_is_moved_back(grafana: tuple[str, FakeGrafana]) -> None:
    url, state = grafana
    run(url, small_dashboards())
    state.folders["elsewhere"] = {"id": 99, "uid": "elsewhere", "title": "Elsewhere", "version": 1}
    state.dashboards["smartcity-test-a"]["folderUid"] = "elsewhere"
    state.writes.clear()
    run(url, small_dashboards())
    assert [(p, b["folderUid"]) for _, p, b in state.writes] == [("/api/dashboards/db", "smartcity")]


def test_a_changed_datasource_is_put_and_a_missing_password_is_set(grafana: tuple[str, FakeGrafana]) -> None:
    url, state = grafana
    run(url, small_dashboards())
    state.writes.clear()
    moved = {**DATASOURCE, "url": "http://127.0.0.1:9999"}
    run(url, small_dashboards(), datasource=moved)
    assert [(m, p) for m, p, _ in state.writes] == [("PUT", f"/api/datasources/uid/{DATASOURCE_UID}")]
    assert state.datasources[DATASOURCE_UID]["url"] == "http://127.0.0.1:9999"
    state.writes.clear()
    state.secrets[DATASOURCE_UID] = {}  # someone cleared the password in the UI
    run(url, small_dashboards(), datasource=moved)
    assert [(m, p) for m, p, _ in state.writes] == [("PUT", f"/api/datasources/uid/{DATASOURCE_UID}")]
    assert state.secrets[DATASOURCE_UID] == {"password": "s3cret-influx"}
    state.writes.clear()
    run(url, small_dashboards(), datasource=moved, update_secrets=True)  # a rotated password, on request
    assert len(state.writes) == 1


def test_a_wrong_token_fails_clearly_with_the_auth_exit_code(grafana: tuple[str, FakeGrafana],
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    url, state = grafana
    wrong = "glsa_WrongTokenAlsoSecret_9876"
    code = push.push_command(url, wrong, small_dashboards(), datasource=DATASOURCE)
    out, err = capsys.readouterr()
    assert code == push.EXIT_AUTH == 3
    assert "folder 'smartcity'" in err and "401" in err and "SMARTCITY_GRAFANA_TOKEN" in err
    assert wrong not in out + err and state.writes == []


def test_no_token_is_a_config_error(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv(push.TOKEN_ENV, raising=False)
    monkeypatch.delenv(push.TOKEN_FILE_ENV, raising=False)
    assert push.push_command("http://127.0.0.1:9", None, {}) == push.EXIT_CONFIG
    assert "SMARTCITY_GRAFANA_TOKEN" in capsys.readouterr().err


def test_a_server_error_names_the_object_and_never_the_token(grafana: tuple[str, FakeGrafana]) -> None:
    url, state = grafana
    state.faults["GET", "/api/dashboards/uid/smartcity-test-b"] = (500, {"message": f"db locked (Bearer {TOKEN})"})
    lines: list[str] = []
    with pytest.raises(push.PushError) as failure:
        push.push_all(url, TOKEN, small_dashboards(), datasource=DATASOURCE, progress=lines.append)
    message = str(failure.value)
    assert failure.value.exit_code == push.EXIT_UNAVAILABLE
    assert "dashboard 'smartcity-test-b'" in message and "500" in message and "db locked" in message
    assert TOKEN not in message + "\n".join(lines)
    assert "smartcity-test-a" in state.dashboards  # what came before was pushed


@pytest.mark.parametrize(("status", "code"), [(403, push.EXIT_AUTH), (412, push.EXIT_REFUSED)])
def test_refusals_name_the_object(grafana: tuple[str, FakeGrafana], status: int, code: int) -> None:
    url, state = grafana
    state.faults["POST", "/api/datasources"] = (status, {"message": "refused", "status": "name-exists"})
    with pytest.raises(push.PushError) as failure:
        run(url, small_dashboards())
    assert failure.value.exit_code == code
    assert f"datasource '{DATASOURCE_UID}'" in str(failure.value) and str(status) in str(failure.value)


def test_a_provisioned_datasource_that_differs_is_not_overwritten(grafana: tuple[str, FakeGrafana]) -> None:
    url, state = grafana
    run(url, small_dashboards())
    state.datasources[DATASOURCE_UID]["readOnly"] = True
    state.writes.clear()
    with pytest.raises(push.PushError, match="provisioned"):
        run(url, small_dashboards(), datasource={**DATASOURCE, "url": "http://127.0.0.1:1"})
    assert state.writes == []


def test_a_slow_grafana_times_out_naming_the_object(grafana: tuple[str, FakeGrafana]) -> None:
    url, state = grafana
    state.delay["GET", f"/api/datasources/uid/{DATASOURCE_UID}"] = 1.5
    with pytest.raises(push.PushError, match=f"datasource '{DATASOURCE_UID}'.*in time") as failure:
        run(url, small_dashboards(), timeout=0.3)
    assert failure.value.exit_code == push.EXIT_UNAVAILABLE


def test_an_unreachable_grafana_is_unavailable() -> None:
    with pytest.raises(push.PushError, match="cannot reach Grafana") as failure:
        run("http://127.0.0.1:9", small_dashboards())  # port 9 (discard): nothing listens on loopback
    assert failure.value.exit_code == push.EXIT_UNAVAILABLE


def test_a_dashboard_whose_uid_differs_from_its_key_is_refused_before_any_request(
        grafana: tuple[str, FakeGrafana]) -> None:
    url, state = grafana
    with pytest.raises(push.PushError, match="uid"):
        run(url, {"smartcity-x": small_dashboards()["smartcity-test-a"]})
    assert state.writes == []


def test_the_command_line_pushes_the_committed_dashboards_once(grafana: tuple[str, FakeGrafana], tmp_path: Any,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """`smartcity dashboards push` with the token in a file: everything created, then nothing written."""
    from smartcity.cli import main  # noqa: PLC0415

    url, state = grafana
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    monkeypatch.setenv("SMARTCITY_INFLUX_URL", "http://127.0.0.1:8086")
    assert main(["dashboards", "push", "--url", url, "--token-file", str(token_file)]) == push.EXIT_OK
    assert set(state.dashboards) == CONTRACT_UIDS and DATASOURCE_UID in state.datasources
    writes = len(state.writes)
    assert main(["dashboards", "push", "--url", url, "--token-file", str(token_file)]) == push.EXIT_OK
    assert len(state.writes) == writes
    out = capsys.readouterr().out
    assert "0 created, 0 updated, 8 unchanged" in out and TOKEN not in out
    assert not state.violations
