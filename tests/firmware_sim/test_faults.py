"""The fault hooks of the simulated firmware and the fault actions, over real ptys read with pyserial."""

from __future__ import annotations

import os
import random
import select
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import serial

from firmware_sim import pty_port
from firmware_sim.air import Air
from firmware_sim.faults import Garbage, Truncate, Unplug, UsbPort, link_name, remove_stale_link
from firmware_sim.pty_port import PtyPort
from firmware_sim.rak3172 import P2P_MODE, RAK3172Sim
from firmware_sim.rg15 import BOOT_HEADER, RG15Sim
from firmware_sim.rn2483 import VERSION, RN2483Sim
from firmware_sim.scenario_file import FaultKind, FaultSpec
from tests.firmware_sim.support import wait_for


@pytest.fixture
def pty() -> Iterator[PtyPort]:
    port = PtyPort("test")
    yield port
    port.close()


def read_lines(edge: serial.Serial, count: int, timeout: float = 2.0) -> list[bytes]:
    """count CRLF-terminated lines from the edge side of a pty."""
    lines: list[bytes] = []
    deadline = time.monotonic() + timeout
    buffer = b""
    while len(lines) < count and time.monotonic() < deadline:
        buffer += edge.read(max(1, edge.in_waiting))
        *done, buffer = buffer.split(b"\r\n")
        lines.extend(done)
    return lines


def spec(kind: FaultKind, target: str = "gw-1/rg15", **fields: object) -> FaultSpec:
    return FaultSpec(0, kind, target, 0.0, **fields)  # type: ignore[arg-type]


# --- PtyPort ---

def test_truncate_cuts_only_matching_lines_and_keeps_the_rest(pty: PtyPort) -> None:
    with serial.Serial(pty.path, 9600, timeout=0.2) as edge:
        pty.truncate(lines=2, keep=5, prefix="Acc")
        for text in ("c", "Acc  0.10 mm, EventAcc", "m", "Acc  0.20 mm", "Acc  0.30 mm"):
            pty.write_line(text)
        assert read_lines(edge, 5) == [b"c", b"Acc  ", b"m", b"Acc  ", b"Acc  0.30 mm"]
    assert pty.truncated_lines == 2 and list(pty.truncated) == [b"Acc  ", b"Acc  "]
    assert pty.truncation_pending == 0


def test_truncate_without_newline_runs_into_the_next_line_and_halves_by_default(pty: PtyPort) -> None:
    with serial.Serial(pty.path, 9600, timeout=0.2) as edge:
        pty.truncate(newline=False)
        pty.write_line("radio_rx  0102")
        pty.write_line("ok")
        assert read_lines(edge, 1) == [b"radio_rok"]  # half of the 14 bytes, then the next line
    with pytest.raises(ValueError, match="lines >= 1"):
        pty.truncate(lines=0)


def test_inject_lands_between_lines_never_inside_one(pty: PtyPort) -> None:
    stop = threading.Event()

    def talk() -> None:
        while not stop.is_set():
            pty.write_line("Acc  0.00 mm, EventAcc  0.00 mm, TotalAcc  1.23 mm, RInt  0.00 mmph")
            time.sleep(0.0005)  # a writer that never paused would starve the injections (the lock is not fair)

    with serial.Serial(pty.path, 9600, timeout=0.2) as edge:
        writer = threading.Thread(target=talk)
        writer.start()
        try:
            for _ in range(20):
                pty.inject(b"\x00\xff" * 20 + b"\r\n")
            lines = read_lines(edge, 400, timeout=5.0)
        finally:
            stop.set()
            writer.join()
    assert {line for line in lines if not line.startswith(b"Acc")} == {b"\x00\xff" * 20}
    assert all(line.endswith(b"mmph") for line in lines if line.startswith(b"Acc"))
    assert pty.injected_bytes == 20 * 42


def test_a_closed_port_reads_nothing_for_the_whole_timeout(pty: PtyPort) -> None:
    pty.close()
    started = time.monotonic()
    assert pty.read_line(0.2) is None
    assert time.monotonic() - started >= 0.19  # waits like a silent UART: a firmware loop does not spin
    pty.write_line("lost")  # neither raises nor counts
    pty.inject(b"noise")
    assert pty.injected_bytes == 0


def test_close_never_frees_the_descriptor_under_a_reader_in_select(
        pty: PtyPort, monkeypatch: pytest.MonkeyPatch) -> None:
    # Were the fd closed while the firmware thread sits in select, the next open in the process (the
    # edge's own port, say) could get its number and the firmware would read someone else's bytes.
    inside, release = threading.Event(), threading.Event()

    def slow_select(r: list[int], w: list[int], x: list[int], timeout: float) -> tuple[list[int], ...]:
        if r:  # the reader: hold it inside select until the test lets go
            inside.set()
            release.wait(2.0)
        return select.select(r, w, x, timeout)

    monkeypatch.setattr(pty_port, "select", SimpleNamespace(select=slow_select))
    results: list[bytes | None] = []
    reader = threading.Thread(target=lambda: results.append(pty.read_line(0.3)))
    reader.start()
    assert inside.wait(2.0)
    closer = threading.Thread(target=pty.close)
    closer.start()
    closer.join(0.2)
    closed_under_the_reader = not closer.is_alive()
    release.set()
    closer.join(2.0)
    reader.join(2.0)
    assert not closed_under_the_reader
    assert pty.closed and results == [None]


