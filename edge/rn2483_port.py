"""The RN2483 LoRa modem driver in point-to-point mode: receive frames, send downlinks.

Threading: the link's reader thread is the only reader. Every command is written under
``self._cond`` after its reply slot has been appended to a FIFO, so replies (``ok``,
``invalid_param``, ``busy``) are matched to commands in the order the modem answers them,
whichever thread sent the command. ``radio_rx``, ``radio_tx_ok`` and ``radio_err`` are
events, not replies: ``radio_tx_ok``/``radio_err`` after the ``ok`` of a ``radio tx`` is that
transmission's outcome; a ``radio_rx`` is delivered and the receiver re-armed with
``radio rx 0`` (the modem stops listening after every packet) unless a transmission is in
progress, in which case the transmitting thread re-arms once it is done. A packet that
arrives while ``send`` is stopping the receiver is therefore delivered, not lost.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from edge.modem_port import ModemPort
from edge.rn2483 import (
    Busy,
    InvalidParam,
    MacPause,
    ModemError,
    ModemEvent,
    Ok,
    RadioErr,
    RadioRx,
    RadioTxOk,
    Version,
    parse_line,
)
from edge.serial_link import Backoff, LinkError, LogLimiter, SerialFactory, SerialLink, open_serial

log = logging.getLogger(__name__)

BAUDRATE = 57600
INIT_SEQUENCE: tuple[tuple[str, type[ModemEvent]], ...] = (
    ("sys reset", Version),
    ("mac pause", MacPause),
    ("radio set wdt 0", Ok),  # no receive watchdog: listen until a packet comes
    ("radio rx 0", Ok),  # 0 = continuous receive
)


@dataclass(eq=False, slots=True)
class _Pending:
    """A command waiting for its reply (and, for radio tx, for its outcome)."""

    command: str
    rearm: bool = False  # a re-arm nobody waits for: the reader checks its reply itself
    transmit: bool = False
    reply: ModemEvent | None = None
    replied: threading.Event = field(default_factory=threading.Event)
    outcome: ModemEvent | None = None
    finished: threading.Event = field(default_factory=threading.Event)


class _ReplyTimeoutError(Exception):
    """The modem did not answer within the caller's deadline."""


