"""Follow a config file while a service runs: reload it when it changes or on request (SIGHUP), and keep
the previous value when an edit is bad.

Generic: ``load(path)`` makes the value (a GatewayConfig, a KeyRing, a Registry, ...) and raises on a
bad file; ``on_change(old, new)`` applies a new value. The file is polled on a thread by its stat
(mtime, size, inode, device: an editor or ``mv`` that replaces the file atomically gives a new inode
with possibly the same mtime and size) and by a hash of its bytes, so a touch or a rewrite with the same
content changes nothing, and a rewrite within the file system's timestamp granularity is still caught
(for a file modified less than ``RACY_SECONDS`` before a check, the content is compared on the next
check too, whatever its stat says).

A bad edit (``load`` raises) is logged with its error, counted in ``failures`` with ``last_error``, and
the previous value stays ``current``; the same bad content is not tried again until the file changes
once more or ``reload()`` is called (a fix in another file the value depends on, such as a missing key
file, needs a ``reload()``). ``last_error`` is cleared by the next good load.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
# Timestamps move in clock ticks (a few ms on Linux, 2 s on FAT): a write this soon after the one we
# saw may leave mtime and size alone, so such a file's content is compared again on the next check.
RACY_SECONDS = 2.0

_Signature = tuple[int, int, int, int]  # (mtime_ns, size, inode, device)


def _signature(st: os.stat_result) -> _Signature:
    return st.st_mtime_ns, st.st_size, st.st_ino, st.st_dev


class ConfigWatcher(Generic[T]):
    """The current value of a file, reloaded on change by a polling thread or on request.

    The first load happens in the constructor and raises whatever ``load`` raises: a service
    must not start on a bad file. ``on_change(old, new)`` runs on the watcher's thread (or on
    the thread calling ``reload``); if it raises, the change counts as a failure and ``current``
    stays the old value, so it should apply a change all or nothing.
    """

    def __init__(self, path: str | os.PathLike[str], load: Callable[[Path], T],
                 on_change: Callable[[T, T], None], *, interval: float = 2.0, name: str | None = None) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be > 0 s: {interval}")
        self.path = Path(path)
        self.interval = interval
        self.name = name or self.path.name
        self._load = load
        self._on_change = on_change
        self._lock = threading.Lock()  # one load at a time: the thread's and reload()'s
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._reload_requested = False
        self._thread: threading.Thread | None = None
        self.changes = 0  # new values applied since the start
        self.failures = 0  # bad edits (and failed on_change calls) since the start
        self.last_error: str | None = None  # the last failure's message; None once a load succeeds
        self._signature, self._digest, self._racy = self._observe()
        self._current = load(self.path)

    @property
    def current(self) -> T:
        """The value of the last good load."""
        return self._current

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        """Start polling on a daemon thread."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name=f"config-watch-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop polling and wait for the thread to end."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def request_reload(self) -> None:
        """Ask the thread to reload now; safe to call from a signal handler (it only sets a flag)."""
        self._reload_requested = True
        self._wake.set()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._stopping.is_set():
                return
            try:
                if self._reload_requested:
                    self._reload_requested = False
                    self.reload()
                else:
                    self.check()
            except Exception:  # the watcher must outlive any surprise; the agent keeps its config
                log.exception("config watch %s: unexpected error", self.path)

    # -- checks -----------------------------------------------------------------------------------
    def _observe(self) -> tuple[_Signature | None, bytes | None, bool]:
        """(stat signature, content hash, modified too recently to trust the stat) of the file now."""
        try:
            st = self.path.stat()
            digest = hashlib.sha256(self.path.read_bytes()).digest()
        except OSError:
            return None, None, False
        return _signature(st), digest, time.time() - st.st_mtime < RACY_SECONDS

    def check(self) -> bool:
        """Reload if the file's content changed since the last look; True if a new value was applied."""
        try:
            signature: _Signature | None = _signature(self.path.stat())
        except OSError:
            signature = None
        if signature == self._signature and not self._racy:
            return False
        with self._lock:
            before = self._digest
            self._signature, self._digest, self._racy = self._observe()
            if self._digest == before:
                return False
            if self._digest is None:
                self._fail(f"{self.path}: cannot be read (removed?)")
                return False
            return self._apply()

    def reload(self) -> bool:
        """Load the file now, changed or not (SIGHUP); True if the new value was applied."""
        with self._lock:
            self._signature, self._digest, self._racy = self._observe()
            return self._apply()

    def _apply(self) -> bool:
        try:
            new = self._load(self.path)
        except Exception as exc:  # a bad edit of any kind must leave the running value in force
            self._fail(str(exc) or type(exc).__name__)
            return False
        old = self._current
        try:
            self._on_change(old, new)
        except Exception as exc:
            log.exception("config watch %s: applying the new value failed; the old one stays", self.path)
            self._fail(f"applying {self.path}: {exc}", logged=True)
            return False
        self._current = new
        self.changes += 1
        self.last_error = None
        log.info("config watch %s: new value applied", self.path)
        return True

    def _fail(self, message: str, *, logged: bool = False) -> None:
        self.failures += 1
        self.last_error = message
        if not logged:
            log.error("config watch %s: keeping the previous value: %s", self.path, message)
