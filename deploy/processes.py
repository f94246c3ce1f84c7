"""Child processes we start and stop by PID, free loopback ports, generated secrets.

Shared by the servers in deploy/ (mosquitto, influxd), the demo and the test fixtures.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


class ServiceError(RuntimeError):
    """A server could not be started; the message says why and where its log is."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on host a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True if a TCP port on host can be bound right now (another program may take it later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def find_binary(name: str, hint: str) -> str:
    """The path of a server binary, or a ServiceError saying how to install it."""
    for candidate in (shutil.which(name), f"/usr/sbin/{name}", f"/usr/bin/{name}"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise ServiceError(f"{name} not found: {hint}")


@dataclass
class ChildProcess:
    """A server we started: we stop exactly this PID, politely first."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self.process.pid

    def running(self) -> bool:
        """True while the process has not exited."""
        return self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, wait, then SIGKILL if it will not go."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("%s (pid %d) ignored SIGTERM, killing it", self.name, self.pid)
            self.process.kill()
            self.process.wait(timeout)

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the child's log, for error messages."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _with_parent_death_signal(argv: list[str]) -> list[str]:
    # setpriv (util-linux, on every Debian) makes the kernel send SIGTERM to the server if we die,
    # so no mosquitto or influxd outlives a killed demo or test run; done by exec, not preexec_fn,
    # which is unsafe in a threaded parent.
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--", *argv] if setpriv else argv


def spawn(name: str, argv: list[str], log_path: Path, env: dict[str, str] | None = None) -> ChildProcess:
    """Start argv in a session of its own with stdout and stderr appended to log_path."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as out:
        # A session of its own: the terminal's Ctrl-C reaches only the parent, which then stops
        # its children in order (servers last, so the final summary can still be read).
        proc = subprocess.Popen(_with_parent_death_signal(argv), stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, env=env)
    return ChildProcess(name, proc, log_path)


def wait_until(child: ChildProcess, ready: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.running():
            raise ServiceError(f"{child.name} exited with {child.process.returncode}:\n{child.log_tail()}")
        if ready():
            return
        time.sleep(0.05)
    child.stop()
    raise ServiceError(f"{child.name} not ready after {timeout} s; log {child.log_path}:\n{child.log_tail()}")


def new_password() -> str:
    """A random password for a generated account."""
    return secrets.token_urlsafe(24)
