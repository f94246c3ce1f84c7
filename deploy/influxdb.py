"""InfluxDB 1.x: its configuration, running influxd on loopback for the demo and tests, and its users.

influxd binds two ports, the HTTP API and the backup/RPC service (default 8088): both go on free
loopback ports so that two instances never collide (architecture.md, "Practical notes").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import httpx

from deploy.processes import ChildProcess, ServiceError, find_binary, free_port, spawn, wait_until
from deploy.supervisor import ChildSpec

log = logging.getLogger(__name__)


def influxd_config(base: Path, *, host: str, http_port: int, rpc_port: int, auth: bool) -> str:
    """influxdb.conf with data under base, both ports on host, and optional authentication."""
    return f"""\
reporting-disabled = true
# The backup/RPC service binds 8088 by default: two instances would collide.
bind-address = "{host}:{rpc_port}"

[meta]
  dir = "{base}/meta"

[data]
  dir = "{base}/data"
  wal-dir = "{base}/wal"
  query-log-enabled = false

[monitor]
  store-enabled = false

[http]
  bind-address = "{host}:{http_port}"
  auth-enabled = {"true" if auth else "false"}
  log-enabled = false

[continuous_queries]
  log-enabled = false
"""


@dataclass
class Influxd:
    """A running InfluxDB 1.x with its HTTP API on loopback."""

    url: str
    child: ChildProcess
    http_port: int
    rpc_port: int
    state_dir: Path
    admin: tuple[str, str] | None = field(default=None, repr=False)

    def stop(self) -> None:
        """Stop influxd."""
        self.child.stop(timeout=20)

    def kill(self) -> None:
        """SIGKILL influxd (fault tests)."""
        self.child.process.kill()
        self.child.process.wait(10)

    def restart(self, timeout: float = 30.0) -> Influxd:
        """Start influxd again on the same ports and data (after stop or kill)."""
        return start_influxd(self.state_dir, http_port=self.http_port, rpc_port=self.rpc_port,
                             admin=self.admin, timeout=timeout)

    def admin_query(self, q: str) -> None:
        """Run an administrative InfluxQL statement (users, grants, databases) as the admin."""
        resp = httpx.post(f"{self.url}/query", data={"q": q}, auth=self.admin, timeout=10)
        body = resp.json() if resp.headers.get("content-type", "").startswith("application/json") else {}
        errors = [r["error"] for r in body.get("results", []) if "error" in r]
        if resp.status_code >= 300 or errors or "error" in body:
            # Passwords are the statements' only single-quoted strings: never in a message.
            raise RuntimeError(f"InfluxDB refused {q.split(chr(39), maxsplit=1)[0].strip()!r}: "
                               f"{resp.status_code} {errors or body.get('error')}")


PORT_ATTEMPTS = 3  # tries with freshly chosen ports when one was taken meanwhile


def start_influxd(state_dir: Path, *, http_port: int | None = None, rpc_port: int | None = None,
                  host: str = "127.0.0.1", timeout: float = 30.0,
                  admin: tuple[str, str] | None = None) -> Influxd:
    """Start influxd with its data under state_dir; with admin=(user, password), authentication is on.

    The admin user is created on first start (InfluxDB 1.x allows exactly that one unauthenticated
    statement on an empty auth-enabled server).
    """
    binary = find_binary("influxd", "apt-get install influxdb (scripts/demo and scripts/test do this)")
    base = state_dir / "influxdb"
    base.mkdir(parents=True, exist_ok=True)
    conf = base / "influxdb.conf"
    for attempt in range(1, PORT_ATTEMPTS + 1):
        http, rpc = http_port or free_port(host), rpc_port or free_port(host)
        conf.write_text(influxd_config(base, host=host, http_port=http, rpc_port=rpc, auth=admin is not None))
        child = spawn("influxd", [binary, "-config", str(conf)], base / "influxd.log")
        url = f"http://{host}:{http}"

        def ready(url: str = url) -> bool:
            try:
                return httpx.get(f"{url}/ping", timeout=0.5).status_code == 204
            except httpx.HTTPError:
                return False

        try:
            wait_until(child, ready, timeout)
            break
        except ServiceError:
            # A free port can be taken by another process before influxd binds it (seen in CI, with
            # tests starting servers side by side): with ports of our choosing, choose again.
            taken = "address already in use" in child.log_tail()
            if not taken or (http_port and rpc_port) or attempt == PORT_ATTEMPTS:
                raise
            log.warning("influxd: a chosen port was taken before it bound; choosing others (attempt %d)", attempt)
    http_port, rpc_port = http, rpc
    server = Influxd(url, child, http_port, rpc_port, state_dir, admin)
    if admin is not None:
        marker = base / ".admin-created"
        if not marker.exists():
            user, password = admin
            resp = httpx.post(f"{url}/query", timeout=10,
                              data={"q": f"CREATE USER \"{user}\" WITH PASSWORD '{password}' WITH ALL PRIVILEGES"})
            if resp.status_code >= 300:
                child.stop()
                raise RuntimeError(f"could not create the InfluxDB admin user: {resp.status_code}")
            marker.touch()
    log.info("influxd pid %d serving %s", child.pid, url)
    return server


def restart_spec(server: Influxd, timeout: float = 30.0) -> ChildSpec:
    """How a supervisor (deploy/supervisor.py) starts this running influxd again after it died.

    The config file start_influxd wrote, so the same ports, data, WAL and authentication setting
    (the admin user exists already); ready once /ping answers; server.child follows the new process.
    """
    binary = find_binary("influxd", "apt-get install influxdb (scripts/demo and scripts/test do this)")
    conf = server.state_dir / "influxdb" / "influxdb.conf"

    def started(child: ChildProcess) -> None:
        server.child = child

    return ChildSpec(server.child.name, [binary, "-config", str(conf)], server.child.log_path,
                     ready=partial(pings, server.url), ready_timeout=timeout, on_start=started, stop_timeout=20)


def pings(url: str) -> bool:
    """True if the InfluxDB at url answers /ping with 204."""
    try:
        return httpx.get(f"{url}/ping", timeout=0.5).status_code == 204
    except httpx.HTTPError:
        return False
