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
import time
from collections.abc import Callable

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
from edge.serial_link import Backoff, LinkError, SerialFactory, SerialLink, open_serial

log = logging.getLogger(__name__)

BAUDRATE = 57600
INIT_SEQUENCE: tuple[tuple[str, type[ModemEvent]], ...] = (
    ("sys reset", Version),
    ("mac pause", MacPause),
    ("radio set wdt 0", Ok),  # no receive watchdog: listen until a packet comes
    ("radio rx 0", Ok),  # 0 = continuous receive
)




class RN2483Port(ModemPort[ModemEvent]):
    """An RN2483 on a serial port; ``on_frame(payload, unix_time)`` runs on the reader thread."""

    def __init__(
        self,
        path: str,
        on_frame: Callable[[bytes, float], None],
        *,
        baudrate: int = BAUDRATE,
        reply_timeout: float = 2.0,
        read_timeout: float = 0.25,  # bounds only how soon stop() is noticed: data wake the read at once
        backoff: Backoff | None = None,
        serial_factory: SerialFactory = open_serial,
    ) -> None:
        super().__init__(on_frame, reply_timeout)
        self._link = SerialLink(
            path, baudrate, name=f"rn2483:{path}", on_line=self._line, on_open=self._initialise,
            on_close=self._closed, read_timeout=read_timeout, backoff=backoff, serial_factory=serial_factory,
        )

    # --- transmit path (caller's thread) ---

    _rx_stop = "radio rxstop"
    _tx_name = "radio tx"
    _tx_outcome_name = "radio_tx_ok / radio_err"

    def _stop_accepted(self, reply: ModemEvent | None) -> bool:
        # invalid_param: nothing to stop (firmware before rxstop existed says so too); go on.
        return isinstance(reply, Ok | InvalidParam)

    def _tx_command(self, frame: bytes) -> str:
        return f"radio tx {frame.hex().upper()}"

    def _tx_accepted(self, reply: ModemEvent | None) -> bool:
        return isinstance(reply, Ok)

    def _tx_succeeded(self, outcome: ModemEvent | None) -> bool:
        return isinstance(outcome, RadioTxOk)

    def _end_transmit(self) -> None:
        with self._cond:
            self._transmitting = False
            self._awaiting_outcome = None
            if self._ready.is_set():  # else initialisation arms the receiver
                try:
                    self._command("radio rx 0", rearm=True)
                except LinkError as exc:
                    log.warning("%s: cannot re-arm the receiver: %s", self._link.name, exc)

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

    def _line(self, raw: bytes, when: float) -> None:
        try:
            event = parse_line(raw.decode("ascii", errors="replace"))
        except ModemError as exc:
            self._bad_line(exc)
            # The garbled line may have been a received frame, after which the RN2483 has turned its
            # receiver off (and with the watchdog off nothing else will ever tell us): listen again.
            # If it was only noise the modem answers busy, which is harmless.
            self._rearm(speculative=True)
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
            if pending.speculative and isinstance(event, Busy):
                return  # the receiver was still on: the garbled line was noise, not a frame
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

    def _rearm(self, *, speculative: bool = False) -> None:
        with self._cond:
            if self._transmitting or not self._ready.is_set():
                return  # the transmitting thread (or initialisation) arms the receiver
            if speculative and self._pending:
                return  # the garbled line may be a command's reply: its owner sorts that out
            try:
                pending = self._command("radio rx 0", rearm=True)
                pending.speculative = speculative
            except LinkError as exc:
                log.warning("%s: cannot re-arm the receiver: %s", self._link.name, exc)

