"""The demo's supervision: its servers and services under one Supervisor, and how restarts are told.

A crashed child is started again with backoff (deploy/supervisor.py) instead of ending the city:
the services with the command line they were first started with, mosquitto and influxd with the
same config file, data and ports (deploy/mosquitto.py, deploy/influxdb.py ``restart_spec``). The
edge agents need the simulator's serial ports, so they wait for it and restart with it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from deploy import influxdb, mosquitto
from deploy.influxdb import Influxd
from deploy.mosquitto import Broker
from deploy.processes import ChildProcess
from deploy.supervisor import ChildSpec, State, Supervisor, describe_exit

STATUS_FILE = "supervisor.json"  # under the demo's state directory: per child pid, restarts, last exit


def new_supervisor(state: Path) -> Supervisor:
    """The demo's supervisor, writing its status to <state>/supervisor.json."""
    return Supervisor(state / STATUS_FILE)


def supervise_broker(supervisor: Supervisor, broker: Broker,
                     on_start: Callable[[ChildProcess], None] | None = None) -> None:
    """Put a running broker under supervision; on_start runs after each restart too (the API's PID file)."""
    spec = mosquitto.restart_spec(broker)
    if on_start is not None:
        spec = dataclasses.replace(spec, on_start=_both(spec.on_start, on_start))
    supervisor.adopt(spec, broker.child)


def supervise_influxd(supervisor: Supervisor, server: Influxd) -> None:
    """Put a running influxd under supervision."""
    supervisor.adopt(influxdb.restart_spec(server), server.child)


def _both(first: Callable[[ChildProcess], None] | None,
          then: Callable[[ChildProcess], None]) -> Callable[[ChildProcess], None]:
    def run(child: ChildProcess) -> None:
        if first is not None:
            first(child)
        then(child)

    return run


def restarts_text(supervisor: Supervisor) -> str:
    """'ingest 1, mosquitto 2' or 'none', for the progress line and the summary."""
    counts = supervisor.restarts()
    return ", ".join(f"{name} {n}" for name, n in counts.items()) or "none"


def summary_lines(supervisor: Supervisor) -> list[str]:
    """The summary's lines on supervision: restarts per service, and the ones left down."""
    lines = [f"  restarts: {restarts_text(supervisor)}   (per child: {supervisor.status_path})"]
    down = [f"{s.name} ({s.state.value}, {describe_exit(s.last_exit)})" for s in supervisor.status().values()
            if s.state in (State.FAILED, State.EXITED)]
    if down:
        lines.append("  not running, not restarted: " + ", ".join(down))
    return lines


def any_down(supervisor: Supervisor) -> bool:
    """True if a child failed (exit 2) or ended on its own: the city ran without it (demo exit status 1)."""
    return any(s.state in (State.FAILED, State.EXITED) for s in supervisor.status().values())


def event_lines(supervisor: Supervisor) -> list[str]:
    """What the person watching should see of what happened since the last call.

    The supervisor logs each exit and restart itself; what the log line lacks is the child's own last
    words, so those are shown for every exit.
    """
    out = []
    for event in supervisor.events():
        if event.exit_code is not None and event.log_tail:
            tail = "\n".join(f"    | {line}" for line in event.log_tail.splitlines()[-10:])
            out.append(f"  {event.message}; its log ends:\n{tail}")
    return out


def service_spec(name: str, argv: list[str], log_path: Path, env: dict[str, str], *, after: str | None = None,
                 ready: Callable[[], bool] | None = None, before_start: Callable[[], None] | None = None) -> ChildSpec:
    """A service's spec: the demo's services stop within 10 s of SIGTERM (they flush their last batches)."""
    return ChildSpec(name, argv, log_path, env, after=after, ready=ready, ready_timeout=15.0,
                     before_start=before_start)
