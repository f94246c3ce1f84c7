"""Supervision of child services: what systemd does in production, for the demo on one machine.

Each child has a ChildSpec (name, argv, env, log path). When one exits without being asked to, it is
started again after a capped exponential backoff with jitter (0.5 s doubling to 30 s by default; the
delay starts over once the child has run stably for a while), and every restart is counted, logged
and written to a small JSON status file. Exit status 2 is a bad configuration (smartcity/cli.py turns
a ConfigError into it): restarting cannot fix it, so that child is reported as failed and left down,
as systemd's ``RestartPreventExitStatus=2`` does. Exit status 0 is the child's own decision (a
``--duration``, ``ingest --retire``) and, as with ``Restart=on-failure``, is not restarted either.

A child may need another one (``after``): the edge agents read the serial ports the simulator opened,
so when the simulator dies its agents are stopped, and they start again once it is back and ready.

Children are ChildProcess objects from deploy.processes: stopped by PID only, with a parent-death
signal, so nothing outlives the supervisor. A monitor thread (``watch()``) or the caller (``poll()``)
looks at them; ``halt()`` ends all restarting, and ``stop()`` halts before it stops any child, so
nothing is restarted during a shutdown.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from deploy.processes import ChildProcess, ServiceError, spawn, wait_until
from deploy.supervisor_model import (
    PREVENT_RESTART_EXIT_STATUS,
    Backoff,
    ChildSpec,
    ChildStatus,
    Event,
    State,
    describe_exit,
)

log = logging.getLogger(__name__)

__all__ = ["Backoff", "ChildSpec", "ChildStatus", "Event", "State", "Supervisor", "describe_exit"]

MAX_EVENTS = 200  # kept for a caller that drains them now and then (the demo, once a second)


class _Child:
    """The supervisor's mutable record of one child (under the supervisor's lock)."""

    def __init__(self, spec: ChildSpec) -> None:
        self.spec = spec
        self.process: ChildProcess | None = None
        self.state = State.HELD
        self.restarts = 0
        self.failures = 0
        self.last_exit: int | None = None
        self.last_start: float | None = None
        self.started_at = 0.0  # monotonic
        self.ready_by = 0.0  # monotonic deadline of the ready check
        self.restart_at = 0.0  # monotonic, in BACKOFF

    def status(self) -> ChildStatus:
        return ChildStatus(self.spec.name, self.state, self.process.pid if self.process else None, self.restarts,
                           self.last_exit, self.last_start, self.failures)


class Supervisor:
    """Children started, watched and restarted; status_path (if given) gets the JSON status after each change."""

    def __init__(self, status_path: Path | None = None, *, backoff: Backoff | None = None,
                 poll_interval: float = 0.2, rng: random.Random | None = None,
                 prevent_restart: frozenset[int] = PREVENT_RESTART_EXIT_STATUS) -> None:
        self.status_path = status_path
        self.backoff = backoff or Backoff()
        self.poll_interval = poll_interval
        self.prevent_restart = prevent_restart
        self._rng = rng or random.Random()  # jitter, not a secret
        self._children: dict[str, _Child] = {}
        self._lock = threading.RLock()
        self._halted = False
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._events: deque[Event] = deque(maxlen=MAX_EVENTS)

    # --- adding children ---

    def start(self, spec: ChildSpec) -> ChildProcess:
        """Start a new child now (its ``after`` is not checked: the caller starts children in order)."""
        with self._lock:
            entry = self._register(spec)
            self._launch(entry, time.monotonic())
            if entry.process is None:
                raise ServiceError(f"{spec.name} could not be started; log {spec.log_path}")
            return entry.process

    def adopt(self, spec: ChildSpec, process: ChildProcess) -> None:
        """Supervise a child started elsewhere (a server started with its own checks); spec restarts it."""
        with self._lock:
            entry = self._register(spec)
            entry.process, entry.state = process, State.RUNNING
            entry.started_at, entry.last_start = time.monotonic(), time.time()
            self._write_status()

    def _register(self, spec: ChildSpec) -> _Child:
        if self._halted:
            raise ServiceError(f"{spec.name}: the supervisor is stopping")
        if spec.name in self._children:
            raise ValueError(f"a child named {spec.name} is supervised already")
        entry = self._children[spec.name] = _Child(spec)
        return entry

    def wait_ready(self, name: str, timeout: float) -> None:
        """Block until name is running and ready; a ServiceError with its log if it dies or is not ready in time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                self.poll()
                entry = self._children[name]
                if entry.state is State.RUNNING:
                    return
                if entry.state not in (State.STARTING, State.BACKOFF):
                    break
            time.sleep(0.05)
        tail = _log_tail(self._children[name].spec.log_path)
        raise ServiceError(f"{name} not ready after {timeout:g} s ({self._children[name].state}):\n{tail}")

    # --- watching ---

    def watch(self) -> None:
        """Poll in a monitor thread from now on, every poll_interval seconds, until halt()."""
        with self._lock:
            if self._thread is not None or self._halted:
                return
            self._thread = threading.Thread(target=self._monitor, name="supervisor", daemon=True)
            self._thread.start()

    def _monitor(self) -> None:
        while not self._wake.wait(self.poll_interval):
            try:
                self.poll()
            except Exception:  # a hook or ready check that raises must not end all supervision
                log.exception("supervisor: poll failed; going on")

    def poll(self) -> None:
        """One look at every child: note exits, finish starts, start what is due. Does nothing once halted."""
        with self._lock:
            if self._halted:
                return
            now = time.monotonic()
            for entry in list(self._children.values()):
                self._step(entry, now)

    def _step(self, entry: _Child, now: float) -> None:
        spec, process = entry.spec, entry.process
        if entry.state in (State.STARTING, State.RUNNING) and process is not None and not process.running():
            self._exited(entry, process, now)
        elif entry.state is State.STARTING and process is not None:
            if spec.ready is None or spec.ready():
                entry.state = State.RUNNING
                # Said at a restart only: at the first start the caller reports its own progress.
                log.log(logging.INFO if entry.restarts else logging.DEBUG, "%s (pid %d) is ready", spec.name,
                        process.pid)
                self._write_status()
            elif now >= entry.ready_by:
                log.warning("%s (pid %d) not ready after %g s; stopping it", spec.name, process.pid,
                            spec.ready_timeout)
                process.stop(spec.stop_timeout)
                self._exited(entry, process, now, failed_start=True)
        elif entry.state is State.RUNNING and entry.failures and now - entry.started_at >= self.backoff.stable_after:
            entry.failures = 0  # it ran stably: its next failure waits the initial delay again
            self._write_status()
        if entry.state is State.BACKOFF and now >= entry.restart_at:
            if self._needed_is_up(entry):
                self._launch(entry, now)
            else:
                entry.state = State.HELD
        elif entry.state is State.HELD and self._needed_is_up(entry):
            self._launch(entry, now)

    def _needed_is_up(self, entry: _Child) -> bool:
        after = entry.spec.after
        return after is None or (after in self._children and self._children[after].state is State.RUNNING)

    def _exited(self, entry: _Child, process: ChildProcess, now: float, failed_start: bool = False) -> None:
        spec, code = entry.spec, process.process.returncode
        entry.process, entry.last_exit = None, code
        tail = process.log_tail()
        # Stopped by us for want of readiness: a failure, whatever the exit status says.
        if code in self.prevent_restart and not failed_start:
            entry.state = State.FAILED
            message = (f"{spec.name} (pid {process.pid}) exited with {describe_exit(code)} (bad configuration); "
                       f"not restarted, see {spec.log_path}")
            log.error("%s", message)
        elif code == 0 and not failed_start:
            entry.state = State.EXITED
            message = f"{spec.name} (pid {process.pid}) exited with status 0 on its own; not restarted"
            log.warning("%s", message)
        else:
            entry.failures += 1
            delay = self.backoff.delay(entry.failures, self._rng)
            entry.state, entry.restart_at = State.BACKOFF, now + delay
            message = (f"{spec.name} (pid {process.pid}) exited with {describe_exit(code)}; restart "
                       f"{entry.restarts + 1} in {delay:.1f} s (failure {entry.failures} in a row)")
            log.warning("%s", message)
        self._events.append(Event(spec.name, entry.state, message, code, tail))
        self._hold_dependents(spec.name)
        self._write_status()

    def _hold_dependents(self, name: str) -> None:
        # Stopped by us, so not a failure of theirs: they start again, without delay, once name is back.
        for dep in self._children.values():
            if dep.spec.after != name or dep.state in (State.FAILED, State.EXITED, State.STOPPED):
                continue
            if dep.process is not None:
                log.info("stopping %s (pid %d): %s, which it needs, is down", dep.spec.name, dep.process.pid, name)
                dep.process.stop(dep.spec.stop_timeout)
                dep.last_exit, dep.process = dep.process.process.returncode, None
            dep.state = State.HELD
            self._hold_dependents(dep.spec.name)

    def _launch(self, entry: _Child, now: float) -> None:
        spec, first = entry.spec, entry.last_start is None
        try:
            if spec.before_start is not None:
                spec.before_start()
            process = spawn(spec.name, list(spec.argv), spec.log_path,
                            env=dict(spec.env) if spec.env is not None else None)
        except OSError as exc:
            entry.failures += 1
            delay = self.backoff.delay(entry.failures, self._rng)
            entry.state, entry.restart_at = State.BACKOFF, now + delay
            log.error("%s could not be started (%s); trying again in %.1f s", spec.name, exc, delay)
            self._write_status()
            return
        if not first:
            entry.restarts += 1
        entry.process, entry.state = process, State.STARTING
        entry.started_at, entry.ready_by, entry.last_start = now, now + spec.ready_timeout, time.time()
        if spec.on_start is not None:
            spec.on_start(process)
        if not first:
            message = f"{spec.name} restarted (pid {process.pid}, restart {entry.restarts})"
            log.info("%s", message)
            self._events.append(Event(spec.name, State.STARTING, message))
        self._write_status()

    # --- reading ---

    def status(self) -> dict[str, ChildStatus]:
        """Every child's figures now, in the order they were added."""
        with self._lock:
            return {name: entry.status() for name, entry in self._children.items()}

    def restarts(self) -> dict[str, int]:
        """{name: restarts} of the children restarted at least once."""
        return {name: s.restarts for name, s in self.status().items() if s.restarts}

    def process(self, name: str) -> ChildProcess | None:
        """The child's current process, if it has one."""
        with self._lock:
            return self._children[name].process

    def events(self) -> list[Event]:
        """What happened since the last call (oldest first)."""
        with self._lock:
            out = list(self._events)
            self._events.clear()
            return out

    def _write_status(self) -> None:
        if self.status_path is None:
            return
        children = {}
        for name, entry in self._children.items():
            s = entry.status()
            children[name] = {
                "state": s.state.value, "pid": s.pid, "restarts": s.restarts, "last_exit": s.last_exit,
                "last_start": _iso(s.last_start), "failures_in_a_row": s.failures,
                "restart_in": round(max(0.0, entry.restart_at - time.monotonic()), 2)
                if entry.state is State.BACKOFF else None,
            }
        body = {"updated": _iso(time.time()), "halted": self._halted, "children": children}
        self.status_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.status_path.with_name(f".{self.status_path.name}.tmp")
        tmp.write_text(json.dumps(body, indent=1) + "\n")
        os.replace(tmp, self.status_path)  # a reader never sees half a file

    # --- stopping ---

    def halt(self) -> None:
        """Restart nothing from now on (idempotent); the children keep running until stop()."""
        with self._lock:
            self._halted = True
            self._wake.set()
            thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(30)  # a poll under way may be stopping a dependent: at most its stop timeout
        with self._lock:
            self._write_status()

    def stop(self, names: Iterable[str] | None = None) -> None:
        """Halt, then stop the named children in that order (default: all, the last added first), by PID."""
        self.halt()
        with self._lock:
            order = list(names) if names is not None else list(reversed(self._children))
            for name in order:
                entry = self._children.get(name)
                if entry is None:
                    continue
                if entry.process is not None:
                    entry.process.stop(entry.spec.stop_timeout)
                    entry.last_exit, entry.process = entry.process.process.returncode, None
                if entry.state in (State.STARTING, State.RUNNING, State.BACKOFF, State.HELD):
                    entry.state = State.STOPPED
            self._write_status()


def start_once(spec: ChildSpec) -> ChildProcess:
    """Start spec's child once, unsupervised, and wait until it is ready (the fault tests' restart of a
    killed server with its restart_spec); a ServiceError with its log if it dies or is not ready in time."""
    child = spawn(spec.name, list(spec.argv), spec.log_path, dict(spec.env) if spec.env else None)
    if spec.ready is not None:
        wait_until(child, spec.ready, spec.ready_timeout)
    if spec.on_start is not None:
        spec.on_start(child)
    return child


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _iso(epoch: float | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")
