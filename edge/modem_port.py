"""What the LoRa modem drivers share: the serial link's lifecycle, a locked time-bounded send, and the
FIFO that matches the modem's replies to the commands written.

RN2483Port and RAK3172Port differ in their protocol (initialisation, receive, the commands of a
transmission). Each subclass builds ``_link`` in its constructor and fills in the transmit hooks
(``_rx_stop``, ``_tx_command``, ``_stop_accepted``, ...) of the shared ``_transmit``; a
command is written under ``_cond`` after its reply slot was appended to ``_pending``, so replies are
matched in the order the modem gives them, whichever thread sent the command.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from core.log_limit import LogLimiter
from edge.serial_link import LinkError, SerialLink

log = logging.getLogger(__name__)

MAX_FRAME = 255  # a LoRa radio frame carries at most 255 bytes (both modules' limit)

E = TypeVar("E")  # the protocol's event type


@dataclass(eq=False, slots=True)
class Pending(Generic[E]):
    """A command waiting for its reply (and, for a transmission, for its outcome)."""

    command: str
    rearm: bool = False  # a re-arm nobody waits for: the reader checks its reply itself
    speculative: bool = False  # a re-arm after a garbled line, which may have been a frame or not
    transmit: bool = False
    reply: E | None = None
    replied: threading.Event = field(default_factory=threading.Event)
    outcome: E | None = None
    finished: threading.Event = field(default_factory=threading.Event)


class ReplyTimeoutError(Exception):
    """The modem did not answer within the caller's deadline."""


class ModemPort(Generic[E]):
    """Base of a modem driver; not used on its own."""

    _link: SerialLink

    def __init__(self, on_frame: Callable[[bytes, float], None], reply_timeout: float) -> None:
        self._on_frame = on_frame
        self.reply_timeout = reply_timeout
        self._cond = threading.Condition()
        self._pending: deque[Pending[E]] = deque()
        self._transmitting = False
        self._awaiting_outcome: Pending[E] | None = None
        self._ready = threading.Event()
        self._tx_lock = threading.Lock()
        self._bad_line_log = LogLimiter()
        self.tx_ok = 0
        self.tx_failed = 0
        self.frames = 0
        self.errors = 0  # lines that are not the modem's output (noise, bad hex, replies to nothing)
        self.rx_errors = 0
        self.rearm_failures = 0
        self.callback_errors = 0

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

    # --- the transmit sequence both modules follow; the protocol fills in the hooks below ---

    def _transmit(self, frame: bytes, deadline: float) -> bool:
        """Stop the receiver, send the frame, wait for the modem's outcome; re-arm the receiver after."""
        try:
            with self._cond:
                self._transmitting = True
                stop = self._command(self._rx_stop)
            reply = self._reply(stop, deadline)
            if not self._stop_accepted(reply):
                log.warning("%s: %s answered %s", self._link.name, self._rx_stop, self._describe(reply))
                return False
            with self._cond:
                tx = self._command(self._tx_command(frame), transmit=True)
            reply = self._reply(tx, deadline)
            if not self._tx_accepted(reply):
                log.warning("%s: %s rejected: %s", self._link.name, self._tx_name, self._describe(reply))
                return False
            if not tx.finished.wait(max(0.0, deadline - time.monotonic())):
                raise ReplyTimeoutError(f"no {self._tx_outcome_name}")
            return self._tx_succeeded(tx.outcome)
        except ReplyTimeoutError as exc:
            # A reply that never came leaves the reply FIFO out of step with the modem: start over.
            self._link.request_reconnect(f"modem did not answer in time ({exc})")
            return False
        except LinkError as exc:
            log.warning("%s: transmit failed: %s", self._link.name, exc)
            return False
        finally:
            self._end_transmit()

    _rx_stop: str  # the command that stops the receiver before a transmission
    _tx_name: str  # the transmit command's name, for messages
    _tx_outcome_name: str  # the modem's line that ends a transmission, for the timeout message

    def _stop_accepted(self, reply: E | None) -> bool:
        raise NotImplementedError

    def _tx_command(self, frame: bytes) -> str:
        raise NotImplementedError

    def _tx_accepted(self, reply: E | None) -> bool:
        raise NotImplementedError

    def _tx_succeeded(self, outcome: E | None) -> bool:
        raise NotImplementedError

    def _end_transmit(self) -> None:
        raise NotImplementedError

    def _describe(self, reply: E | None) -> str:
        return "no reply (port closed)" if reply is None else type(reply).__name__

    # --- the command/reply FIFO ---

    def _write(self, command: str) -> None:
        self._link.write_line(command)

    def _command(self, command: str, *, rearm: bool = False, transmit: bool = False) -> Pending[E]:
        # Caller holds self._cond: appending the slot and writing are one step for the FIFO.
        # Not while (re)initialising: initialisation reads replies itself and must see only its own.
        if not self._ready.is_set():
            raise LinkError(f"{self._link.name}: modem not ready")
        pending: Pending[E] = Pending(command, rearm=rearm, transmit=transmit)
        self._pending.append(pending)
        try:
            self._write(command)
        except LinkError:
            self._pending.remove(pending)
            raise
        return pending

    def _reply(self, pending: Pending[E], deadline: float) -> E | None:
        if not pending.replied.wait(max(0.0, deadline - time.monotonic())):
            raise ReplyTimeoutError(f"no reply to {pending.command!r}")
        return pending.reply

    def _closed(self) -> None:
        with self._cond:
            self._ready.clear()
            self._fail_all()

    def _fail_all(self) -> None:
        # Senders waiting on a connection that is gone get None at once instead of a timeout.
        for pending in self._pending:
            pending.replied.set()
            pending.finished.set()
        self._pending.clear()
        if self._awaiting_outcome is not None:
            self._awaiting_outcome.finished.set()
            self._awaiting_outcome = None

    def _deliver(self, payload: bytes, when: float) -> None:
        try:
            self._on_frame(payload, when)
        except Exception:
            # The consumer's bug must not kill the port's only reader thread.
            self.callback_errors += 1
            log.exception("%s: on_frame callback failed", self._link.name)

    def _bad_line(self, exc: Exception) -> None:
        self.errors += 1
        if self._bad_line_log.allow():
            log.warning("%s: bad line skipped (%d so far): %s", self._link.name, self.errors, exc)
