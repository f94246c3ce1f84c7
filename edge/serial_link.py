"""One serial port owned by one reader thread: line splitting, serialised writes, reconnects.

The device drivers (``edge.rg15_port``, ``edge.rn2483_port``) compose a ``SerialLink``
rather than subclassing a thread: the link knows bytes, lines and reconnecting; the
driver knows the protocol. Connection failures are retried with capped exponential
backoff plus jitter, so a gateway whose USB adapter vanished does not spin at a fixed rate
and many gateways do not retry in lock step.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

import serial

log = logging.getLogger(__name__)

WRITE_TIMEOUT = 2.0
MAX_LINE = 1024


class LinkError(Exception):
    """The port is not open, a write failed, or the device did not answer as expected."""


class SerialLike(Protocol):
    """The part of ``serial.Serial`` a link uses (lets tests inject a fake)."""

    @property
    def in_waiting(self) -> int:
        """Bytes ready to read."""

    def read(self, size: int = 1) -> bytes:
        """Read up to size bytes, waiting at most the port's timeout."""

    def write(self, data: bytes, /) -> int | None:
        """Write all bytes."""

    def close(self) -> None:
        """Close the port."""


SerialFactory = Callable[[str, int, float], SerialLike]


def open_serial(path: str, baudrate: int, timeout: float) -> SerialLike:
    """Open a real port with pyserial (8N1); raises serial.SerialException if it cannot."""
    return serial.Serial(path, baudrate, timeout=timeout, write_timeout=WRITE_TIMEOUT)


class Backoff:
    """Capped exponential backoff with jitter: each delay is drawn from [base/2, base]."""

    def __init__(self, initial: float = 0.5, maximum: float = 30.0, factor: float = 2.0,
                 rng: random.Random | None = None) -> None:
        if not 0 < initial <= maximum or factor < 1:
            raise ValueError(f"backoff needs 0 < initial <= maximum and factor >= 1: "
                             f"{initial}, {maximum}, {factor}")
        self.initial, self.maximum, self.factor = initial, maximum, factor
        self._rng = rng or random.Random()
        self.attempt = 0

    def next_delay(self) -> float:
        """The delay before the next attempt; grows until the cap."""
        base = min(self.maximum, self.initial * self.factor ** min(self.attempt, 64))
        self.attempt += 1
        return base / 2 + self._rng.uniform(0, base / 2)

    def reset(self) -> None:
        """Start over after a connection that worked."""
        self.attempt = 0


