"""A broker restart while the ingest is away a few seconds longer than the gateways.

The ingest's link to mosquitto goes through a TcpProxy. It is cut, then mosquitto is killed (-9) and
started again on the same port and persistence, the gateways reconnect and publish, and only then
does the ingest come back: its persistent session (client id, session expiry 24 h) keeps every
message published meanwhile. The ingest runs one worker on a plain subscription, which mosquitto
2.0.11 restores from its persistence; a shared subscription it does not restore, and then this test
lost ~1,100 of ~2,400 readings per run (test_mosquitto_shared_session.py pins the broker's behaviour).
"""

from __future__ import annotations

import time

import pytest

from deploy.mosquitto import DEFAULT_AUTOSAVE_SECONDS
from tests.faults.accounting import drain_and_tally, time_to_recover
from tests.faults.checks import steady, wait_for_stream
from tests.faults.conftest import RUNS
from tests.faults.pipeline import City

pytestmark = pytest.mark.integration

AWAY = 4.0  # seconds the ingest stays away after the broker is back
AUTOSAVE = float(DEFAULT_AUTOSAVE_SECONDS)
SLACK = 1.0  # a reading's time is when the device sent it; the agent publishes it up to a flush later


def lost_reading_times(city: City) -> list[float]:
    """Times (unix s) of the readings the tap saw published that InfluxDB does not have."""
    assert city.tap is not None
    lost: list[float] = []
    for devices in city.tap.readings.values():
        for device, published in devices.items():
            kind = city.registry.devices[device].kind
            rows = city.influx.query(f"SELECT * FROM \"{kind}\" WHERE \"device\" = '{device}'", epoch="u")
            stored = {int(row["time"]) for s in rows for row in s.rows()}
            lost.extend(t / 1e6 for t in {t for _, t in published} - stored)
    return lost


@pytest.mark.xfail(strict=True, reason=(
    "DEFECT (open): with the ingest's link cut, a kill -9 and restart of mosquitto still loses ~300 of ~2,300 "
    "readings (was ~1,100 with the shared subscription), with reading times from ~5 s before to ~6 s after "
    "the kill: more than the broker's 1 s autosave window explains; not yet understood (docs/reliability.md)"))
@pytest.mark.parametrize("run", range(RUNS))
def test_readings_published_while_the_ingest_reconnects_to_a_restarted_broker_are_kept(
        city_factory, report, run):
    city = city_factory(proxied_user="ingest")
    assert city.proxy is not None
    wait_for_stream(city)
    steady(3)
    city.proxy.cut()  # the ingest is away; its session queues what is published
    steady(2)  # longer than mosquitto's autosave interval (1 s): the session is on disk
    killed_at = city.kill("mosquitto")
    restart = city.restart("mosquitto", killed_at)
    time.sleep(AWAY)
    city.proxy.restore()
    t_restore = time.time()
    recover = time_to_recover(city, restart)
    steady(2)
    t = drain_and_tally(city, f"kill -9 mosquitto, ingest back {AWAY:g} s later", run)
    t.recover_s = recover
    t.notes.append(f"lost: {sum(t.accepted.values()) - sum(t.stored.values())} readings accepted (and published "
                   f"to the broker: tap {sum(t.published.values())}) but never stored; ingest back at +"
                   f"{t_restore - restart.restarted_at:.1f} s")
    lost = lost_reading_times(city)
    t.notes.append(f"lost readings' times relative to the kill: {min(lost, default=0) - killed_at:+.2f} s to "
                   f"{max(lost, default=0) - killed_at:+.2f} s" if lost else "none lost")
    report(t)
    # mosquitto saves its persistence every AUTOSAVE s (deploy/mosquitto.py): a kill -9 loses what the offline
    # session was queued since the last save, and nothing older. (Stored before the fix: ~1,100 of ~2,400 lost,
    # everything published until the ingest came back: the shared subscription was not restored.)
    too_old = [x for x in lost if x < killed_at - AUTOSAVE - SLACK]
    assert not too_old, f"{len(too_old)} of {len(lost)} lost readings older than the broker's last save"
    assert all(x <= killed_at + SLACK for x in lost), "readings published after the restart were lost"
