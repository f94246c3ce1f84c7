"""What deploy/supervisor.py knows of its children: their specs, the restart backoff, states, events, exit texts."""

from __future__ import annotations

import random
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from deploy.processes import ChildProcess

PREVENT_RESTART_EXIT_STATUS = frozenset({2})  # a ConfigError: as RestartPreventExitStatus=2 in the units


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays between restarts: initial doubling (factor) up to cap, each shortened by up to jitter of itself.

    The jitter only ever shortens a delay, so cap is a hard bound; it keeps children that died
    together (a broker restart) from all coming back in the same instant. A child that ran for
    stable_after seconds starts again from initial the next time it dies.
    """

    initial: float = 0.5
    factor: float = 2.0
    cap: float = 30.0
    jitter: float = 0.2
    stable_after: float = 30.0

    def delay(self, failures: int, rng: random.Random) -> float:
        """Seconds to wait before the restart that follows the failures-th consecutive failure (1, 2, ...)."""
        exponent = min(max(failures, 1) - 1, 64)  # no float overflow after a very long crash loop
        base = min(self.cap, self.initial * self.factor**exponent)
        return base * (1.0 - self.jitter * rng.random())


@dataclass(frozen=True)
class ChildSpec:
    """How to start one child, and again after it died."""

    name: str
    argv: Sequence[str]
    log_path: Path
    env: Mapping[str, str] | None = None
    # The name of a child this one needs: it is started only while that one runs (and is ready),
    # stopped when that one dies, and started again (with no delay) once that one is back.
    after: str | None = None
    # Polled after each start; until it is true the child is "starting" and its dependents wait.
    ready: Callable[[], bool] | None = None
    ready_timeout: float = 30.0  # a start that is not ready by then is killed and counted as a failure
    before_start: Callable[[], None] | None = None  # e.g. remove the file whose appearance means ready
    on_start: Callable[[ChildProcess], None] | None = None  # e.g. a PID file that others read
    stop_timeout: float = 10.0


class State(StrEnum):
    """Where a child is in its life, as the status file says it."""

    STARTING = "starting"  # started, its ready check not yet true
    RUNNING = "running"
    BACKOFF = "backoff"  # died; waits for its restart
    HELD = "held"  # waits for the child it needs (ChildSpec.after)
    FAILED = "failed"  # exited with a status that restarting cannot fix (2: bad configuration)
    EXITED = "exited"  # exited with 0 on its own: done, not restarted
    STOPPED = "stopped"  # stopped by the supervisor


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened to a child, for a caller that reports it (the demo prints log tails)."""

    name: str
    state: State
    message: str
    exit_code: int | None = None
    log_tail: str = ""


@dataclass(frozen=True, slots=True)
class ChildStatus:
    """One child's figures, as in the status file."""

    name: str
    state: State
    pid: int | None
    restarts: int
    last_exit: int | None
    last_start: float | None  # wall-clock seconds since the epoch
    failures: int  # consecutive, since it last ran stably


def describe_exit(code: int | None) -> str:
    """'status 1' or 'signal 9 (SIGKILL)', as Popen's returncode means it."""
    if code is None:
        return "no exit status"
    if code < 0:
        try:
            return f"signal {-code} ({signal.Signals(-code).name})"
        except ValueError:
            return f"signal {-code}"
    return f"status {code}"
