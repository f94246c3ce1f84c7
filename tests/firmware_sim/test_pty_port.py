"""PtyPort: a real pseudo-terminal the edge opens with pyserial."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator

import pytest
import serial

from firmware_sim.pty_port import PtyPort


@pytest.fixture
def pty() -> Iterator[PtyPort]:
    port = PtyPort("test")
    yield port
    port.close()


def test_path_is_a_terminal_device(pty: PtyPort) -> None:
    assert stat.S_ISCHR(os.stat(pty.path).st_mode)
    assert pty.path.startswith("/dev/pts/")


def test_bytes_pass_unchanged_both_ways(pty: PtyPort) -> None:
    with serial.Serial(pty.path, 9600, timeout=1) as edge:
        pty.write_line("Acc  0.00 mm")
        # Raw mode: no ONLCR (\n -> \r\n) and no echo of the device's own output.
        assert edge.read(14) == b"Acc  0.00 mm\r\n"
        edge.write(b"R\r\nmac pause\n")
        assert pty.read_line(1.0) == b"R"
        assert pty.read_line(1.0) == b"mac pause"
        assert pty.read_line(0.05) is None  # nothing echoed back into the device


def test_slave_is_raw_before_the_edge_opens_it(pty: PtyPort) -> None:
    # Written while nobody has the slave open: must not come back to the device as input.
    pty.write_line("Reset N")
    assert pty.read_line(0.2) is None


def test_partial_lines_wait_for_lf(pty: PtyPort) -> None:
    with serial.Serial(pty.path, 9600, timeout=1) as edge:
        edge.write(b"rad")
        assert pty.read_line(0.1) is None
        edge.write(b"io rx 0\r\n")
        assert pty.read_line(1.0) == b"radio rx 0"


def test_write_without_reader_drops_instead_of_blocking(pty: PtyPort) -> None:
    start = time.monotonic()
    pty.write(b"x" * 1_000_000)
    assert time.monotonic() - start < 2.0
    assert pty.dropped_bytes > 0
    assert pty.bytes_out + pty.dropped_bytes == 1_000_000


def test_edge_sees_the_device_disappear() -> None:
    port = PtyPort("gone")
    edge = serial.Serial(port.path, 9600, timeout=0.5)
    try:
        port.close()
        with pytest.raises(serial.SerialException):
            edge.read(1)
    finally:
        edge.close()
    assert port.closed
    port.close()  # idempotent
    assert port.read_line(0.01) is None
    port.write_line("ignored after close")
