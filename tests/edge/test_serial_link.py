"""SerialLink, Backoff and LogLimiter with an injected fake port (the pty tests use real ones)."""

from __future__ import annotations

import random
import threading
import time
from collections import deque

import pytest
import serial

from core.log_limit import LogLimiter
from edge.serial_link import MAX_LINE, Backoff, LinkError, SerialLink
from tests.firmware_sim.support import wait_for


class FakePort:
    """Serves scripted chunks; None in the script means "the device vanished"."""

    def __init__(self, chunks: list[bytes | None]) -> None:
        self.chunks: deque[bytes | None] = deque(chunks)
        self.written: list[bytes] = []
        self.closed = False

    @property
    def in_waiting(self) -> int:
        return 0

    def read(self, size: int = 1) -> bytes:
        if not self.chunks:
            time.sleep(0.005)
            return b""
        chunk = self.chunks.popleft()
        if chunk is None:
            raise serial.SerialException("device reports readiness to read but returned no data")
        return chunk

    def write(self, data: bytes, /) -> int | None:
        self.written.append(data)
        return len(data)

    def close(self) -> None:
        self.closed = True


class Factory:
    """Fails `failures` times, then hands out the given ports in turn."""

    def __init__(self, ports: list[FakePort], failures: int = 0) -> None:
        self.ports = deque(ports)
        self.failures = failures
        self.calls: list[float] = []

    def __call__(self, path: str, baudrate: int, timeout: float) -> FakePort:
        self.calls.append(time.monotonic())
        if self.failures > 0 or not self.ports:
            self.failures -= 1
            raise serial.SerialException(f"could not open port {path}")
        return self.ports.popleft()


def make_link(factory: Factory, lines: list[bytes], **kwargs: object) -> SerialLink:
    return SerialLink("/dev/fake", 9600, name="fake", on_line=lambda line, when: lines.append(line),
                      backoff=Backoff(0.01, 0.04, rng=random.Random(0)), serial_factory=factory,
                      **kwargs)  # type: ignore[arg-type]


def test_lines_are_split_across_reads_and_crlf_stripped() -> None:
    lines: list[bytes] = []
    port = FakePort([b"ok\r", b"\nradio_", b"rx  01\r\nbusy\r\n", b"\n", b"tail"])
    link = make_link(Factory([port]), lines)
    link.start()
    try:
        assert wait_for(lambda: len(lines) == 4)
    finally:
        link.stop()
    assert lines == [b"ok", b"radio_rx  01", b"busy", b""]
    assert port.closed


def test_overlong_line_is_cut_and_its_rest_dropped() -> None:
    lines: list[bytes] = []
    noise = b"x" * (MAX_LINE + 10)
    link = make_link(Factory([FakePort([noise, b"yyy", b"zzz\r\nok\r\n"])]), lines)
    link.start()
    try:
        assert wait_for(lambda: b"ok" in lines)
    finally:
        link.stop()
    assert lines == [noise, b"ok"]


def test_open_failures_back_off_then_connect() -> None:
    factory = Factory([FakePort([])], failures=3)
    link = make_link(factory, [])
    link.start()
    try:
        assert link.wait_connected(2.0)
    finally:
        link.stop()
    assert link.open_failures == 3
    gaps = [b - a for a, b in zip(factory.calls, factory.calls[1:], strict=False)]
    assert len(gaps) == 3
    assert all(gap >= 0.004 for gap in gaps)  # never a tight loop


def test_lost_device_reconnects_and_runs_on_open_again() -> None:
    opened: list[int] = []
    closed = threading.Event()
    lines: list[bytes] = []
    first, second = FakePort([b"a\n", None]), FakePort([b"b\n"])
    link = make_link(Factory([first, second]), lines, on_open=lambda: opened.append(1),
                     on_close=closed.set)
    link.start()
    try:
        assert wait_for(lambda: lines == [b"a", b"b"])
        assert closed.is_set()
        assert link.connected
    finally:
        link.stop()
    assert (len(opened), link.connections, link.reconnects) == (2, 2, 1)
    assert first.closed and second.closed


def test_on_open_can_reject_a_connection() -> None:
    attempts: list[int] = []

    def on_open() -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise LinkError("device did not answer")

    link = make_link(Factory([FakePort([]), FakePort([])]), [], on_open=on_open)
    link.start()
    try:
        assert link.wait_connected(2.0)
    finally:
        link.stop()
    assert len(attempts) == 2 and link.connections == 1


def test_write_line_appends_crlf_and_needs_an_open_port() -> None:
    port = FakePort([])
    link = make_link(Factory([port]), [])
    with pytest.raises(LinkError, match="not open"):
        link.write_line("R")
    link.start()
    try:
        assert link.wait_connected(2.0)
        link.write_line("radio rx 0")
    finally:
        link.stop()
    assert port.written == [b"radio rx 0\r\n"]


def test_request_reconnect_reopens() -> None:
    link = make_link(Factory([FakePort([]), FakePort([])]), [])
    link.start()
    try:
        assert link.wait_connected(2.0)
        link.request_reconnect("test")
        assert wait_for(lambda: link.connections == 2)
    finally:
        link.stop()


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    backoff = Backoff(0.5, 8.0, rng=random.Random(1))
    delays = [backoff.next_delay() for _ in range(10)]
    for attempt, delay in enumerate(delays):
        base = min(8.0, 0.5 * 2**attempt)
        assert base / 2 <= delay <= base
    assert max(delays) <= 8.0
    assert len(set(delays)) == len(delays)  # jittered: no two gateways retry in lock step
    backoff.reset()
    assert backoff.next_delay() <= 0.5


def test_backoff_is_seeded() -> None:
    def run() -> list[float]:
        b = Backoff(rng=random.Random(9))
        return [b.next_delay() for _ in range(5)]

    assert run() == run()


@pytest.mark.parametrize(("initial", "maximum", "factor"), [(0, 1, 2), (2, 1, 2), (1, 2, 0.5)])
def test_backoff_rejects_bad_settings(initial: float, maximum: float, factor: float) -> None:
    with pytest.raises(ValueError, match="backoff"):
        Backoff(initial, maximum, factor)


def test_log_limiter() -> None:
    limiter = LogLimiter(interval=60.0)
    assert [limiter.allow() for _ in range(4)] == [True, False, False, False]
    assert limiter.suppressed == 3
