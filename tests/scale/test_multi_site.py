"""Two sites (a broker per gemeente) bridged to a central broker; a site's bridge link is cut, and a site
broker is killed (-9) and restarted, while its gateways publish: nothing they had acknowledged is lost.

Central broker (deploy/mosquitto.py) + a site broker per demo gemeente (deploy/mosquitto_sites.py), each
bridge going through a TcpProxy; 2 ingest workers on the share group "ingest", 2 rules workers on
partitions 0/2 (GM0626) and 1/2 (GM0629), all real subprocesses, a real influxd. The central broker is
never restarted: mosquitto 2.0.11 does not restore shared subscriptions (tests/faults/test_mosquitto_shared_session.py).

SMARTCITY_SITE_RUNS repeats the scenario; SMARTCITY_SITE_CUT_SECONDS is how long each fault lasts (3 s in CI).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from core.registry import Registry
from deploy.mosquitto import DEFAULT_AUTOSAVE_SECONDS
from tests.scale.sites import RULES_TTL, Gateway, Topology

pytestmark = pytest.mark.integration

RUNS = int(os.environ.get("SMARTCITY_SITE_RUNS", "1"))
CUT = float(os.environ.get("SMARTCITY_SITE_CUT_SECONDS", "3"))
CUT_SITE, KILL_SITE = "GM0626", "GM0629"


def all_stored(topo: Topology, targets: list[tuple[Gateway, set[int]]]) -> bool:
    return all(seqs >= acked for g, acked in targets for seqs in map(set, topo.stored(g)[0].values()))


def drained(topo: Topology, gateways: list[Gateway], timeout: float) -> float:
    """Seconds until InfluxDB holds every reading the gateways had acknowledged when this was called
    (timeout at most). What they acknowledge later is not waited for: a gateway that goes on publishing
    always has a pack or two in flight, and waiting for those would time the poll, not the backlog."""
    targets = [(g, set(g.acked)) for g in gateways]
    t0 = time.monotonic()
    while not all_stored(topo, targets) and time.monotonic() - t0 < timeout:
        time.sleep(0.1)
    return round(time.monotonic() - t0, 1)


def cut_link(topo: Topology, code: str) -> tuple[dict[str, int], float, float]:
    """Cut a site's bridge link for CUT seconds while its gateways publish: (acked during the cut per
    gateway, wall time of the restore, seconds from the restore until all of it was stored)."""
    gws = gateway_of_site(topo, code)
    before = {g.gw: len(g.acked) for g in gws}
    topo.proxies[code].cut()
    time.sleep(CUT)
    queued = {g.gw: len(g.acked) - before[g.gw] for g in gws}
    topo.proxies[code].restore()
    restored = time.time()
    return queued, restored, drained(topo, gws, 20)


def kill_site_with_backlog(topo: Topology, code: str) -> tuple[float, float]:
    """kill -9 a site broker holding uplinks queued for its bridge, restart it on the same port and store.

    The link is cut, the gateways publish, then pause longer than the autosave interval (a crash loses what
    arrived since the last save, as on the platform broker: docs/multi-site.md); kill -9; restart; the
    gateways publish again; the link comes back. Returns (wall time of the restore, seconds until stored).
    """
    gws = gateway_of_site(topo, code)
    topo.proxies[code].cut()
    time.sleep(CUT / 2)
    for g in gws:
        g.paused.set()
    time.sleep(DEFAULT_AUTOSAVE_SECONDS + 1.0)
    topo.kill_site(code)
    time.sleep(CUT / 2)
    topo.restart_site(code)
    for g in gws:
        g.paused.clear()
    time.sleep(1)
    topo.proxies[code].restore()
    restored = time.time()
    return restored, drained(topo, gws, 20)


def assert_stored_once(topo: Topology, run: int) -> None:
    """Every acknowledged reading stored, once (count() equals the distinct points), and nothing invented."""
    for gw, g in topo.gateways.items():
        seqs_by_device, counts = topo.stored(g)
        for device, seqs in seqs_by_device.items():
            missing = sorted(g.acked - set(seqs))
            print(f"run {run} {gw} {device}: acked {len(g.acked)} attempted {len(g.attempted)} "
                  f"stored {len(seqs)} missing {len(missing)}")
            assert missing == [], f"{gw}/{device}: acknowledged by the site broker, not stored: {missing[:20]}"
            assert len(seqs) == len(set(seqs)) == counts[device], f"{gw}/{device}: stored more than once"
            assert set(seqs) <= g.attempted, f"{gw}/{device}: a reading nobody published"


def assert_commands(topo: Topology, registry: Registry, restored_at: dict[str, float]) -> None:
    """After each fault, the rules' commands reach that site's gateways, for their own devices, from the
    worker owning the zone (its TTL names it: partition 0/2 owns GM0626, 1/2 GM0629)."""
    owner = {CUT_SITE: RULES_TTL[0], KILL_SITE: RULES_TTL[1]}
    for code in topo.sites:
        for g in gateway_of_site(topo, code):
            own = {d.id for d in registry.devices.values() if d.gateway == g.gw}
            assert g.commands, f"{g.gw}: no command at all"
            assert {c["device"] for _, c in g.commands} <= own, f"{g.gw}: another gateway's command"
            ttls = {round(c["expires_at"] - c["issued_at"], 1) for _, c in g.commands}
            assert ttls == {owner[code]}, f"{g.gw}: commands from the other zone's worker: {ttls}"
            after = [c for at, c in g.commands if at > restored_at[code] and c["issued_at"] > restored_at[code]]
            assert after, f"{g.gw}: no command issued after its site's link came back"
            print(f"{g.gw}: {len(g.commands)} commands, {len(after)} issued after the restore")


def gateway_of_site(topo: Topology, code: str) -> list[Gateway]:
    return [topo.gateways[gw] for gw in topo.sites[code].gateways]


@pytest.mark.timeout(110 + RUNS * (40 + 4 * CUT))
@pytest.mark.parametrize("run", range(RUNS))
def test_a_cut_or_killed_site_loses_nothing_and_commands_reach_their_site(tmp_path: Path, demo_registry: Registry,
                                                                         run: int) -> None:
    topo = Topology(tmp_path, demo_registry, clean_session=os.environ.get("SMARTCITY_SITE_BREAK") == "clean")
    try:
        topo.start()
        time.sleep(3)
        queued, cut_restored, cut_recover = cut_link(topo, CUT_SITE)
        time.sleep(2)
        kill_restored, kill_recover = kill_site_with_backlog(topo, KILL_SITE)
        time.sleep(4)
        for g in topo.gateways.values():
            g.stopping.set()
        for g in topo.gateways.values():  # its last pack may still be waiting for its PUBACK
            g.thread.join(5)
        drain = drained(topo, list(topo.gateways.values()), 30)
        print(f"run {run}: cut {CUT:g} s, {queued} acked during it, all stored {cut_recover} s after the restore; "
              f"site killed: all stored {kill_recover} s after the restore; final drain {drain} s")
        assert_stored_once(topo, run)
        assert all(n > 0 for n in queued.values()), f"the cut site published nothing during the cut: {queued}"
        assert_commands(topo, demo_registry, {CUT_SITE: cut_restored, KILL_SITE: kill_restored})
        assert topo.tracebacks() == {}
    finally:
        topo.stop()