# --- Air ---

def test_a_muted_node_is_lost_until_the_mute_ends() -> None:
    now = [0.0]
    air = Air(clock=lambda: now[0])
    heard: list[bytes] = []
    air.attach_modem(heard.append)
    loud, quiet = bytes.fromhex("0A0B0C01") + bytes(12), bytes.fromhex("0A0B0C02") + bytes(12)
    air.mute("0a0b0c02", until=10.0)
    air.transmit(loud)
    air.transmit(quiet)
    assert heard == [loud] and air.muted_uplinks == 1 and air.is_muted("0A0B0C02")
    now[0] = 10.0
    air.transmit(quiet)
    assert heard == [loud, quiet] and not air.is_muted("0A0B0C02")
    air.mute("0A0B0C01")  # no end: until unmute
    now[0] = 1e9
    air.transmit(loud)
    assert air.muted_uplinks == 2
    air.unmute("0A0B0C01")
    air.transmit(loud)
    assert heard[-1] == loud and air.uplinks == 5


# --- the firmware's fault hooks ---

def test_a_silent_gauge_neither_answers_nor_reports_then_resumes(pty: PtyPort) -> None:
    gauge = RG15Sim(pty, random.Random(1), tick=0.02, time_scale=100, power_up_header=False)
    gauge.set_rain(360.0)  # 0.2 mm per tick: a continuous line (0.01 in) every other tick
    gauge.command("C")
    gauge.start()
    try:
        with serial.Serial(pty.path, 9600, timeout=0.1) as edge:
            assert read_lines(edge, 2)  # continuous lines flow
            gauge.silence(until=time.monotonic() + 0.3)
            sent, total = gauge.readings_sent, gauge.total_mm
            edge.reset_input_buffer()
            edge.write(b"R\n")
            time.sleep(0.15)
            assert edge.read(edge.in_waiting) == b""
            assert gauge.silent and gauge.ignored_commands == 1
            assert gauge.readings_sent == sent  # nothing read out: the rain meanwhile stays in Acc
            assert wait_for(lambda: not gauge.silent)  # ends on its own
            assert gauge.total_mm - total >= 1.0  # 0.3 s of 0.2 mm ticks: the optics kept counting
            edge.write(b"R\n")
            assert any(line.startswith(b"Acc") for line in read_lines(edge, 1))
    finally:
        gauge.stop()


def test_gauge_restart_is_a_power_cycle(pty: PtyPort) -> None:
    gauge = RG15Sim(pty, random.Random(1), power_up_header=False)
    gauge.command("M")
    gauge.set_totals(total_mm=5.0)
    with serial.Serial(pty.path, 9600, timeout=0.1) as edge:
        edge.reset_input_buffer()
        gauge.restart()
        assert read_lines(edge, len(BOOT_HEADER)) == [line.encode() for line in BOOT_HEADER]
    assert not gauge.settings.metric and gauge.total_mm == 0 and gauge.restarts == 1


def test_rn2483_reset_prints_its_banner_and_forgets_the_receiver(pty: PtyPort) -> None:
    modem = RN2483Sim(pty, Air())
    with serial.Serial(pty.path, 57600, timeout=0.1) as edge:
        for command in ("mac pause", "radio set wdt 0", "radio rx 0"):
            modem.command(command)
        assert modem.armed
        edge.reset_input_buffer()
        modem.reset()
        assert read_lines(edge, 1) == [VERSION.encode()]
        # Tuples, not chained asserts: mypy would take the earlier assert modem.armed as still true.
        assert (modem.armed, modem.paused, modem.wdt_ms, modem.resets) == (False, False, 15000, 1)
        modem.command("radio rx 0")  # the LoRaWAN stack is running again: busy until mac pause
        assert read_lines(edge, 1) == [b"busy"]


def test_every_firmware_moves_to_a_replaced_port(pty: PtyPort) -> None:
    sims: list[RG15Sim | RN2483Sim | RAK3172Sim] = [
        RG15Sim(pty, random.Random(1), power_up_header=False), RN2483Sim(pty, Air()),
        RAK3172Sim(pty, Air(), work_mode=P2P_MODE)]
    expected = [b"m", VERSION.encode(), b"OK"]
    for sim, line in zip(sims, expected, strict=True):
        new = PtyPort("replugged")
        try:
            sim.replace_port(new)
            with serial.Serial(new.path, 9600, timeout=0.1) as edge:
                sim.start()
                edge.write(b"M\r\n" if isinstance(sim, RG15Sim) else
                           b"sys get ver\r\n" if isinstance(sim, RN2483Sim) else b"AT\r\n")
                assert line in read_lines(edge, 2 if isinstance(sim, RAK3172Sim) else 1)
        finally:
            sim.stop()
            new.close()


