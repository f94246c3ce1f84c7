"""`smartcity dashboards push`: the folder, the datasource and the dashboards into a running Grafana.

Through Grafana's HTTP API with a service-account token (`Authorization: Bearer ...`), with httpx
directly: grafana-client would pull urllib3-future into the whole venv. Idempotent: each object is
read first and written only when it differs from what we would write, so a second push changes
nothing (no new dashboard versions, no datasource update).

Endpoints (Grafana's documented HTTP API): GET /api/folders/{uid}, POST /api/folders, PUT
/api/folders/{uid}; GET /api/datasources/uid/{uid}, POST /api/datasources, PUT
/api/datasources/uid/{uid}; GET /api/dashboards/uid/{uid}, POST /api/dashboards/db.
"""

from __future__ import annotations

import copy
import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from dashboards.datasource import DASHBOARDS_JSON_DIR, FOLDER_TITLE, FOLDER_UID, datasource_from_env

TOKEN_ENV = "SMARTCITY_GRAFANA_TOKEN"
TOKEN_FILE_ENV = "SMARTCITY_GRAFANA_TOKEN_FILE"
URL_ENV = "SMARTCITY_GRAFANA_URL"
DEFAULT_URL = "http://127.0.0.1:3000"
DEFAULT_TIMEOUT = 10.0
DEFAULT_MESSAGE = "smartcity dashboards push"

# Exit codes of the push command, one per kind of failure the operator fixes differently.
EXIT_OK = 0
EXIT_CONFIG = 2  # no token, unreadable token file, bad dashboard input
EXIT_AUTH = 3  # 401/403: the token is wrong or its service account lacks a role
EXIT_REFUSED = 4  # 400/404/409/412: Grafana refused an object (the message says which and why)
EXIT_UNAVAILABLE = 5  # unreachable, timed out, 5xx

# Keys Grafana sets on a stored dashboard itself: never part of the comparison.
GRAFANA_MANAGED_KEYS = frozenset({"id", "version"})

Progress = Callable[[str], object]


class PushError(RuntimeError):
    """A push that could not finish; the message names the object, exit_code the kind of failure."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True, slots=True)
class Change:
    """What push did to one object: created, updated or unchanged."""

    kind: str  # folder | datasource | dashboard
    uid: str
    action: str


@dataclass
class PushResult:
    """Every object push looked at, in order."""

    changes: list[Change] = field(default_factory=list)

    @property
    def writes(self) -> int:
        """How many objects were created or updated (0 on a repeated push)."""
        return sum(c.action != "unchanged" for c in self.changes)

    def count(self, action: str) -> int:
        """How many objects got this action."""
        return sum(c.action == action for c in self.changes)

    def summary(self) -> str:
        """One line for the operator."""
        return (f"{self.count('created')} created, {self.count('updated')} updated, "
                f"{self.count('unchanged')} unchanged")


def token_from_env(env: Mapping[str, str] | None = None) -> str:
    """The service-account token from SMARTCITY_GRAFANA_TOKEN or the file SMARTCITY_GRAFANA_TOKEN_FILE names."""
    env = os.environ if env is None else env
    token = env.get(TOKEN_ENV, "").strip()
    path = env.get(TOKEN_FILE_ENV)
    if not token and path:
        try:
            token = Path(path).read_text().strip()
        except OSError as exc:
            raise PushError(f"{TOKEN_FILE_ENV} {path}: {exc.strerror}", EXIT_CONFIG) from None
    if not token:
        raise PushError(f"no Grafana token: set {TOKEN_ENV} (or {TOKEN_FILE_ENV}) to a service-account "
                        "token of that Grafana (Administration > Service accounts)", EXIT_CONFIG)
    return token


def url_from_env(env: Mapping[str, str] | None = None) -> str:
    """Grafana's URL from SMARTCITY_GRAFANA_URL (default http://127.0.0.1:3000)."""
    env = os.environ if env is None else env
    return env.get(URL_ENV) or DEFAULT_URL


def load_dashboards(directory: Path = DASHBOARDS_JSON_DIR) -> dict[str, dict[str, Any]]:
    """The committed dashboards, {uid: dashboard}, from <directory>/<uid>.json."""
    dashboards: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob("*.json")):
        try:
            dashboard = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise PushError(f"{path}: not a dashboard JSON file: {exc}", EXIT_CONFIG) from None
        if not isinstance(dashboard, dict) or dashboard.get("uid") != path.stem:
            raise PushError(f"{path}: its uid must equal the file name {path.stem!r}", EXIT_CONFIG)
        dashboards[path.stem] = dashboard
    return dashboards


