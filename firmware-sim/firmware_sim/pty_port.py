"""A pseudo-terminal pair standing in for a device's UART.

The simulated firmware reads and writes the master side; the edge opens ``path`` (the
slave) with pyserial exactly as it would open /dev/ttyUSB0. The slave is put in raw mode
at once: with the default line discipline, echo would bounce the firmware's own output
back to it as input and ONLCR would rewrite its line endings before the edge even opened
the port. We also keep our own slave fd open, because on Linux reading the master while no
one holds the slave fails with EIO.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import threading
import time
import tty
from collections import deque

log = logging.getLogger(__name__)

MAX_LINE = 1024
WRITE_WAIT = 0.5  # how long a write waits for a reader before the bytes are dropped


class PtyPort:
    """One pty: ``read_line``/``write_line`` on the device side, ``path`` for the edge."""

    def __init__(self, name: str = "pty") -> None:
        self.name = name
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        # Non-blocking master: with no one reading the slave the pty buffer fills up, and a
        # blocking write would hang the firmware thread (and its stop()) forever.
        os.set_blocking(self._master, False)
        self.path = os.ttyname(self._slave)
        self._lines: deque[bytes] = deque()
        self._partial = bytearray()
        self._write_lock = threading.Lock()
        self._closed = False
        self.bytes_in = 0
        self.bytes_out = 0
        self.dropped_bytes = 0

    @property
    def closed(self) -> bool:
        """True after close()."""
        return self._closed

    def read_line(self, timeout: float) -> bytes | None:
        """The next LF-terminated line (CR and LF stripped) within timeout, else None."""
        deadline = time.monotonic() + timeout
        while not self._lines:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._closed:
                return None
            try:
                ready, _, _ = select.select([self._master], [], [], remaining)
                if not ready:
                    return None
                chunk = os.read(self._master, 4096)
            except OSError as exc:
                # EIO: no one has the slave open (cannot happen while we hold it, but harmless);
                # EBADF: closed under us by stop().
                if exc.errno not in (errno.EIO, errno.EBADF, errno.EAGAIN):
                    raise
                time.sleep(min(0.05, max(0.0, remaining)))
                continue
            self.bytes_in += len(chunk)
            self._feed(chunk)
        return self._lines.popleft()

    def _feed(self, chunk: bytes) -> None:
        self._partial += chunk
        *complete, rest = self._partial.split(b"\n")
        for line in complete:
            self._lines.append(bytes(line.rstrip(b"\r")))
        self._partial = bytearray(rest[-MAX_LINE:])

    def write_line(self, text: str) -> None:
        """Send text with the CRLF terminator the devices use."""
        self.write(text.encode("ascii") + b"\r\n")

    def write(self, data: bytes) -> None:
        """Send raw bytes; bytes no one reads within WRITE_WAIT are dropped (like a dead UART line)."""
        with self._write_lock:
            if self._closed:
                return
            view = memoryview(data)
            deadline = time.monotonic() + WRITE_WAIT
            while view:
                try:
                    n = os.write(self._master, view)
                except BlockingIOError:
                    n = 0
                except OSError as exc:
                    if exc.errno not in (errno.EIO, errno.EBADF):
                        raise
                    break
                self.bytes_out += n
                view = view[n:]
                remaining = deadline - time.monotonic()
                if view and remaining > 0:
                    select.select([], [self._master], [], remaining)
                elif view:
                    break
            if view:
                self.dropped_bytes += len(view)
                log.debug("%s: dropped %d bytes no one read", self.name, len(view))

    def close(self) -> None:
        """Close both ends; the edge sees the device disappear (EIO on its next read)."""
        with self._write_lock:
            if self._closed:
                return
            self._closed = True
            for fd in (self._master, self._slave):
                try:
                    os.close(fd)
                except OSError as exc:
                    log.debug("%s: close: %s", self.name, exc)
