"""An ingest worker's identity: a stable name that owns its MQTT session and its spool, one process at a time.

The name gives the MQTT client id (``smartcity-ingest-<name>``), so a worker restarted under the
same name resumes its persistent session: the broker redelivers what it had not acknowledged. Two
live processes with one name would take over each other's session, so each holds an exclusive lock
on its state directory; without --worker a process takes the first free ``<hostname>-<n>``, which is
unique per process and the same again after a restart.
"""

from __future__ import annotations

import fcntl
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from core.errors import ConfigError
from core.topics import ID_PATTERN

MAX_AUTO_SLOTS = 64


class WorkerNameError(ConfigError):
    """The worker name is invalid or held by another live process."""


@dataclass
class WorkerClaim:
    """A held worker name: its state directory (spool) and the lock that keeps it ours."""

    name: str
    directory: Path
    _fd: int

    @property
    def client_id(self) -> str:
        """The MQTT client id of this worker."""
        return f"smartcity-ingest-{self.name}"

    def release(self) -> None:
        """Give up the name (also happens when the process dies)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _try_lock(directory: Path) -> int | None:
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def claim(state_dir: Path, name: str | None = None) -> WorkerClaim:
    """Take the given worker name, or the first free automatic one; raises WorkerNameError."""
    base = state_dir / "ingest"
    if name is not None:
        if not ID_PATTERN.match(name):
            raise WorkerNameError(f"--worker must match {ID_PATTERN.pattern}: {name!r}")
        fd = _try_lock(base / name)
        if fd is None:
            holder = (base / name / "lock").read_text().strip() or "?"
            raise WorkerNameError(f"ingest worker name {name!r} is in use by pid {holder}; "
                                  "give each worker its own --worker")
        return WorkerClaim(name, base / name, fd)
    host = socket.gethostname().split(".")[0] or "ingest"
    for slot in range(1, MAX_AUTO_SLOTS + 1):
        candidate = f"{host}-{slot}"
        fd = _try_lock(base / candidate)
        if fd is not None:
            return WorkerClaim(candidate, base / candidate, fd)
    raise WorkerNameError(f"all {MAX_AUTO_SLOTS} automatic worker names under {base} are in use")
