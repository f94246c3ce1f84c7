"""kill -9, then start again on the same ports and state, of each part, in the middle of a steady stream.

After each: every reading an agent accepted is stored once, every command has exactly one final ack,
the frames that went out over the air while no agent listened are counted (lost_frames), and the time
from the restart to the first new reading stored is measured.
"""

from __future__ import annotations

import time

import pytest

from tests.faults.accounting import drain_and_tally, time_to_recover
from tests.faults.checks import (
    assert_every_accepted_reading_stored_once,
    assert_every_command_acked_once,
    assert_loss_counted,
    assert_no_batch_missing,
    clean_exits,
    steady,
    wait_for_stream,
)
from tests.faults.conftest import RUNS

pytestmark = pytest.mark.integration

KILLED_EDGE = "gw-ws-01"
# mosquitto: the ingest's plain persistent subscription (the single worker's, as the demo and the units run it)
# is restored from the broker's persistence, so what the agents publish before the ingest is back waits for it
# (a shared one is not: test_mosquitto_shared_session.py); a redelivered ack is the same point (its own time).
PARTS = ["mosquitto", "influxd", "ingest", "rules", f"edge-{KILLED_EDGE}"]
BEFORE, DOWN, AFTER = 4.0, 2.0, 4.0  # seconds of stream before the kill, while down, after recovery


@pytest.mark.parametrize("run", range(RUNS))
@pytest.mark.parametrize("part", PARTS)
def test_kill_and_restart_loses_nothing_accepted(city_factory, report, part, run):
    city = city_factory()
    wait_for_stream(city)
    steady(BEFORE)
    began = time.monotonic()
    killed_at = city.kill(part)
    time.sleep(DOWN)
    restart = city.restart(part, killed_at)
    recover = time_to_recover(city, restart)
    steady(AFTER)
    t = drain_and_tally(city, f"kill -9 {part}", run)
    t.recover_s = recover
    killed_gw = part.removeprefix("edge-") if part.startswith("edge-") else None
    if killed_gw:
        t.notes.append(f"{killed_gw}: frames lost while its agent was down: {t.lost_frames[killed_gw]}")
    report(t)
    assert_every_accepted_reading_stored_once(t, killed_gateway=killed_gw,
                                              run_seconds=time.monotonic() - began + BEFORE)
    assert_no_batch_missing(t)
    assert_loss_counted(t)
    assert_every_command_acked_once(t)
    assert clean_exits(city, part) == {}, city.exits
    assert city.logs_with_tracebacks() == {}
