"""Gateways' broker accounts: lines of mosquitto's password file, and the SIGHUP that makes it reload.

A gateway logs in with its gateway id, and the ACL's ``pattern`` lines (deploy/mosquitto.py
``acl_policy``) confine every account to the topics of the gateway named like it, so provisioning
a gateway needs only a password line and revoking it only removes that line: the ACL file does
not change. mosquitto re-reads both files on SIGHUP and disconnects clients whose account is gone.

Lines are written as mosquitto_passwd writes them (``$7$``: PBKDF2-SHA512, 12-byte salt), computed
here rather than by running mosquitto_passwd so that the password never appears on a command line
(other local users can read those in /proc). Edits hold an exclusive lock and replace the file
atomically, keeping its mode and group (mosquitto must still be able to read it).

Used by the API's admin routes (api/operators/routes_gateways.py) and by `smartcity gateway`
(deploy/gateway_cli.py).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import os
import secrets
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ITERATIONS = 1000


class BrokerAccountError(RuntimeError):
    """The password file or the broker cannot be reached; the message names no path."""


def password_line(user: str, password: str, salt: bytes | None = None) -> str:
    """A mosquitto 2 password file line for user (``user:$7$iterations$salt$hash``)."""
    salt = salt or secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, ITERATIONS)
    return f"{user}:$7${ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


@dataclass(frozen=True, slots=True)
class BrokerAccounts:
    """The broker's password file and how to tell the broker to reload it (its pid file)."""

    password_file: Path
    pid_file: Path | None = None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[list[str]]:
        lock = self.password_file.with_name(f".{self.password_file.name}.lock")
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT, 0o600)
        except OSError as exc:
            raise BrokerAccountError(f"the broker's password file cannot be locked: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                lines = self.password_file.read_text().splitlines()
            except OSError as exc:
                raise BrokerAccountError(f"the broker's password file cannot be read: {exc.strerror}") from None
            yield lines
        finally:
            os.close(fd)

    def users(self) -> set[str]:
        """The accounts in the password file."""
        with self._locked() as lines:
            return {line.split(":", 1)[0] for line in lines if ":" in line}

    def _replace(self, lines: list[str]) -> None:
        st = self.password_file.stat()
        tmp = self.password_file.with_name(f".{self.password_file.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as f:
                f.write("".join(f"{line}\n" for line in lines))
                f.flush()
                os.fsync(f.fileno())
            with contextlib.suppress(PermissionError):  # only the owner may change the group; keep ours then
                os.chown(tmp, -1, st.st_gid)
            os.chmod(tmp, st.st_mode & 0o7777)
            os.replace(tmp, self.password_file)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise BrokerAccountError(f"the broker's password file cannot be written: {exc.strerror}") from None

    def add(self, user: str) -> str | None:
        """Give user a new random password; returns it, or None if the account exists already."""
        with self._locked() as lines:
            if any(line.split(":", 1)[0] == user for line in lines):
                return None
            password = secrets.token_urlsafe(24)
            self._replace([*lines, password_line(user, password)])
            return password

    def set_password(self, user: str, password: str) -> bool:
        """Give user this password, replacing its line or adding one; True if it had an account already."""
        with self._locked() as lines:
            existed = any(line.split(":", 1)[0] == user for line in lines)
            kept = [line for line in lines if line.split(":", 1)[0] != user]
            self._replace([*kept, password_line(user, password)])
            return existed

    def remove(self, user: str) -> bool:
        """Remove user's account; False if there was none."""
        with self._locked() as lines:
            kept = [line for line in lines if line.split(":", 1)[0] != user]
            if len(kept) == len(lines):
                return False
            self._replace(kept)
            return True

    def broker_pid(self) -> int:
        """The running broker's pid from the pid file (signal 0 proves it exists and may be signalled).

        For a check before anything is changed: a change the broker cannot be told about would be
        half done (the file says one thing, the running broker another).
        """
        if self.pid_file is None:
            raise BrokerAccountError("no pid file of the broker is configured")
        try:
            pid = int(self.pid_file.read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError) as exc:
            raise BrokerAccountError(f"the broker could not be told to reload: {exc}") from None
        return pid

    def reload_broker(self) -> bool:
        """SIGHUP the broker (it re-reads its password and ACL files); False if no pid file is configured."""
        if self.pid_file is None:
            return False
        try:
            pid = int(self.pid_file.read_text().strip())
            os.kill(pid, signal.SIGHUP)
        except (OSError, ValueError) as exc:
            raise BrokerAccountError(f"the broker could not be told to reload: {exc}") from None
        return True