class RN2483Port(ModemPort):
    """An RN2483 on a serial port; ``on_frame(payload, unix_time)`` runs on the reader thread."""

    def __init__(
        self,
        path: str,
        on_frame: Callable[[bytes, float], None],
        *,
        baudrate: int = BAUDRATE,
        reply_timeout: float = 2.0,
        read_timeout: float = 0.05,
        backoff: Backoff | None = None,
        serial_factory: SerialFactory = open_serial,
    ) -> None:
        self._on_frame = on_frame
        self.reply_timeout = reply_timeout
        self._cond = threading.Condition()
        self._pending: deque[_Pending] = deque()
        self._transmitting = False
        self._awaiting_outcome: _Pending | None = None
        super().__init__()
        self._bad_line_log = LogLimiter()
        self.frames = 0
        self.errors = 0
        self.rx_errors = 0
        self.rearm_failures = 0
        self.callback_errors = 0
        self._link = SerialLink(
            path, baudrate, name=f"rn2483:{path}", on_line=self._line, on_open=self._initialise,
            on_close=self._closed, read_timeout=read_timeout, backoff=backoff, serial_factory=serial_factory,
        )

    # --- transmit path (caller's thread) ---

    def _transmit(self, frame: bytes, deadline: float) -> bool:
        try:
            with self._cond:
                self._transmitting = True
                stop = self._command("radio rxstop")
            # invalid_param: nothing to stop (firmware before rxstop existed says so too); go on.
            if not isinstance(self._reply(stop, deadline), Ok | InvalidParam):
                return False
            with self._cond:
                tx = self._command(f"radio tx {frame.hex().upper()}", transmit=True)
            reply = self._reply(tx, deadline)
            if not isinstance(reply, Ok):
                log.warning("%s: radio tx rejected: %s", self._link.name, type(reply).__name__)
                return False
            if not tx.finished.wait(max(0.0, deadline - time.monotonic())):
                raise _ReplyTimeoutError("no radio_tx_ok / radio_err")
            return isinstance(tx.outcome, RadioTxOk)
        except _ReplyTimeoutError as exc:
            # A reply that never came leaves the reply FIFO out of step with the modem: reset it.
            self._link.request_reconnect(f"modem did not answer in time ({exc})")
            return False
        except LinkError as exc:
            log.warning("%s: transmit failed: %s", self._link.name, exc)
            return False
        finally:
            self._end_transmit()

    def _reply(self, pending: _Pending, deadline: float) -> ModemEvent | None:
        if not pending.replied.wait(max(0.0, deadline - time.monotonic())):
            raise _ReplyTimeoutError(f"no reply to {pending.command!r}")
        return pending.reply

    def _end_transmit(self) -> None:
        with self._cond:
            self._transmitting = False
            self._awaiting_outcome = None
            if self._ready.is_set():  # else initialisation arms the receiver
                try:
                    self._command("radio rx 0", rearm=True)
                except LinkError as exc:
                    log.warning("%s: cannot re-arm the receiver: %s", self._link.name, exc)

    def _command(self, command: str, *, rearm: bool = False, transmit: bool = False) -> _Pending:
        # Caller holds self._cond: appending the slot and writing are one step for the FIFO.
        # Not while (re)initialising: initialisation reads replies itself and must see only its own.
        if not self._ready.is_set():
            raise LinkError(f"{self._link.name}: modem not ready")
        pending = _Pending(command, rearm=rearm, transmit=transmit)
        self._pending.append(pending)
        try:
            self._link.write_line(command)
        except LinkError:
            self._pending.remove(pending)
            raise
        return pending

    # --- reader thread ---

    def _initialise(self) -> None:
        with self._cond:
            self._fail_all()
        for command, expected in INIT_SEQUENCE:
            self._link.write_line(command)
            deadline = time.monotonic() + self.reply_timeout
            while True:
                raw = self._link.read_line(max(0.0, deadline - time.monotonic()))
                if raw is None:
                    raise LinkError(f"no reply to {command!r} within {self.reply_timeout} s")
                try:
                    event = parse_line(raw.decode("ascii", errors="replace"))
                except ModemError as exc:
                    self._bad_line(exc)
                    continue
                if isinstance(event, expected):
                    break
                if isinstance(event, InvalidParam | Busy):
                    raise LinkError(f"{command!r} answered {type(event).__name__}")
                log.debug("%s: skipped %r while waiting for the reply to %r", self._link.name, raw, command)
        self._ready.set()

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

    def _bad_line(self, exc: Exception) -> None:
        self.errors += 1
        if self._bad_line_log.allow():
            log.warning("%s: bad line skipped (%d so far): %s", self._link.name, self.errors, exc)

    def _line(self, raw: bytes, when: float) -> None:
        try:
            event = parse_line(raw.decode("ascii", errors="replace"))
        except ModemError as exc:
            self._bad_line(exc)
            return
        if isinstance(event, RadioRx):
            self.frames += 1
            self._rearm()  # listen again before spending time in the callback
            self._deliver(event.payload, when)
        elif isinstance(event, Ok | InvalidParam | Busy):
            self._command_reply(event)
        elif isinstance(event, RadioTxOk | RadioErr):
            self._radio_event(event)
        else:
            # A version banner outside initialisation means the modem restarted on its own
            # (brown-out): its radio settings are gone, so initialise it again.
            self.errors += 1
            self._link.request_reconnect(f"unexpected {event!r}")

    def _command_reply(self, event: ModemEvent) -> None:
        with self._cond:
            if not self._pending:
                self._bad_line(ModemError(f"reply {type(event).__name__} to no command"))
                return
            pending = self._pending.popleft()
            pending.reply = event
            if pending.transmit and isinstance(event, Ok):
                self._awaiting_outcome = pending
            pending.replied.set()
        if pending.rearm and not isinstance(event, Ok):
            self.rearm_failures += 1
            log.warning("%s: radio rx 0 answered %s", self._link.name, type(event).__name__)

    def _radio_event(self, event: RadioTxOk | RadioErr) -> None:
        with self._cond:
            pending, self._awaiting_outcome = self._awaiting_outcome, None
            if pending is not None:
                pending.outcome = event
                pending.finished.set()
                return
        if isinstance(event, RadioTxOk):
            self._bad_line(ModemError("radio_tx_ok without a transmission"))
            return
        self.rx_errors += 1  # a failed reception; the receiver stopped, so listen again
        self._rearm()

    def _rearm(self) -> None:
        with self._cond:
            if self._transmitting or not self._ready.is_set():
                return  # the transmitting thread (or initialisation) arms the receiver
            try:
                self._command("radio rx 0", rearm=True)
            except LinkError as exc:
                log.warning("%s: cannot re-arm the receiver: %s", self._link.name, exc)

    def _deliver(self, payload: bytes, when: float) -> None:
        try:
            self._on_frame(payload, when)
        except Exception:
            # The consumer's bug must not kill the port's only reader thread.
            self.callback_errors += 1
            log.exception("%s: on_frame callback failed", self._link.name)
