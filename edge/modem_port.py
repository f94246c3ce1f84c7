"""What the LoRa modem drivers share: the serial link's lifecycle and a locked, time-bounded send.

RN2483Port and RAK3172Port differ in their protocol (initialisation, receive, transmit); each
subclass sets up ``_link``, ``_ready`` and ``_tx_lock`` in its constructor and implements
``_transmit(frame, deadline)``.
"""

from __future__ import annotations

import threading
import time

from edge.serial_link import SerialLink

MAX_FRAME = 255  # a LoRa radio frame carries at most 255 bytes (both modules' limit)


class ModemPort:
    """Base of a modem driver; not used on its own."""

    _link: SerialLink
    _ready: threading.Event
    _tx_lock: threading.Lock

    def __init__(self) -> None:
        self._ready = threading.Event()
        self._tx_lock = threading.Lock()
        self.tx_ok = 0
        self.tx_failed = 0

    @property
    def path(self) -> str:
        """The serial device this driver opens."""
        return self._link.path

    @property
    def ready(self) -> bool:
        """True once the modem is initialised and receiving."""
        return self._ready.is_set()

    @property
    def reconnects(self) -> int:
        """How often the port was reopened (and the modem re-initialised) after the first time."""
        return self._link.reconnects

    def wait_ready(self, timeout: float) -> bool:
        """Block until the modem is initialised and receiving, or timeout."""
        return self._ready.wait(timeout)

    def start(self) -> None:
        """Start the reader thread; it opens the port, initialises the modem and starts receiving."""
        self._link.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the reader thread and close the port; a send in progress fails."""
        self._link.stop(timeout)

    def send(self, frame: bytes, timeout: float = 5.0) -> bool:
        """Transmit one frame; True once the modem reports it sent, False on a rejection, a lost port or timeout."""
        if not 1 <= len(frame) <= MAX_FRAME:
            raise ValueError(f"a radio frame has 1-{MAX_FRAME} bytes, got {len(frame)}")
        deadline = time.monotonic() + timeout
        ok = False
        if self._tx_lock.acquire(timeout=timeout):
            try:
                ok = self._ready.wait(max(0.0, deadline - time.monotonic())) and self._transmit(frame, deadline)
            finally:
                self._tx_lock.release()
        if ok:
            self.tx_ok += 1
        else:
            self.tx_failed += 1
        return ok

    def _transmit(self, frame: bytes, deadline: float) -> bool:
        raise NotImplementedError
