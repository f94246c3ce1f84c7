"""Restart with a state directory: a `for` in progress is not restarted, an active slot does not fire again."""

import time

import pytest

from core.errors import ConfigError
from rules import snapshot_file
from tests.conftest import wait_for
from tests.rules.test_service import presence, rules_text, value

pytestmark = pytest.mark.integration


HOLD = 3.0


def test_a_restart_mid_for_neither_restarts_the_duration_nor_fires_twice(env):
    env.city.rules.write_text(rules_text(for_=f"{HOLD}s"))
    first = env.start()
    started = time.monotonic()
    env.publish("gw-vs-01", presence("vs-oc-101"))
    wait_for(lambda: value(first, "readings_used") == 1, 5)
    time.sleep(1.5)
    first.stop()  # mid-for: 1.5 of the 3 s held
    assert snapshot_file.load(first.state.path)[1]["partition"] == [0, 1]
    restarted = time.monotonic()
    second = env.start()
    wait_for(lambda: env.commands.count() == 3, 10)
    fired = env.commands.got[0][2]
    # Held since the reading, not since the restart (which would be >= restarted + HOLD).
    assert started + HOLD - 0.1 <= fired < restarted + HOLD - 0.5, (fired - started, restarted - started)
    assert value(second, "readings_used") == 0  # the presence came from the snapshot, not a new reading
    second.stop()
    third = env.start()
    env.publish("gw-vs-01", presence("vs-oc-101", seq=1))  # still present: the slot is active already
    wait_for(lambda: value(third, "readings_used") == 1, 5)
    time.sleep(HOLD + 0.5)
    assert env.commands.count() == 3, env.commands.levels()
    assert value(third, "evaluations") > 10


def test_snapshots_are_written_periodically(env):
    service = env.start(snapshot_interval=0.2)
    env.publish("gw-vs-01", presence("vs-oc-101"))
    wait_for(lambda: value(service, "snapshots") >= 2, 5)
    state, meta = snapshot_file.load(service.state.path)
    assert "vs-oc-101/presence" in state["series_keys"]
    assert meta["topics"] == list(service.runtime.topics)


def test_a_corrupt_snapshot_starts_afresh_counted_and_kept_aside(env):
    path = env.city.state / "rules" / "state-0of1.npz"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PK\x03\x04 this is no longer a zip file")
    service = env.start()
    assert value(service, "snapshot_load_failures") == 1
    assert path.with_name("state-0of1.npz.corrupt").exists()
    env.publish("gw-vs-01", presence("vs-oc-101"))
    wait_for(lambda: env.commands.count() == 3, 5)
    service.stop()
    assert snapshot_file.load(path)[0]["series_keys"]  # the next snapshot is whole again


def test_without_a_state_dir_nothing_is_written(env, tmp_path):
    service = env.start(state_dir=None)
    env.publish("gw-vs-01", presence("vs-oc-101"))
    wait_for(lambda: value(service, "readings_used") == 1, 5)
    service.stop()
    assert service.state.path is None and not env.city.state.exists()


def test_a_second_worker_of_the_same_partition_and_state_dir_is_refused(env):
    first = env.start()
    with pytest.raises(ConfigError, match=r"state-0of1.lock is held by another rules worker \(pid \d+\)"):
        env.start(client_id="another")
    first.stop()
    env.start(client_id="another")  # the lock went with the first worker
