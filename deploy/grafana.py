"""Grafana for the demo: on a free loopback port with the smart-city provisioning, when it is installed.

Grafana is optional (no package on the development machines): `start_grafana` returns None when
neither `grafana` (the current CLI, `grafana server`) nor `grafana-server` (the older binary) is
on PATH. Everything is set through GF_* variables, not a grafana.ini, so that no system
configuration (/etc/grafana) is read: data, logs and plugins under the state directory, the
provisioning copied there from dashboards/provisioning, HTTP on 127.0.0.1 only, no anonymous
access, no sign-up, no calls home. The datasource's connection settings reach Grafana as the
SMARTCITY_INFLUX_* variables that its provisioning file names.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from dashboards.datasource import (
    DASHBOARDS_DIR_ENV,
    DASHBOARDS_JSON_DIR,
    PASSWORD_ENV,
    PROVISIONING_DIR,
    URL_ENV,
    USER_ENV,
)
from deploy.processes import ChildProcess, ServiceError, free_port, new_password, spawn, wait_until

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
ADMIN_USER = "admin"
PORT_ATTEMPTS = 3
# Where the deb/rpm packages put Grafana's home (conf/defaults.ini, public/).
PACKAGED_HOME = Path("/usr/share/grafana")


@dataclass
class Grafana:
    """A running Grafana on loopback, logged into as admin with a generated password."""

    url: str
    child: ChildProcess
    port: int
    state_dir: Path
    password_file: Path
    admin_user: str = ADMIN_USER
    admin_password: str = field(default="", repr=False)

    @property
    def pid(self) -> int:
        """Grafana's process id."""
        return self.child.pid

    def stop(self) -> None:
        """Stop Grafana (by PID)."""
        self.child.stop(timeout=20)


def find_grafana(search_path: str | None = None) -> list[str] | None:
    """The command that runs Grafana's server (`grafana server` or `grafana-server`), or None."""
    current = shutil.which("grafana", path=search_path)
    if current:
        return [current, "server"]
    legacy = shutil.which("grafana-server", path=search_path)
    return [legacy] if legacy else None


def grafana_home(binary: str) -> Path | None:
    """Grafana's home directory (conf/defaults.ini) for a binary: a tarball's or the packages'."""
    real = Path(binary).resolve()
    for candidate in (real.parent.parent, PACKAGED_HOME):
        if (candidate / "conf" / "defaults.ini").is_file():
            return candidate
    return None


def _secret(path: Path) -> str:
    # Kept across runs: Grafana sets the admin password only when it creates its database, and it
    # encrypts the datasource password with the secret key.
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = new_password()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(value + "\n")
    return value


def copy_provisioning(target: Path, source: Path = PROVISIONING_DIR) -> Path:
    """A fresh copy of the provisioning tree (datasources, dashboards) at target."""
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    for empty in ("plugins", "alerting"):  # the other kinds Grafana looks for, provisioned with nothing
        (target / empty).mkdir(exist_ok=True)
    return target


def grafana_env(base: Path, *, port: int, admin_password: str, secret_key: str, influx_url: str,
                influx_user: str | None, influx_password: str | None,
                dashboards_dir: Path = DASHBOARDS_JSON_DIR) -> dict[str, str]:
    """Grafana's environment: its settings as GF_* variables and the provisioning's SMARTCITY_* ones."""
    # Inherited GF_* variables could turn anonymous access or a remote database back on: dropped.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GF_")}
    env.update({
        "GF_PATHS_DATA": str(base / "data"),
        "GF_PATHS_LOGS": str(base / "logs"),
        "GF_PATHS_PLUGINS": str(base / "plugins"),
        "GF_PATHS_PROVISIONING": str(base / "provisioning"),
        "GF_SERVER_HTTP_ADDR": HOST,
        "GF_SERVER_HTTP_PORT": str(port),
        "GF_SERVER_DOMAIN": HOST,
        "GF_SECURITY_ADMIN_USER": ADMIN_USER,
        "GF_SECURITY_ADMIN_PASSWORD": admin_password,
        "GF_SECURITY_SECRET_KEY": secret_key,
        "GF_SECURITY_DISABLE_GRAVATAR": "true",
        "GF_AUTH_ANONYMOUS_ENABLED": "false",
        "GF_USERS_ALLOW_SIGN_UP": "false",
        "GF_ANALYTICS_REPORTING_ENABLED": "false",
        "GF_ANALYTICS_CHECK_FOR_UPDATES": "false",
        "GF_ANALYTICS_CHECK_FOR_PLUGIN_UPDATES": "false",
        "GF_NEWS_NEWS_FEED_ENABLED": "false",
        # Grafana 11+ would download its preinstalled plugins from grafana.com at every start.
        "GF_PLUGINS_PREINSTALL_DISABLED": "true",
        "GF_LOG_MODE": "console",
        URL_ENV: influx_url,
        # Set even when empty, so an operator's own SMARTCITY_INFLUX_* cannot leak into the demo's Grafana.
        USER_ENV: influx_user or "",
        PASSWORD_ENV: influx_password or "",
        DASHBOARDS_DIR_ENV: str(dashboards_dir.resolve()),
    })
    return env


def _healthy(url: str) -> bool:
    try:
        resp = httpx.get(f"{url}/api/health", timeout=1.0)
        return resp.status_code == 200 and resp.json().get("database") == "ok"
    except (httpx.HTTPError, ValueError, AttributeError):
        return False


def start_grafana(state_dir: Path, influx_url: str, influx_user: str | None = None,
                  influx_password: str | None = None, *, port: int | None = None, timeout: float = 90.0,
                  search_path: str | None = None, dashboards_dir: Path = DASHBOARDS_JSON_DIR) -> Grafana | None:
    """Start Grafana with the smart-city provisioning under state_dir/grafana; None if not installed.

    influx_url is InfluxDB's URL as Grafana's server reaches it. The admin password is generated on
    first start and kept in state_dir/grafana/admin-password (mode 0600).
    """
    command = find_grafana(search_path)
    if command is None:
        log.info("Grafana is not installed (no grafana or grafana-server on PATH): not started")
        return None
    base = state_dir / "grafana"
    base.mkdir(parents=True, exist_ok=True)
    password_file = base / "admin-password"
    admin_password = _secret(password_file)
    secret_key = _secret(base / "secret-key")
    copy_provisioning(base / "provisioning")
    home = grafana_home(command[0])
    argv = [*command, *(["--homepath", str(home)] if home else [])]
    for attempt in range(1, PORT_ATTEMPTS + 1):
        chosen = port or free_port(HOST)
        env = grafana_env(base, port=chosen, admin_password=admin_password, secret_key=secret_key,
                          influx_url=influx_url, influx_user=influx_user, influx_password=influx_password,
                          dashboards_dir=dashboards_dir)
        child = spawn("grafana", argv, base / "grafana.log", env=env)
        url = f"http://{HOST}:{chosen}"
        try:
            wait_until(child, functools.partial(_healthy, url), timeout)
            break
        except ServiceError:
            child.stop()
            # A free port can be taken before Grafana binds it: with a port of our choosing, choose again.
            if port or "address already in use" not in child.log_tail(50) or attempt == PORT_ATTEMPTS:
                raise
            log.warning("grafana: port %d was taken before it bound; choosing another (attempt %d)", chosen, attempt)
    log.info("grafana pid %d serving %s (user %s, password in %s)", child.pid, url, ADMIN_USER, password_file)
    return Grafana(url, child, chosen, state_dir, password_file, ADMIN_USER, admin_password)
