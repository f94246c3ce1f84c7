"""The simulated RG-15 firmware, byte for byte over a real pty."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
import serial

from firmware_sim.pty_port import PtyPort
from firmware_sim.rg15 import BOOT_HEADER, RainModel, RG15Sim


@pytest.fixture
def gauge() -> Iterator[RG15Sim]:
    port = PtyPort("rg15")
    sim = RG15Sim(port, random.Random(1), tick=0.05)
    sim.set_rain(0.0)
    sim.start()
    yield sim
    sim.stop()
    port.close()


@pytest.fixture
def edge(gauge: RG15Sim) -> Iterator[serial.Serial]:
    with serial.Serial(gauge.port.path, 9600, timeout=1.0) as port:
        yield port


def ask(edge: serial.Serial, command: bytes) -> bytes:
    edge.write(command)
    return edge.readline()


def test_power_up_defaults_are_imperial_low_resolution(gauge: RG15Sim, edge: serial.Serial) -> None:
    gauge.set_totals(total_mm=12.7)
    assert ask(edge, b"R\n") == b"Acc 0.00 in, EventAcc 0.00 in, TotalAcc 0.50 in, RInt 0.00 iph\r\n"


def test_metric_high_resolution_line_is_byte_exact(gauge: RG15Sim, edge: serial.Serial) -> None:
    assert ask(edge, b"M\r\n") == b"m\r\n"
    edge.write(b"H\r\n")  # no reply
    gauge.set_totals(total_mm=1.23)
    assert ask(edge, b"R\r\n") == b"Acc  0.00 mm, EventAcc  0.00 mm, TotalAcc  1.23 mm, RInt  0.00 mmph\r\n"


def test_metric_low_resolution_floors_to_0_2_mm(gauge: RG15Sim, edge: serial.Serial) -> None:
    ask(edge, b"M\n")
    gauge.set_totals(total_mm=1.39, event_mm=0.19)
    assert ask(edge, b"R\n") == b"Acc  0.0 mm, EventAcc  0.0 mm, TotalAcc  1.2 mm, RInt  0.0 mmph\r\n"


def test_imperial_high_resolution(gauge: RG15Sim, edge: serial.Serial) -> None:
    edge.write(b"H\n")
    assert ask(edge, b"I\n") == b"i\r\n"
    gauge.set_totals(total_mm=25.4, event_mm=0.0254, acc_mm=0.0254)
    assert ask(edge, b"R\n") == b"Acc 0.001 in, EventAcc 0.001 in, TotalAcc 1.000 in, RInt 0.000 iph\r\n"


def test_commands_are_case_insensitive_and_read_clears_acc(gauge: RG15Sim, edge: serial.Serial) -> None:
    ask(edge, b"m\n")
    edge.write(b"h\n")
    gauge.set_totals(total_mm=2.0, event_mm=1.0, acc_mm=0.555)
    assert ask(edge, b"r\n").startswith(b"Acc  0.55 mm, EventAcc  1.00 mm, TotalAcc  2.00 mm")
    # Acc is "since the last read"; the 0.005 mm below the resolution is kept for later.
    assert ask(edge, b"R\n").startswith(b"Acc  0.00 mm,")
    assert gauge.acc_mm == pytest.approx(0.005)


def test_mode_and_baud_replies(gauge: RG15Sim, edge: serial.Serial) -> None:
    assert ask(edge, b"P\n") == b"p\r\n"
    assert ask(edge, b"C\n") == b"c\r\n"
    assert ask(edge, b"B3\n") == b"Baud 9600\r\n"
    assert ask(edge, b"B6\n") == b"Baud 57600\r\n"
    assert ask(edge, b"B\n") == b"Baud 57600\r\n"
    assert gauge.settings.continuous


def test_silent_commands(gauge: RG15Sim, edge: serial.Serial) -> None:
    for command in (b"H\n", b"L\n", b"X\n", b"Y\n", b"S\n", b"O\n", b"Z\n", b"B9\n"):
        edge.write(command)
    edge.timeout = 0.3
    assert edge.read(100) == b""
    assert gauge.unknown_commands == 2  # Z and B9


def test_o_resets_accumulation(gauge: RG15Sim, edge: serial.Serial) -> None:
    ask(edge, b"M\n")
    gauge.set_totals(total_mm=5.0, event_mm=5.0)
    edge.write(b"O\n")
    assert ask(edge, b"R\n") == b"Acc  0.0 mm, EventAcc  0.0 mm, TotalAcc  0.0 mm, RInt  0.0 mmph\r\n"


def test_a_reads_accumulation(gauge: RG15Sim, edge: serial.Serial) -> None:
    ask(edge, b"M\n")
    edge.write(b"H\n")
    gauge.set_totals(total_mm=1.0, acc_mm=0.42)
    assert ask(edge, b"A\n") == b"Acc  0.42 mm\r\n"


def test_command_runs_on_lf_only(gauge: RG15Sim, edge: serial.Serial) -> None:
    edge.write(b"P\r")
    edge.timeout = 0.2
    assert edge.read(10) == b""
    edge.write(b"\n")
    edge.timeout = 1.0
    assert edge.readline() == b"p\r\n"


def test_k_restarts_with_boot_header(gauge: RG15Sim, edge: serial.Serial) -> None:
    ask(edge, b"M\n")
    gauge.set_totals(total_mm=3.0)
    edge.write(b"K\n")
    header = [edge.readline() for _ in BOOT_HEADER]
    assert header == [line.encode() + b"\r\n" for line in BOOT_HEADER]
    assert header[0].startswith(b";")
    assert gauge.total_mm == 0.0
    assert not gauge.settings.metric


def test_continuous_mode_reports_when_accumulation_changes(gauge: RG15Sim, edge: serial.Serial) -> None:
    ask(edge, b"M\n")
    edge.write(b"H\n")
    ask(edge, b"C\n")
    edge.timeout = 0.3
    assert edge.read(100) == b""  # dry: nothing changes, nothing is sent
    gauge.time_scale = 100.0  # each 0.05 s tick is 5 s of rain
    gauge.set_rain(36.0)  # 0.05 mm per tick
    edge.timeout = 2.0
    lines = [edge.readline() for _ in range(3)]
    for line in lines:
        assert line.startswith(b"Acc  0.0"), line
        assert line.endswith(b"RInt  36.00 mmph\r\n")
    totals = [float(line.split(b"TotalAcc")[1].split()[0]) for line in lines]
    assert totals == sorted(totals) and totals[-1] > totals[0]


def test_rain_model_is_deterministic_per_seed() -> None:
    def run(seed: int) -> list[float]:
        model = RainModel(random.Random(seed), mean_dry_s=600, mean_event_s=600)
        return [model.step(60.0) for _ in range(500)]

    first = run(7)
    assert first == run(7)
    assert first != run(8)
    assert sum(first) > 0 and first.count(0.0) > 0  # both rain and dry spells
    assert all(0 <= mm <= 150 * 60 / 3600 for mm in first)


def test_rain_events_restart_event_accumulation() -> None:
    port = PtyPort("events")
    try:
        sim = RG15Sim(port, random.Random(3), power_up_header=False)
        sim.set_rain(10.0)
        sim.advance(360.0)  # 1 mm
        sim.set_rain(0.0)
        sim.advance(360.0)
        sim.set_rain(20.0)  # a new event
        sim.advance(180.0)  # 1 mm
        assert sim.total_mm == pytest.approx(2.0)
        assert sim.event_mm == pytest.approx(1.0)
    finally:
        port.close()
