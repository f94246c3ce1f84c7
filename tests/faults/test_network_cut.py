"""A network cut between one gateway's agent and the broker, in the middle of the stream, then restored.

The agent reaches mosquitto through a TcpProxy (tests/faults/tcp_proxy.py); the cut resets its
connection and refuses new ones for SMARTCITY_FAULT_CUT_SECONDS (10 s in CI; minutes in the long
form). The agent keeps reading into its durable queue; after the cut every reading it accepted is
stored once, its commands are acked once, and nothing of the other gateway is disturbed.
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
from tests.faults.conftest import CUT_SECONDS, RUNS
from tests.faults.pipeline import Restart

pytestmark = pytest.mark.integration

CUT_GATEWAY = "gw-vs-01"


@pytest.mark.timeout(CUT_SECONDS + 110)
@pytest.mark.parametrize("run", range(RUNS))
def test_a_cut_uplink_queues_and_delivers_everything_once_restored(city_factory, report, run):
    city = city_factory(proxied_user=CUT_GATEWAY)
    assert city.proxy is not None
    wait_for_stream(city)
    steady(4)
    cut_at = time.time()
    city.proxy.cut()
    time.sleep(CUT_SECONDS)
    # The cut gateway's readings queued meanwhile: none of them was stored during the cut.
    during = city.query(f"""SELECT count("power") FROM "street_light" WHERE "gateway" = '{CUT_GATEWAY}' """
                        f"AND time >= {int((cut_at + 1) * 1000)}ms")
    city.proxy.restore()
    restored = Restart(f"network {CUT_GATEWAY}", cut_at, time.time())
    recover = time_to_recover(city, restored, gateway=CUT_GATEWAY)
    steady(3)
    t = drain_and_tally(city, f"network cut {CUT_SECONDS:g} s ({CUT_GATEWAY} <-> broker)", run)
    t.recover_s = recover
    t.notes.append(f"stored during the cut: {during}; reconnect after restore took {recover} s "
                   "(paho's backoff doubles up to 30 s)")
    report(t)
    assert during == []
    assert_every_accepted_reading_stored_once(t)
    assert_no_batch_missing(t)
    assert_loss_counted(t)
    assert_every_command_acked_once(t)
    assert t.lost_frames[CUT_GATEWAY] == 0  # the agent kept listening to the radio all along
    assert clean_exits(city) == {}, city.exits
    assert city.logs_with_tracebacks() == {}