class SerialLink:
    """Reads lines from a serial port on its own thread and reconnects when the device goes away.

    Callbacks run on the reader thread: ``on_open()`` right after the port opened (it may
    talk to the device with ``write_line``/``read_line``; raising LinkError rejects the
    connection), ``on_line(line, unix_time)`` per line without its terminator,
    ``on_idle(monotonic_now)`` after every read or read timeout, ``on_close()`` when the
    connection ends.
    """

    def __init__(
        self,
        path: str,
        baudrate: int,
        *,
        name: str,
        on_line: Callable[[bytes, float], None],
        on_open: Callable[[], None] | None = None,
        on_idle: Callable[[float], None] | None = None,
        on_close: Callable[[], None] | None = None,
        read_timeout: float = 0.1,
        backoff: Backoff | None = None,
        serial_factory: SerialFactory = open_serial,
    ) -> None:
        self.path, self.baudrate, self.name = path, baudrate, name
        self._on_line, self._on_open, self._on_idle, self._on_close = on_line, on_open, on_idle, on_close
        self._read_timeout = read_timeout
        self._backoff = backoff or Backoff()
        self._factory = serial_factory
        self._write_lock = threading.Lock()
        self._port: SerialLike | None = None
        self._lines: deque[bytes] = deque()
        self._partial = bytearray()
        self._discarding = False  # inside an over-long line: drop bytes up to its newline
        self._stop = threading.Event()
        self._reconnect = threading.Event()
        self._connected = threading.Event()
        self._thread: threading.Thread | None = None
        self.connections = 0
        self.open_failures = 0

    @property
    def connected(self) -> bool:
        """True while the port is open and the device accepted on_open."""
        return self._connected.is_set()

    @property
    def reconnects(self) -> int:
        """Connections made after the first one."""
        return max(0, self.connections - 1)

    def wait_connected(self, timeout: float) -> bool:
        """Block until connected or timeout; returns whether connected."""
        return self._connected.wait(timeout)

    def start(self) -> None:
        """Start the reader thread (which opens the port)."""
        if self._thread is not None:
            raise RuntimeError(f"{self.name} already started")
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the reader thread and close the port; returns once the thread has ended."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("%s: reader thread did not stop within %.1f s", self.name, timeout)

    def request_reconnect(self, reason: str) -> None:
        """Close and reopen the port from the reader thread (e.g. the device stopped answering)."""
        log.warning("%s: reconnecting: %s", self.name, reason)
        self._reconnect.set()

    def write_line(self, text: str) -> None:
        """Send text plus CRLF; raises LinkError if the port is not open or the write fails."""
        data = text.encode("ascii") + b"\r\n"
        with self._write_lock:
            port = self._port
            if port is None:
                raise LinkError(f"{self.name}: port not open")
            try:
                port.write(data)
            except (serial.SerialException, OSError) as exc:
                self._reconnect.set()
                raise LinkError(f"{self.name}: write failed: {exc}") from exc

    def read_line(self, timeout: float) -> bytes | None:
        """The next line within timeout, else None; only for on_open, which runs on the reader thread."""
        deadline = time.monotonic() + timeout
        while not self._lines:
            if time.monotonic() >= deadline:
                return None
            if self._stop.is_set():
                raise LinkError(f"{self.name}: stopping")
            self._read_chunk()
        return self._lines.popleft()

    def _read_chunk(self) -> None:
        port = self._port
        if port is None:
            raise LinkError(f"{self.name}: port not open")
        self._feed(port.read(max(1, port.in_waiting)))

    def _feed(self, chunk: bytes) -> None:
        while chunk:
            head, newline, chunk = chunk.partition(b"\n")
            if self._discarding:
                self._discarding = not newline
                continue
            self._partial += head
            if newline:
                self._lines.append(bytes(self._partial.rstrip(b"\r")))
                self._partial.clear()
            elif len(self._partial) > MAX_LINE:
                # Noise without newlines must not grow memory: hand on what we have (the
                # driver counts it as a bad line) and drop the rest of that line.
                self._lines.append(bytes(self._partial))
                self._partial.clear()
                self._discarding = True

    def _open(self) -> SerialLike | None:
        try:
            return self._factory(self.path, self.baudrate, self._read_timeout)
        except (serial.SerialException, OSError) as exc:
            self.open_failures += 1
            level = logging.WARNING if self._backoff.attempt == 0 else logging.DEBUG
            log.log(level, "%s: cannot open %s: %s", self.name, self.path, exc)
            return None

    def _run(self) -> None:
        while not self._stop.is_set():
            port = self._open()
            if port is not None:
                self._serve(port)
            if not self._stop.is_set():
                delay = self._backoff.next_delay()
                log.debug("%s: next connection attempt in %.2f s", self.name, delay)
                self._stop.wait(delay)

    def _serve(self, port: SerialLike) -> None:
        with self._write_lock:
            self._port = port
        self._lines.clear()
        self._partial.clear()
        self._discarding = False
        self._reconnect.clear()
        try:
            if self._on_open is not None:
                self._on_open()
            self._backoff.reset()
            self.connections += 1
            self._connected.set()
            log.info("%s: connected to %s", self.name, self.path)
            self._pump()
        except (serial.SerialException, OSError, LinkError) as exc:
            log.warning("%s: connection to %s lost: %s", self.name, self.path, exc)
        finally:
            self._connected.clear()
            with self._write_lock:
                self._port = None
            try:
                port.close()
            except (serial.SerialException, OSError) as exc:
                log.debug("%s: close failed: %s", self.name, exc)
            if self._on_close is not None:
                self._on_close()

    def _pump(self) -> None:
        while not self._stop.is_set():
            if self._reconnect.is_set():
                raise LinkError("reconnect requested")
            while self._lines:
                self._on_line(self._lines.popleft(), time.time())
            if self._on_idle is not None:
                self._on_idle(time.monotonic())
            self._read_chunk()
