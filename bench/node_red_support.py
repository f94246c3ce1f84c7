"""Node-RED as a benchmark peer: install a pinned package dir with `npm ci`, start it offline, read GET /stats.

Each peer is a directory holding package.json + package-lock.json (the pinned versions), settings.js and
flows.json / flows_cred.json (bench/node-red-ingest/ for bench/ingest.py). node_modules/ is installed on
first use and not committed. Node-RED runs with a private --userDir (a copy of the flow files: it may write
there), its settings from the package dir, and the flow's counters on a GET /stats route (127.0.0.1 only).

bench/rules_service_consumers.py has its own copy of the install step for bench/node-red/ (left as it is).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from deploy.processes import ChildProcess, spawn


def node_binary() -> str:
    node = shutil.which("node")
    if not node:
        raise SystemExit("node not found: apt-get install nodejs npm")
    return node


def installed_versions(directory: Path, packages: dict[str, str]) -> dict[str, str | None]:
    """The version of each package found in directory/node_modules (None where absent)."""
    out: dict[str, str | None] = {}
    for name in packages:
        pkg = directory / "node_modules" / name / "package.json"
        try:
            out[name] = str(json.loads(pkg.read_text()).get("version"))
        except (OSError, ValueError):
            out[name] = None
    return out


def ensure_installed(directory: Path, packages: dict[str, str], log: Callable[[str], None]) -> dict[str, str]:
    """`npm ci` in directory unless node_modules already holds exactly these versions (npm's progress shown)."""
    if installed_versions(directory, packages) == packages:
        return packages
    npm = shutil.which("npm")
    if not npm:
        raise SystemExit("npm not found: apt-get install npm (Node-RED is installed from the npm registry)")
    if not (directory / "package-lock.json").exists():
        raise SystemExit(f"{directory / 'package-lock.json'} is missing: the versions must be pinned")
    cmd = [npm, "ci", "--no-audit", "--no-fund", "--loglevel=http"]
    log(f"installing {packages} into {directory / 'node_modules'}: {' '.join(cmd[1:])}")
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=directory, timeout=900, check=False)  # npm's own progress on the terminal
    found = installed_versions(directory, packages)
    if proc.returncode != 0 or found != packages:
        raise SystemExit(f"npm ci failed ({proc.returncode}): found {found}, want {packages}; see npm's output")
    log(f"  installed in {time.monotonic() - t0:.0f} s")
    return packages


def start_node_red(directory: Path, user_dir: Path, env: dict[str, str], log_path: Path,
                   argv_prefix: tuple[str, ...] = ()) -> ChildProcess:
    """Node-RED from directory/node_modules on directory's settings.js and a private copy of its flows.

    argv_prefix (e.g. taskset -c 1) goes before the node binary; env must set what settings.js and the
    flow read (their ${...} references), including the /stats port.
    """
    user_dir.mkdir(parents=True, exist_ok=True)
    for f in ("flows.json", "flows_cred.json"):
        shutil.copy(directory / f, user_dir / f)
    argv = [*argv_prefix, node_binary(), str(directory / "node_modules" / "node-red" / "red.js"), "--settings",
            str(directory / "settings.js"), "--userDir", str(user_dir), "flows.json"]
    return spawn(f"node-red-{user_dir.parent.name}", argv, log_path, env)


class Stats:
    """GET http://127.0.0.1:port/stats of a running flow (None while it does not answer)."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/stats"
        self.http = httpx.Client(timeout=2)

    def get(self) -> dict[str, Any] | None:
        try:
            st = self.http.get(self.url).json()
        except (httpx.HTTPError, ValueError):
            return None
        return dict(st) if isinstance(st, dict) and st else None

    def wait(self, child: ChildProcess, timeout: float) -> dict[str, Any]:
        """Until /stats answers (the flow is deployed); raises if Node-RED exits or the time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not child.running():
                raise RuntimeError(f"{child.name} exited:\n{child.log_tail(40)}")
            st = self.get()
            if st is not None:
                return st
            time.sleep(0.2)
        raise RuntimeError(f"{child.name}: no /stats after {timeout:.0f} s:\n{child.log_tail(40)}")

    def close(self) -> None:
        self.http.close()
