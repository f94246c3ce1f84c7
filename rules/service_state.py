"""The worker's state file: restored at start, written every --snapshot-interval and at stop.

The evaluator takes the snapshot (it owns the engine, so the state is consistent); the file is
written by the housekeeper or, at stop, by the stopping thread, so that an fsync never delays an
evaluation. A corrupt file is moved aside (kept for a post-mortem) and the worker starts afresh.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from rules import snapshot_file
from rules.partition import Partition
from rules.service_build import Runtime
from rules.service_metrics import HousekeeperCounts
from rules.snapshot_file import SnapshotError

log = logging.getLogger(__name__)

Snapshot = tuple[dict[str, Any], dict[str, Any]]  # (engine state, service metadata)


def snapshot_path(state_dir: Path | None, partition: Partition) -> Path | None:
    """Where a worker of the partition keeps its state (one file per partition: workers may share a directory)."""
    if state_dir is None:
        return None
    return Path(state_dir) / "rules" / f"state-{partition.index}of{partition.count}.npz"


class StateFile:
    """One worker's snapshot file (or none, without a state directory)."""

    def __init__(self, path: Path | None, counts: HousekeeperCounts, partition: Partition, rules_path: Path,
                 clock: Callable[[], float]) -> None:
        self.path = path
        self.counts = counts
        self._partition = partition
        self._rules_path = rules_path
        self._clock = clock
        self._lock_fd: int | None = None

    def claim(self) -> None:
        """Take the file's lock for this process; ConfigError if another worker holds it (it would overwrite ours)."""
        if self.path is None or self._lock_fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = self.path.with_name(f"{self.path.stem}.lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise ConfigError(f"{lock} is held by another rules worker (pid {holder}): run one worker per "
                              "partition and state directory") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd

    def release(self) -> None:
        """Let go of the lock (closing the descriptor releases it)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def restore(self, runtime: Runtime, now: float, fresh: Callable[[], Runtime]) -> tuple[Runtime, list[str]]:
        """runtime with the saved state restored (or fresh() if restoring failed half-way), and the saved topics."""
        if self.path is None:
            return runtime, []
        try:
            state, meta = snapshot_file.load(self.path)
        except FileNotFoundError:
            log.info("rules: no snapshot at %s; starting afresh", self.path)
            return runtime, []
        except SnapshotError as exc:
            self.counts.snapshot_load_failures += 1
            aside = self.path.with_name(f"{self.path.name}.corrupt")
            self.path.replace(aside)
            log.error("rules: %s; moved it to %s and starting afresh", exc, aside)
            return runtime, []
        try:
            runtime.engine.restore(state, now)
        except Exception:  # a snapshot of another build's making: its engine state may be half taken over
            self.counts.snapshot_load_failures += 1
            log.exception("rules: snapshot %s could not be restored; starting afresh", self.path)
            return fresh(), []
        log.info("rules: state restored from %s (saved %.0f s ago)", self.path, now - float(meta.get("saved_at", now)))
        return runtime, [t for t in meta.get("topics", []) if isinstance(t, str)]

    def capture(self, runtime: Runtime) -> Snapshot:
        """The engine's state and the service's metadata (the evaluator's thread: it owns the engine)."""
        meta = {"saved_at": self._clock(), "partition": [self._partition.index, self._partition.count],
                "partition_by": self._partition.by, "rules": str(self._rules_path), "topics": list(runtime.topics)}
        return runtime.engine.snapshot(), meta

    def write(self, snap: Snapshot | None) -> None:
        """Write a captured snapshot atomically; a failure is logged and counted (the next one tries again)."""
        if snap is None or self.path is None:
            return
        try:
            snapshot_file.save(self.path, *snap)
        except (OSError, TypeError, ValueError) as exc:
            self.counts.snapshot_failures += 1
            log.error("rules: snapshot %s not written: %s", self.path, exc)
            return
        self.counts.snapshots += 1
