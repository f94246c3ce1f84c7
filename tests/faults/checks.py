"""The assertions every fault run ends with, shared by the fault tests."""

from __future__ import annotations

import time

from tests.conftest import wait_for
from tests.faults.accounting import Tally
from tests.faults.pipeline import STATUS_INTERVAL, City

STREAM_TIMEOUT = 40.0  # the first readings of both gateways stored (several Python processes start on 2 cores)


def wait_for_stream(city: City) -> None:
    """Until both gateways' readings arrive in InfluxDB (the steady stream the faults interrupt)."""
    gateways = set(city.registry.gateways)

    def flowing() -> bool:
        rows = city.query('SELECT last("power") FROM "street_light" GROUP BY "gateway"')
        return {str(r["gateway"]) for r in rows} == gateways

    wait_for(flowing, STREAM_TIMEOUT, what="readings of every gateway stored")


def steady(seconds: float) -> None:
    """Let the stream run (the faults happen in the middle of it)."""
    time.sleep(seconds)


def unreported_bound(t: Tally, gateway: str, seconds: float) -> int:
    """Readings an agent can read in ``seconds`` at its own rate (a killed run's last report is that old)."""
    runtime = max(1.0, seconds)
    return int(t.accepted[gateway] / runtime * (STATUS_INTERVAL + 0.5)) + 10


def assert_every_accepted_reading_stored_once(t: Tally, *, killed_gateway: str | None = None,
                                              run_seconds: float = 20.0) -> None:
    """stored == accepted per gateway (a lost reading or two readings on one series+time show as less).

    For a gateway whose agent was killed with -9 the killed run's last report undercounts by what
    it read after that report: then accepted <= stored <= accepted + that much at its rate.
    """
    for gw, accepted in t.accepted.items():
        assert accepted > 0, (gw, t)
        stored = t.stored[gw]
        if gw == killed_gateway:
            bound = unreported_bound(t, gw, run_seconds)
            assert accepted <= stored <= accepted + bound, (gw, accepted, stored, bound)
            t.notes.append(f"{gw}: {stored - accepted} readings read after the killed run's last health report "
                           f"(bound {bound})")
        else:
            assert stored == accepted, (gw, "stored", stored, "accepted", accepted)


def assert_every_command_acked_once(t: Tally) -> None:
    """Every command id stored has exactly one final ack (applied, rejected, expired or failed)."""
    assert t.commands > 0, "the rules sent no command: the run did not exercise the command path"
    assert t.commands_without_ack == [], f"{len(t.commands_without_ack)} commands of {t.commands} never acked"
    assert t.commands_with_several_acks == {}, t.commands_with_several_acks
    assert t.acks_stored_twice == {}, f"acks stored more than once (a redelivered ack message): {t.acks_stored_twice}"


def assert_no_batch_missing(t: Tally) -> None:
    """No gap in any gateway's batch sequence (a batch the broker acked but never delivered would be one)."""
    assert sum(t.seq_gaps.values()) == 0, t.seq_gaps


def clean_exits(city: City, killed: str | None = None) -> dict[str, list[int]]:
    """Return codes that are neither 0 (SIGTERM honoured) nor the -9 of the kill we made."""
    bad = {}
    for part, codes in city.exits.items():
        allowed = {0, -9} if part == killed else {0}
        if set(codes) - allowed:
            bad[part] = codes
    return bad


LOSS_SLACK = 2  # frames: a gap that straddles the start or end of the stream is measured, not lost


def assert_loss_counted(t: Tally) -> None:
    """Frames missing from the stored timeline are no more than the agents counted as lost (lost_frames).

    The timeline (accounting.missing_frames) sees a frame lost wherever it went; the agent counts a
    frame-counter gap. Physics may lose frames (nobody listened); the loss must then be counted.
    """
    hidden = {gw: (t.missing_frames[gw], t.lost_frames[gw]) for gw in t.missing_frames
              if t.missing_frames[gw] > t.lost_frames[gw] + LOSS_SLACK}
    assert hidden == {}, f"frames missing from InfluxDB but not counted by the agent (missing, counted): {hidden}"