def comparable(dashboard: Mapping[str, Any]) -> dict[str, Any]:
    """A dashboard without the keys Grafana manages itself (id, version)."""
    return {k: v for k, v in dashboard.items() if k not in GRAFANA_MANAGED_KEYS}


def datasource_differs(stored: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """True if the stored datasource (GET response) lacks or contradicts a field we would write.

    Grafana never returns secrets, only which ones are set (secureJsonFields): a secret we would
    set that is not set there counts as a difference; a changed one cannot be seen (see
    update_secrets in push_all).
    """
    for key, value in wanted.items():
        if key == "secureJsonData":
            fields = stored.get("secureJsonFields") or {}
            if any(secret and not fields.get(name) for name, secret in value.items()):
                return True
        elif key == "jsonData":
            stored_json = stored.get("jsonData") or {}
            if any(stored_json.get(k) != v for k, v in value.items()):
                return True
        elif stored.get(key) != value:
            return True
    return False


class _Grafana:
    """The few calls push makes, with errors that name the object and never the token."""

    def __init__(self, url: str, token: str, timeout: float) -> None:
        self.url = url.rstrip("/")
        self._token = token
        self._client = httpx.Client(base_url=self.url, timeout=timeout, follow_redirects=False,
                                    headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})

    def close(self) -> None:
        self._client.close()

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text

    def call(self, method: str, path: str, what: str, body: object = None,
             missing_ok: bool = False) -> dict[str, Any] | None:
        """One request; the JSON body of a 2xx, None for a 404 when missing_ok, else a PushError."""
        try:
            resp = self._client.request(method, path, json=body)  # json=None: no body (GET)
        except httpx.TimeoutException:
            raise PushError(f"{what}: Grafana at {self.url} did not answer {method} {path} in time",
                            EXIT_UNAVAILABLE) from None
        except httpx.HTTPError as exc:
            raise PushError(self._redact(f"{what}: cannot reach Grafana at {self.url}: {exc}"),
                            EXIT_UNAVAILABLE) from None
        if resp.status_code == 404 and missing_ok:
            return None
        if 200 <= resp.status_code < 300:
            try:
                data = resp.json()
            except ValueError:
                raise PushError(f"{what}: {method} {path} answered {resp.status_code} without JSON; "
                                f"is {self.url} a Grafana?", EXIT_UNAVAILABLE) from None
            return data if isinstance(data, dict) else {"items": data}
        raise PushError(self._redact(self._explain(resp, method, path, what)), self._exit_code(resp.status_code))

    @staticmethod
    def _exit_code(status: int) -> int:
        if status in (401, 403):
            return EXIT_AUTH
        return EXIT_UNAVAILABLE if status >= 500 else EXIT_REFUSED

    @staticmethod
    def _explain(resp: httpx.Response, method: str, path: str, what: str) -> str:
        try:
            detail = resp.json()
        except ValueError:
            detail = {}
        message = detail.get("message") if isinstance(detail, dict) else None
        message = message or resp.text[:200].strip() or resp.reason_phrase
        status = resp.status_code
        hint = {
            401: f"Grafana refused the token: set {TOKEN_ENV} to a valid service-account token of this Grafana",
            403: "the token's service account may not do this: give it the Editor role for folders and "
                 "dashboards, Admin for the datasource",
            404: "not found: is the URL the root of a Grafana of version 9 or later?",
            409: "conflicts with an existing object of another uid (same name or title)",
            412: "precondition failed (changed meanwhile, or a dashboard of that name or from a plugin exists)",
        }.get(status, "Grafana server error: see its log" if status >= 500 else "")
        status_word = f" {detail['status']}" if isinstance(detail, dict) and detail.get("status") else ""
        return f"{what}: {method} {path} failed with {status}{status_word}: {message}" + (f" ({hint})" if hint else "")


def _ensure_folder(api: _Grafana, uid: str, title: str, progress: Progress) -> Change:
    what = f"folder {uid!r}"
    stored = api.call("GET", f"/api/folders/{uid}", what, missing_ok=True)
    if stored is None:
        api.call("POST", "/api/folders", what, {"uid": uid, "title": title})
        action = "created"
    elif stored.get("title") != title:
        api.call("PUT", f"/api/folders/{uid}", what, {"title": title, "overwrite": True})
        action = "updated"
    else:
        action = "unchanged"
    progress(f"{what} ({title}): {action}")
    return Change("folder", uid, action)