# --- the actions ---

def gauge_usb(tmp_path: Path, pty: PtyPort) -> UsbPort:
    usb = UsbPort("gw-1", "rg15", RG15Sim(pty, random.Random(1), power_up_header=False),
                  tmp_path / link_name("gw-1", "rg15"))
    usb.point_link()
    return usb


def test_garbage_is_seeded_noise_without_line_ends(tmp_path: Path, pty: PtyPort) -> None:
    usb = gauge_usb(tmp_path, pty)
    with serial.Serial(str(usb.link), 9600, timeout=0.1) as edge:
        action = Garbage(spec(FaultKind.GARBAGE, bytes=300), usb, random.Random("1/faults/0"))
        assert action.begin().startswith("300 bytes + CRLF")
        data = edge.read(302)
    assert len(data) == 302 and data.endswith(b"\r\n") and b"\n" not in data[:-2] and b"\r" not in data[:-2]
    again = Garbage(spec(FaultKind.GARBAGE, bytes=300), usb, random.Random("1/faults/0"))
    with serial.Serial(str(usb.link), 9600, timeout=0.1) as edge:
        again.begin()
        assert edge.read(302) == data  # the same seed, the same noise
    assert action.bytes_sent == 300


def test_truncate_cuts_the_data_lines_of_each_device(tmp_path: Path, pty: PtyPort) -> None:
    usb = gauge_usb(tmp_path, pty)
    assert Truncate(spec(FaultKind.TRUNCATE), usb).prefix == "Acc"
    modems: list[RN2483Sim | RAK3172Sim] = [RN2483Sim(pty, Air()), RAK3172Sim(pty, Air())]
    prefixes = [Truncate(spec(FaultKind.TRUNCATE), UsbPort("gw-1", "lora", m, usb.link)).prefix for m in modems]
    assert prefixes == ["radio_rx", "+EVT:RXP2P"]
    assert Truncate(spec(FaultKind.TRUNCATE, prefix="ok"), usb).prefix == "ok"


def test_unplug_removes_the_path_and_replug_points_it_at_a_new_pty(tmp_path: Path, pty: PtyPort) -> None:
    usb = gauge_usb(tmp_path, pty)
    gauge = usb.firmware
    assert isinstance(gauge, RG15Sim)
    action = Unplug(spec(FaultKind.UNPLUG, span=60.0), usb)
    assert not action.power_cycle  # a rain gauge has its own supply
    with serial.Serial(str(usb.link), 9600, timeout=0.1) as edge:
        action.begin()
        assert (os.path.lexists(usb.link), pty.closed, usb.plugged) == (False, True, False)
        with pytest.raises(serial.SerialException):
            edge.read(1)  # the edge's open port fails, as with a pulled adapter
    with pytest.raises(serial.SerialException):
        serial.Serial(str(usb.link), 9600)
    assert "already unplugged" in usb.unplug()
    action.end()
    try:
        assert (usb.plugged, usb.replugs, gauge.port is pty, gauge.port.closed) == (True, 1, False, False)
        assert usb.link.is_symlink() and os.readlink(usb.link) == gauge.port.path
        with serial.Serial(str(usb.link), 9600, timeout=0.5) as edge:
            gauge.command("M")
            assert read_lines(edge, 1) == [b"m"]
        assert "already plugged in" in usb.replug(power_cycle=False)
    finally:
        usb.close()
    assert (os.path.lexists(usb.link), gauge.port.closed) == (False, True)


def test_a_replugged_modem_boots_again(tmp_path: Path, pty: PtyPort) -> None:
    modem = RN2483Sim(pty, Air())
    modem.command("mac pause")
    usb = UsbPort("gw-1", "lora", modem, tmp_path / link_name("gw-1", "lora"))
    usb.point_link()
    action = Unplug(spec(FaultKind.UNPLUG, target="gw-1/lora", span=60.0), usb)
    assert action.power_cycle  # a modem on a USB board is powered by it
    action.begin()
    assert "(device rebooted)" in action.end()
    try:
        assert not modem.paused and modem.resets == 1
    finally:
        usb.close()


def test_link_names_are_safe_file_names(tmp_path: Path) -> None:
    assert link_name("gw-vs-01", "rg15") == "usb-smartcity-sim_gw-vs-01_rg15-if00"
    assert "/" not in link_name("gw-1", "../../etc/passwd")
    stale = tmp_path / "stale"
    stale.symlink_to("/dev/pts/999")
    remove_stale_link(stale)
    assert not os.path.lexists(stale)
    real = tmp_path / "real"
    real.write_text("mine")
    with pytest.raises(FileExistsError, match="not a symlink"):
        remove_stale_link(real)
    assert real.read_text() == "mine"
