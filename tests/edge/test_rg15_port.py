"""RG15Port against the simulated RG-15 over a real pseudo-terminal and pyserial."""

from __future__ import annotations

import os
import queue
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.rg15 import RG15Reading
from edge.rg15_port import RG15Port
from edge.serial_link import Backoff
from firmware_sim.pty_port import PtyPort
from firmware_sim.rg15 import RG15Sim
from tests.firmware_sim.support import get_matching, wait_for


class Rig:
    """A simulated gauge on a pty and the driver reading it."""

    def __init__(self, path_for_edge: str | None = None, poll_interval: float = 0.2) -> None:
        self.pty = PtyPort("rg15")
        self.gauge = RG15Sim(self.pty, random.Random(11), tick=0.05)
        self.gauge.set_rain(0.0)
        self.gauge.start()
        self.readings: queue.Queue[tuple[RG15Reading, float]] = queue.Queue()
        self.port = RG15Port(path_for_edge or self.pty.path, lambda r, t: self.readings.put((r, t)),
                             poll_interval=poll_interval,
                             backoff=Backoff(0.02, 0.1, rng=random.Random(0)))

    def next_reading(self, timeout: float = 2.0) -> RG15Reading:
        return self.readings.get(timeout=timeout)[0]

    def close(self) -> None:
        self.port.stop()
        self.gauge.stop()
        self.pty.close()


@pytest.fixture
def rig() -> Iterator[Rig]:
    r = Rig()
    r.port.start()
    yield r
    r.close()


def test_setup_puts_the_gauge_in_metric_high_resolution_continuous(rig: Rig) -> None:
    assert rig.port.wait_connected(2.0)
    assert wait_for(lambda: rig.gauge.settings.continuous)
    assert rig.gauge.settings.metric and rig.gauge.settings.high_resolution


def test_readings_arrive_with_the_right_values(rig: Rig) -> None:
    rig.gauge.set_totals(total_mm=1.23, event_mm=0.5)
    # The first poll may have been answered before set_totals; the next ones carry the values.
    deadline_readings = [rig.next_reading() for _ in range(3)]
    assert deadline_readings[-1] == RG15Reading(0.0, 0.5, 1.23, 0.0)
    assert rig.port.errors == 0


def test_dry_gauge_is_still_polled(rig: Rig) -> None:
    first, _ = rig.readings.get(timeout=2.0)
    second_reading, second_time = rig.readings.get(timeout=2.0)
    third_reading, third_time = rig.readings.get(timeout=2.0)
    assert first == second_reading == third_reading == RG15Reading(0.0, 0.0, 0.0, 0.0)
    assert 0.1 < third_time - second_time < 0.5  # poll_interval 0.2 s


def test_rain_is_reported_continuously_and_adds_up(rig: Rig) -> None:
    assert wait_for(lambda: rig.gauge.settings.continuous)
    rig.gauge.time_scale = 100.0  # each 0.05 s tick is 5 s of rain
    rig.gauge.set_rain(36.0)  # 0.05 mm per tick
    got: list[RG15Reading] = []
    while len(got) < 15:
        got.append(rig.next_reading())
    rig.gauge.set_rain(0.0)
    rainy = [r for r in got if r.rain_intensity == 36.0]
    assert len(rainy) >= 10
    totals = [r.total_accumulation for r in got]
    assert totals == sorted(totals)
    # Acc is "since the last read": summed over the readings it is the growth of TotalAcc.
    accumulated = sum(r.accumulation for r in got[1:])
    assert accumulated == pytest.approx(totals[-1] - totals[0], abs=0.011)
    assert totals[-1] - totals[0] >= 0.4


def test_garbage_line_is_counted_and_the_next_good_line_still_arrives(rig: Rig) -> None:
    rig.next_reading()
    rig.gauge.set_totals(total_mm=2.5)
    rig.pty.write_line("Acc  0.00 mm, EventAcc  ####")
    rig.pty.write(b"\xff\xfe\x00\r\n")
    assert wait_for(lambda: rig.port.errors == 2)
    # Readings that came before the garbage are skipped; the one after it must arrive.
    get_matching(rig.readings, lambda item: item[0].total_accumulation == 2.5)
    assert rig.port.errors == 2
    assert rig.port.readings >= 2


def test_callback_failure_does_not_stop_the_reader(rig: Rig) -> None:
    calls: list[RG15Reading] = []

    def flaky(reading: RG15Reading, when: float) -> None:
        calls.append(reading)
        if len(calls) == 1:
            raise RuntimeError("consumer bug")

    rig.port.stop()
    port = RG15Port(rig.pty.path, flaky, poll_interval=0.1)
    port.start()
    try:
        assert wait_for(lambda: len(calls) >= 3)
        assert port.callback_errors == 1
    finally:
        port.stop()


def test_reconnects_when_the_device_comes_back(tmp_path: Path) -> None:
    # /dev/serial/by-id style: the edge opens a stable symlink, the device behind it changes.
    link = tmp_path / "ttyRG15"
    first = Rig()
    os.symlink(first.pty.path, link)
    first.port = RG15Port(str(link), lambda r, t: first.readings.put((r, t)), poll_interval=0.1,
                          backoff=Backoff(0.02, 0.1, rng=random.Random(0)))
    second: Rig | None = None
    first.port.start()
    try:
        first.next_reading()
        # Unplug: the pty disappears under the open port.
        first.gauge.stop()
        first.pty.close()
        assert wait_for(lambda: not first.port.connected)
        second = Rig()
        second.gauge.set_totals(total_mm=7.77)
        os.unlink(link)
        os.symlink(second.pty.path, link)
        assert wait_for(lambda: first.port.reconnects == 1, timeout=3.0)
        get_matching(first.readings, lambda item: item[0].total_accumulation == 7.77)
        assert second.gauge.settings.metric  # set up again after reconnecting
    finally:
        first.port.stop()
        if second is not None:
            second.close()
        first.close()


def test_stop_without_device_returns_promptly(tmp_path: Path) -> None:
    port = RG15Port(str(tmp_path / "missing"), lambda r, t: None,
                    backoff=Backoff(0.05, 0.2, rng=random.Random(0)))
    port.start()
    assert not port.wait_connected(0.3)
    port.stop(timeout=2.0)
    assert not port.connected


def test_poll_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="poll_interval"):
        RG15Port("/dev/null", lambda r, t: None, poll_interval=0)
