"""deploy/supervisor.py with small real child processes: restart with capped backoff and jitter, exit 2 left down,
dependents held while what they need is down, stop() by PID with nothing restarted after, the status file."""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import subprocess
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from core import mqtt
from core.influx import InfluxClient, InfluxConfig
from deploy import influxdb, mosquitto
from deploy.mosquitto import all_listening
from deploy.supervisor import Backoff, ChildSpec, State, Supervisor
from tests.conftest import settings_for, wait_for

SH = "/bin/sh"


def spec(tmp_path: Path, name: str, script: str, **kw) -> ChildSpec:
    """A child that appends '<epoch seconds> <pid>' to <name>.starts each time it starts, then runs script."""
    starts = tmp_path / f"{name}.starts"
    return ChildSpec(name, [SH, "-c", f'echo "$(date +%s.%N) $$" >> {starts}; {script}'], tmp_path / f"{name}.log",
                     **kw)


def starts(tmp_path: Path, name: str) -> list[tuple[float, int]]:
    path = tmp_path / f"{name}.starts"
    lines = path.read_text().split("\n") if path.exists() else []
    return [(float(t), int(p)) for t, p in (ln.split() for ln in lines if ln)]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too (reaped only by its parent's wait).
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture
def supervisors():
    made: list[Supervisor] = []

    def make(status: Path | None = None, **kw) -> Supervisor:
        sup = Supervisor(status, poll_interval=0.02, **kw)
        made.append(sup)
        return sup

    yield make
    for sup in made:
        sup.stop()


def test_the_delay_doubles_up_to_the_cap_and_the_jitter_only_shortens_it() -> None:
    backoff = Backoff(initial=0.5, factor=2.0, cap=30.0, jitter=0.2)
    rng = random.Random(3)
    delays = [backoff.delay(n, rng) for n in range(1, 13)]
    bases = [min(30.0, 0.5 * 2 ** (n - 1)) for n in range(1, 13)]
    assert bases[:7] == [0.5, 1, 2, 4, 8, 16, 30] and set(bases[6:]) == {30.0}
    for d, base in zip(delays, bases, strict=True):
        assert base * 0.8 <= d <= base
    assert max(delays) <= 30.0
    assert len({round(d / b, 6) for d, b in zip(delays, bases, strict=True)}) > 6  # jittered, not a constant factor
    assert backoff.delay(10_000, rng) <= 30.0  # no overflow after a very long crash loop


def test_a_child_that_dies_is_restarted_after_growing_delays_up_to_the_cap(tmp_path, supervisors) -> None:
    backoff = Backoff(initial=0.1, factor=2.0, cap=0.4, jitter=0.2, stable_after=60)
    sup = supervisors(backoff=backoff, rng=random.Random(11))
    expected_rng = random.Random(11)  # the same draws: the delays the supervisor chose
    expected = [backoff.delay(n, expected_rng) for n in range(1, 6)]
    sup.start(spec(tmp_path, "crashy", "exit 1"))
    sup.watch()
    wait_for(lambda: len(starts(tmp_path, "crashy")) >= 6, 10)
    sup.halt()
    times = [t for t, _ in starts(tmp_path, "crashy")][:6]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # Each gap is the delay plus the child's brief life, the poll interval and the start of a shell
    # (10-40 ms here); never less than the delay (but for how long a start takes, which varies a little).
    for gap, delay in zip(gaps, expected, strict=True):
        assert delay - 0.02 <= gap <= delay + 0.25, (gaps, expected)
    assert gaps[2] > gaps[0] + 0.15  # it grew ...
    assert max(gaps) <= 0.4 + 0.25  # ... up to the cap
    status = sup.status()["crashy"]
    # Halted with the last start perhaps still running: it has not failed yet.
    assert status.restarts >= 5 and status.failures in (status.restarts, status.restarts + 1)
    assert status.last_exit == 1


def test_a_child_that_ran_stably_starts_again_from_the_initial_delay(tmp_path, supervisors) -> None:
    sup = supervisors(backoff=Backoff(initial=0.05, cap=5.0, jitter=0.0, stable_after=0.2))
    sup.start(spec(tmp_path, "steady", "sleep 0.4; exit 3"))
    sup.watch()
    wait_for(lambda: len(starts(tmp_path, "steady")) >= 4, 10)
    messages = [e.message for e in sup.events() if e.state is State.BACKOFF]
    assert len(messages) >= 3 and all("in 0.1 s (failure 1 in a row)" in m for m in messages), messages


def test_exit_status_2_is_a_bad_config_and_is_not_restarted(tmp_path, supervisors) -> None:
    status_file = tmp_path / "supervisor.json"
    sup = supervisors(status_file, backoff=Backoff(initial=0.05))
    sup.start(spec(tmp_path, "misconfigured", "echo 'bad key' >&2; exit 2"))
    sup.watch()
    wait_for(lambda: sup.status()["misconfigured"].state is State.FAILED, 5)
    time.sleep(0.5)  # ten initial delays: no second start
    assert len(starts(tmp_path, "misconfigured")) == 1
    events = sup.events()
    assert [e.state for e in events] == [State.FAILED] and "bad key" in events[0].log_tail
    child = json.loads(status_file.read_text())["children"]["misconfigured"]
    assert child["state"] == "failed" and child["last_exit"] == 2 and child["restarts"] == 0 and child["pid"] is None


def test_a_clean_exit_is_the_childs_own_decision_and_is_not_restarted(tmp_path, supervisors) -> None:
    sup = supervisors(backoff=Backoff(initial=0.05))
    sup.start(spec(tmp_path, "done", "exit 0"))
    sup.watch()
    wait_for(lambda: sup.status()["done"].state is State.EXITED, 5)
    time.sleep(0.3)
    assert len(starts(tmp_path, "done")) == 1


def test_the_status_file_follows_a_kill_and_restart(tmp_path, supervisors) -> None:
    status_file = tmp_path / "state" / "supervisor.json"
    sup = supervisors(status_file, backoff=Backoff(initial=0.05))
    first = sup.start(spec(tmp_path, "svc", "exec sleep 60"))
    sup.start(spec(tmp_path, "other", "exec sleep 60"))
    sup.watch()
    wait_for(lambda: starts(tmp_path, "svc") and starts(tmp_path, "other"), 5)  # up, not still in exec
    os.kill(first.pid, signal.SIGKILL)
    wait_for(lambda: len(starts(tmp_path, "svc")) == 2 and sup.status()["svc"].state is State.RUNNING, 5)
    children = json.loads(status_file.read_text())["children"]
    new_pid = starts(tmp_path, "svc")[1][1]
    assert children["svc"]["pid"] == new_pid != first.pid and alive(new_pid)
    assert children["svc"]["restarts"] == 1 and children["svc"]["last_exit"] == -signal.SIGKILL
    assert children["svc"]["state"] == "running" and children["svc"]["failures_in_a_row"] == 1
    started = datetime.fromisoformat(children["svc"]["last_start"]).timestamp()
    assert abs(started - starts(tmp_path, "svc")[1][0]) < 1
    assert children["other"]["restarts"] == 0 and children["other"]["pid"] == starts(tmp_path, "other")[0][1]
    assert sup.restarts() == {"svc": 1}


def test_a_dependent_is_stopped_while_what_it_needs_is_down_and_started_once_that_is_ready(tmp_path,
                                                                                          supervisors) -> None:
    ports = tmp_path / "ports.json"  # as the simulator's port map: written once it is up
    sup = supervisors(backoff=Backoff(initial=0.2, jitter=0.0))
    sim = sup.start(spec(tmp_path, "sim", f"sleep 0.3; echo {{}} > {ports}; exec sleep 60", ready=ports.exists,
                         before_start=lambda: ports.unlink(missing_ok=True)))
    sup.wait_ready("sim", 5)
    agent = sup.start(spec(tmp_path, "agent", f"test -e {ports} || exit 2; exec sleep 60", after="sim"))
    sup.watch()
    os.kill(sim.pid, signal.SIGKILL)
    wait_for(lambda: not alive(agent.pid), 5)  # stopped by the supervisor, not left on dead ports
    assert sup.status()["agent"].state is State.HELD
    wait_for(lambda: sup.status()["agent"].state is State.RUNNING, 5)
    # It started only after the new port map was there (it would have exited 2 before).
    assert len(starts(tmp_path, "agent")) == 2 and starts(tmp_path, "agent")[1][0] > starts(tmp_path, "sim")[1][0] + 0.3
    status = sup.status()
    assert status["agent"].restarts == 1 and status["agent"].failures == 0 and status["sim"].restarts == 1


def test_a_start_that_never_becomes_ready_is_killed_and_counted_as_a_failure(tmp_path, supervisors) -> None:
    sup = supervisors(backoff=Backoff(initial=0.05, jitter=0.0))
    first = sup.start(spec(tmp_path, "stuck", "exec sleep 60", ready=lambda: False, ready_timeout=0.3))
    sup.watch()
    wait_for(lambda: len(starts(tmp_path, "stuck")) >= 2, 5)
    assert not alive(first.pid)
    assert sup.status()["stuck"].failures >= 1


def test_stop_stops_every_child_by_pid_and_nothing_restarts_afterwards(tmp_path, supervisors) -> None:
    status_file = tmp_path / "supervisor.json"
    sup = supervisors(status_file, backoff=Backoff(initial=0.05))
    # The same command line, not ours: stop() must not touch it (PIDs, never names).
    decoy = subprocess.Popen([SH, "-c", "exec sleep 60"])
    try:
        pids = [sup.start(spec(tmp_path, n, "exec sleep 60")).pid for n in ("a", "b", "c")]
        crashy = sup.start(spec(tmp_path, "crashy", "exit 1"))
        sup.watch()
        wait_for(lambda: len(starts(tmp_path, "crashy")) >= 2, 5)
        sup.stop(["c", "a"])  # these first, in this order; the others stay up until stop()
        assert not alive(pids[2]) and not alive(pids[0]) and alive(pids[1])
        sup.stop()
        assert not any(alive(p) for p in pids) and decoy.poll() is None
        counts = {n: len(starts(tmp_path, n)) for n in ("a", "b", "c", "crashy")}
        time.sleep(0.5)  # ten restart delays: nothing comes back
        assert {n: len(starts(tmp_path, n)) for n in counts} == counts
        assert counts["a"] == counts["b"] == counts["c"] == 1
        body = json.loads(status_file.read_text())
        assert body["halted"] is True
        assert {c["state"] for c in body["children"].values()} == {"stopped"}
        assert crashy.pid not in [c["pid"] for c in body["children"].values()]
    finally:
        decoy.kill()
        decoy.wait(5)


@pytest.mark.integration
def test_mosquitto_is_restarted_with_the_same_config_port_and_passwords(broker, supervisors) -> None:
    sup = supervisors(backoff=Backoff(initial=0.05))
    sup.adopt(mosquitto.restart_spec(broker), broker.child)
    sup.watch()
    old = broker.child
    broker.kill()
    wait_for(lambda: broker.child is not old and all_listening(broker.host, [broker.port]), 10)
    assert sup.status()["mosquitto"].restarts == 1 and sup.status()["mosquitto"].pid == broker.child.pid
    # The same password file and ACL: a service account still logs in.
    client = mqtt.new_client(settings_for(broker, "ingest"), "test-after-restart")
    assert client.connect(broker.host, broker.port) == 0
    client.loop_start()
    try:
        wait_for(client.is_connected, 5)
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.mark.integration
def test_influxd_is_restarted_on_the_same_port_with_its_data(influxd, supervisors) -> None:
    sup = supervisors(backoff=Backoff(initial=0.05))
    with InfluxClient(InfluxConfig(influxd.url, "kept")) as influx:
        influx.create_database()
        influx.write("m v=1 1700000000000000\n")
        sup.adopt(influxdb.restart_spec(influxd), influxd.child)
        sup.watch()
        old = influxd.child
        influxd.kill()
        wait_for(lambda: influxd.child is not old and influxdb.pings(influxd.url), 30)
        assert sup.status()["influxd"].state in (State.STARTING, State.RUNNING)
        assert [r["v"] for s in influx.query('SELECT "v" FROM "m"') for r in s.rows()] == [1]
    assert httpx.get(f"{influxd.url}/ping", timeout=2).status_code == 204