def _ensure_datasource(api: _Grafana, wanted: dict[str, Any], update_secrets: bool, progress: Progress) -> Change:
    uid = str(wanted["uid"])
    what = f"datasource {uid!r}"
    stored = api.call("GET", f"/api/datasources/uid/{uid}", what, missing_ok=True)
    if stored is None:
        api.call("POST", "/api/datasources", what, wanted)
        action = "created"
    elif datasource_differs(stored, wanted) or (update_secrets and any(wanted.get("secureJsonData", {}).values())):
        if stored.get("readOnly"):
            raise PushError(f"{what} is provisioned from a file in this Grafana and differs from ours: change "
                            "its provisioning file (dashboards/provisioning/datasources) instead", EXIT_REFUSED)
        api.call("PUT", f"/api/datasources/uid/{uid}", what, wanted)
        action = "updated"
    else:
        action = "unchanged"
    progress(f"{what} ({wanted.get('url')}): {action}")
    return Change("datasource", uid, action)


def _ensure_dashboard(api: _Grafana, uid: str, dashboard: Mapping[str, Any], *, folder_uid: str, message: str,
                      progress: Progress) -> Change:
    what = f"dashboard {uid!r}"
    stored = api.call("GET", f"/api/dashboards/uid/{uid}", what, missing_ok=True)
    if stored is not None:
        meta = stored.get("meta") or {}
        same = comparable(stored.get("dashboard") or {}) == comparable(dashboard)
        if same and meta.get("folderUid") == folder_uid:
            progress(f"{what}: unchanged")
            return Change("dashboard", uid, "unchanged")
        if meta.get("provisioned"):
            raise PushError(f"{what} is provisioned from files in this Grafana and differs from ours: update "
                            "the files its provider reads instead of pushing", EXIT_REFUSED)
    # id null and overwrite true: Grafana matches the stored dashboard by uid and saves a new version.
    body = {"dashboard": {**copy.deepcopy(comparable(dashboard)), "id": None}, "folderUid": folder_uid,
            "overwrite": True, "message": message}
    saved = api.call("POST", "/api/dashboards/db", what, body) or {}
    action = "created" if stored is None else "updated"
    progress(f"{what}: {action} (version {saved.get('version', '?')}) {api.url}{saved.get('url', '')}")
    return Change("dashboard", uid, action)


def push_all(url: str, token: str, dashboards: dict[str, dict[str, Any]], *, folder_uid: str = FOLDER_UID,
             folder_title: str = FOLDER_TITLE, datasource: dict[str, Any] | None = None,
             progress: Progress = print, timeout: float = DEFAULT_TIMEOUT, message: str = DEFAULT_MESSAGE,
             update_secrets: bool = False) -> PushResult:
    """Create or update the folder, the datasource and every dashboard; write only what differs.

    datasource None: the one the SMARTCITY_INFLUX_* variables describe (dashboards.datasource).
    update_secrets: send the datasource password even when nothing else changed (Grafana never
    shows a stored secret, so a rotated password cannot be detected).
    """
    for uid, dashboard in dashboards.items():
        if dashboard.get("uid") != uid:
            raise PushError(f"dashboard {uid!r}: its JSON has uid {dashboard.get('uid')!r}", EXIT_CONFIG)
    wanted = datasource_from_env() if datasource is None else datasource
    api = _Grafana(url, token, timeout)
    result = PushResult()
    try:
        result.changes.append(_ensure_folder(api, folder_uid, folder_title, progress))
        result.changes.append(_ensure_datasource(api, wanted, update_secrets, progress))
        for uid in sorted(dashboards):
            result.changes.append(_ensure_dashboard(api, uid, dashboards[uid], folder_uid=folder_uid,
                                                        message=message, progress=progress))
    finally:
        api.close()
    progress(f"pushed to {api.url}: {result.summary()}")
    return result


def push_command(url: str | None, token: str | None, dashboards: dict[str, dict[str, Any]], *,
                 progress: Progress = print, error: Progress | None = None, **options: Any) -> int:
    """push_all for a command line: progress lines, one error line, and an exit code (EXIT_*).

    url None: SMARTCITY_GRAFANA_URL; token None: SMARTCITY_GRAFANA_TOKEN(_FILE), never a flag, so
    that the token stays out of shell history and process lists.
    """
    def to_stderr(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        push_all(url or url_from_env(), token or token_from_env(), dashboards, progress=progress, **options)
    except PushError as exc:
        (error or to_stderr)(f"push failed: {exc}")
        return exc.exit_code
    return EXIT_OK
