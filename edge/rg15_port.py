"""The RG-15 rain gauge driver: set the gauge up, poll it, hand each reading to a callback.

On every (re)connection the gauge is put in metric (``M``), high resolution (``H``) and
continuous mode (``C``): it then reports whenever the accumulation changes. It is also
polled with ``R`` every ``poll_interval`` seconds, because a dry gauge in continuous mode
says nothing and the platform must still see that it is alive and dry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from core.log_limit import LogLimiter
from edge.rg15 import RG15Error, RG15Info, RG15Reading, parse_line
from edge.serial_link import Backoff, SerialFactory, SerialLink, open_serial

log = logging.getLogger(__name__)

BAUDRATE = 9600
SETUP_COMMANDS = ("M", "H", "C")


class RG15Port:
    """Reads an RG-15 on a serial port; ``on_reading(reading, unix_time)`` runs on the reader thread."""

    def __init__(
        self,
        path: str,
        on_reading: Callable[[RG15Reading, float], None],
        *,
        poll_interval: float = 10.0,
        baudrate: int = BAUDRATE,
        read_timeout: float = 0.1,
        backoff: Backoff | None = None,
        serial_factory: SerialFactory = open_serial,
    ) -> None:
        if poll_interval <= 0:
            raise ValueError(f"poll_interval must be > 0 s: {poll_interval}")
        self._on_reading = on_reading
        self.poll_interval = poll_interval
        self._next_poll = 0.0
        self._bad_line_log = LogLimiter()
        self.readings = 0
        self.errors = 0
        self.callback_errors = 0
        self._link = SerialLink(
            path, baudrate, name=f"rg15:{path}", on_line=self._line, on_open=self._setup,
            on_idle=self._poll, read_timeout=read_timeout, backoff=backoff, serial_factory=serial_factory,
        )

    @property
    def path(self) -> str:
        """The serial device this driver opens."""
        return self._link.path

    @property
    def connected(self) -> bool:
        """True while the port is open."""
        return self._link.connected

    @property
    def reconnects(self) -> int:
        """How often the port was reopened after the first connection."""
        return self._link.reconnects

    def wait_connected(self, timeout: float) -> bool:
        """Block until the port is open and set up, or timeout."""
        return self._link.wait_connected(timeout)

    def start(self) -> None:
        """Start the reader thread; it opens the port and keeps reopening it when it goes away."""
        self._link.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the reader thread and close the port."""
        self._link.stop(timeout)

    def _setup(self) -> None:
        for command in SETUP_COMMANDS:
            self._link.write_line(command)
        self._next_poll = 0.0  # read once right away: the first reading proves the gauge is there

    def _poll(self, now: float) -> None:
        if now >= self._next_poll:
            self._next_poll = now + self.poll_interval
            self._link.write_line("R")

    def _line(self, raw: bytes, when: float) -> None:
        text = raw.decode("ascii", errors="replace")
        try:
            item = parse_line(text)
        except RG15Error as exc:
            self.errors += 1
            if self._bad_line_log.allow():
                log.warning("%s: bad line skipped (%d so far): %s", self._link.name, self.errors, exc)
            return
        if isinstance(item, RG15Info):
            log.debug("%s: %s %r", self._link.name, item.kind.value, item.text)
            return
        self.readings += 1
        try:
            self._on_reading(item, when)
        except Exception:
            # The consumer's bug must not kill the port's only reader thread.
            self.callback_errors += 1
            log.exception("%s: on_reading callback failed", self._link.name)
