"""A pseudo-terminal pair standing in for a device's UART.

The simulated firmware reads and writes the master side; the edge opens ``path`` (the
slave) with pyserial exactly as it would open /dev/ttyUSB0. The slave is put in raw mode
at once: with the default line discipline, echo would bounce the firmware's own output
back to it as input and ONLCR would rewrite its line endings before the edge even opened
the port. We also keep our own slave fd open, because on Linux reading the master while no
one holds the slave fails with EIO.

Faults (firmware_sim.faults): ``inject`` writes raw bytes between two lines, ``truncate``
cuts the next matching lines short, and ``close`` while the firmware keeps running is an
unplugged USB adapter. Reads take ``_read_lock`` in short slices so that ``close`` never
frees a file descriptor under a reader's select: the number could be reused at once by
another open (the edge's own port, say) and the firmware would then read someone else's
bytes.
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
from dataclasses import dataclass

log = logging.getLogger(__name__)

MAX_LINE = 1024
WRITE_WAIT = 0.5  # how long a write waits for a reader before the bytes are dropped
READ_SLICE = 0.05  # longest select under the read lock: bounds how long close() waits for a reader
TRUNCATED_MEMORY = 16  # truncated lines remembered (as sent) for logs and tests


@dataclass(slots=True)
class _Truncation:
    """The next ``lines`` lines starting with ``prefix`` lose all but ``keep`` bytes (None: half)."""

    lines: int
    keep: int | None
    prefix: bytes
    newline: bool


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
        self._read_lock = threading.Lock()
        self._closed = False
        self._truncation: _Truncation | None = None
        self.bytes_in = 0
        self.bytes_out = 0
        self.dropped_bytes = 0
        self.injected_bytes = 0
        self.truncated_lines = 0
        self.truncated: deque[bytes] = deque(maxlen=TRUNCATED_MEMORY)  # the cut lines as sent

    @property
    def closed(self) -> bool:
        """True after close()."""
        return self._closed

    def read_line(self, timeout: float) -> bytes | None:
        """The next LF-terminated line (CR and LF stripped) within timeout, else None.

        On a closed port it waits out the timeout and returns None, as a UART with no one on
        the other end would: a firmware loop reading it must not spin.
        """
        deadline = time.monotonic() + timeout
        while not self._lines:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            chunk = self._read_some(min(READ_SLICE, remaining))
            if chunk is None:
                time.sleep(min(READ_SLICE, remaining))  # closed, or an error that persists: do not spin
            elif chunk:
                self.bytes_in += len(chunk)
                self._feed(chunk)
        return self._lines.popleft()

    def _read_some(self, timeout: float) -> bytes | None:
        """What the edge wrote within timeout (b"" if nothing); None if the port is closed or failing."""
        with self._read_lock:
            if self._closed:
                return None
            try:
                ready, _, _ = select.select([self._master], [], [], timeout)
                return os.read(self._master, 4096) if ready else b""
            except OSError as exc:
                # EIO: no one has the slave open (cannot happen while we hold it, but harmless).
                if exc.errno not in (errno.EIO, errno.EBADF, errno.EAGAIN):
                    raise
                return None

    def _feed(self, chunk: bytes) -> None:
        self._partial += chunk
        *complete, rest = self._partial.split(b"\n")
        for line in complete:
            self._lines.append(bytes(line.rstrip(b"\r")))
        self._partial = bytearray(rest[-MAX_LINE:])

    def write_line(self, text: str) -> None:
        """Send text with the CRLF terminator the devices use (or what a pending truncation leaves of it)."""
        data = text.encode("ascii")
        with self._write_lock:
            if self._closed:
                return  # an unplugged port: the line is lost, and no truncation is used up on it
            cut = self._cut(data)
            self._write(data + b"\r\n" if cut is None else cut)

    def truncate(self, *, lines: int = 1, keep: int | None = None, prefix: str = "", newline: bool = True) -> None:
        """Cut the next ``lines`` lines that start with prefix to ``keep`` bytes (None: half of each).

        With newline the cut line still ends in CRLF (bytes lost inside the line); without,
        the fragment runs into the next line, as when a device resets in mid-line. A new call
        replaces a truncation still pending.
        """
        if lines < 1 or (keep is not None and keep < 0):
            raise ValueError(f"truncate needs lines >= 1 and keep >= 0: {lines}, {keep}")
        with self._write_lock:
            self._truncation = _Truncation(lines, keep, prefix.encode("ascii"), newline)

    @property
    def truncation_pending(self) -> int:
        """Lines a truncate() call still has to cut."""
        with self._write_lock:
            return 0 if self._truncation is None else self._truncation.lines

    def _cut(self, data: bytes) -> bytes | None:
        # Caller holds the write lock. None: send the line whole.
        rule = self._truncation
        if rule is None or not data.startswith(rule.prefix):
            return None
        rule.lines -= 1
        if rule.lines <= 0:
            self._truncation = None
        kept = data[: len(data) // 2 if rule.keep is None else rule.keep]
        self.truncated_lines += 1
        self.truncated.append(kept)
        return kept + b"\r\n" if rule.newline else kept

    def inject(self, data: bytes) -> None:
        """Write raw bytes between two lines (never inside one), as line noise on the wire would."""
        with self._write_lock:
            if not self._closed:
                self.injected_bytes += len(data)
            self._write(data)

    def write(self, data: bytes) -> None:
        """Send raw bytes; bytes no one reads within WRITE_WAIT are dropped (like a dead UART line)."""
        with self._write_lock:
            self._write(data)

    def _write(self, data: bytes) -> None:
        # Caller holds the write lock: one call's bytes are never interleaved with another's.
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
        # Read lock first, then write lock; nothing takes them in the other order.
        with self._read_lock, self._write_lock:
            if self._closed:
                return
            self._closed = True
            for fd in (self._master, self._slave):
                try:
                    os.close(fd)
                except OSError as exc:
                    log.debug("%s: close: %s", self.name, exc)
