"""The RAK3172 (RUI3 firmware) LoRa module driver in P2P mode: receive frames, send downlinks.

Threading as in ``edge.rn2483_port``: the link's reader thread is the only reader. Every
command is written under ``self._cond`` after its reply slot was appended to a FIFO, so the
status replies (``OK``, ``AT_..._ERROR``) are matched to commands in the order the module
answers them, whichever thread sent the command. ``+EVT:`` lines are events, not replies.

What RUI3 does differently from the RN2483, and what that changes here:

- ``AT+PRECV=65534`` keeps listening after a packet, so there is no re-arm per packet.
- But ``AT+PSEND`` is refused with AT_BUSY_ERROR while that receiver runs, and after
  ``+EVT:TXP2P DONE`` the radio stays idle. A send is therefore ``AT+PRECV=0``,
  ``AT+PSEND=<hex>`` (``OK``, then ``+EVT:TXP2P DONE``), ``AT+PRECV=65534``. A packet that
  lands before the module has processed ``AT+PRECV=0`` is still delivered.
- A module restart prints a banner, not a reply. Outside initialisation the banner means
  the receiver is off (work mode and P2P settings survive in flash, receiving does not),
  so the port is reopened and the module initialised again. During initialisation it is
  expected: RUI3 restarts its stack when ``AT+NWM`` changes the work mode.
- Echo (``ATE``) may have been left on by whoever configured the module: a line equal to
  a command we just wrote is our echo, not noise.
"""

from __future__ import annotations

import logging
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from edge.modem_port import ModemPort
from edge.rak3172 import AtError, Ok, Rak3172Parser, RakError, RakEvent, Received, RxTimeout, TxDone
from edge.serial_link import Backoff, LinkError, SerialFactory, SerialLink, open_serial

log = logging.getLogger(__name__)

BAUDRATE = 115200  # the RUI3 default
RECEIVE = "AT+PRECV=65534"  # continuous receive until AT+PRECV=0
RECEIVE_STOP = "AT+PRECV=0"
_BANNER = re.compile(r"^(RAKwireless .*|-{20,}|Version: RUI_.*|Current Work Mode: .*)$")
_ECHO_MEMORY = 8  # commands whose echo we still expect


@dataclass(frozen=True, slots=True)
class P2PConfig:
    """The ``AT+P2P`` radio settings; the defaults are field-protocols.md's (EU868, SF7, 125 kHz)."""

    frequency: int = 868_000_000
    spreading_factor: int = 7
    bandwidth: int = 125
    coding_rate: int = 0  # 0-3 = 4/5-4/8
    preamble: int = 8
    power: int = 14  # dBm

    def __post_init__(self) -> None:
        # Checked once, at construction: a wrong setting should fail the start, not every reconnect.
        checks = (
            ("frequency", self.frequency, 150_000_000 <= self.frequency <= 960_000_000, "150000000-960000000 Hz"),
            ("spreading_factor", self.spreading_factor, 5 <= self.spreading_factor <= 12, "5-12"),
            ("bandwidth", self.bandwidth, self.bandwidth in (125, 250, 500), "125, 250 or 500 kHz"),
            ("coding_rate", self.coding_rate, 0 <= self.coding_rate <= 3, "0-3"),
            ("preamble", self.preamble, 2 <= self.preamble <= 65535, "2-65535"),
            ("power", self.power, 5 <= self.power <= 22, "5-22 dBm"),
        )
        for name, value, ok, allowed in checks:
            if not ok:
                raise ValueError(f"P2P {name} must be {allowed}: {value}")

    def command(self) -> str:
        """The AT+P2P command that applies these settings."""
        return (f"AT+P2P={self.frequency}:{self.spreading_factor}:{self.bandwidth}:{self.coding_rate}:"
                f"{self.preamble}:{self.power}")


def init_sequence(p2p: P2PConfig) -> tuple[str, ...]:
    """The commands that put a module in any state into continuous P2P receive."""
    return (
        "AT+NWM=0",  # P2P work mode (a no-op when it already is)
        RECEIVE_STOP,  # a receiver left running by the last connection makes AT+P2P busy
        p2p.command(),
        RECEIVE,
    )




class RAK3172Port(ModemPort[RakEvent]):
    """A RAK3172 on a serial port; ``on_frame(payload, unix_time)`` runs on the reader thread."""

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
        p2p: P2PConfig | None = None,
    ) -> None:
        super().__init__(on_frame, reply_timeout)
        self.p2p = p2p or P2PConfig()
        self._init_sequence = init_sequence(self.p2p)
        self._parser = Rak3172Parser()
        self._earlier_orphans = 0  # orphaned headers counted by the parsers of earlier connections
        self._written: deque[str] = deque(maxlen=_ECHO_MEMORY)
        self._restart_seen = False
        self.last_signal: tuple[int, int] | None = None  # (rssi dBm, snr dB) of the last frame
        self.at_errors: dict[str, int] = {}  # AT_... status replies by code
        self.resets = 0  # module restarts noticed outside initialisation
        self.echoes = 0
        self._link = SerialLink(
            path, baudrate, name=f"rak3172:{path}", on_line=self._line, on_open=self._initialise,
            on_close=self._closed, read_timeout=read_timeout, backoff=backoff, serial_factory=serial_factory,
        )

    @property
    def orphaned_headers(self) -> int:
        """Two-line receive headers whose data line never came (a packet lost on the UART)."""
        return self._earlier_orphans + self._parser.orphaned_headers

    def error_counts(self) -> dict[str, int]:
        """Every kind of error seen since start, by kind; AT status codes by their name."""
        counts = {
            "bad_line": self.errors, "orphaned_header": self.orphaned_headers, "rx_timeout": self.rx_errors,
            "rearm_failure": self.rearm_failures, "callback": self.callback_errors, "module_reset": self.resets,
            "tx_failed": self.tx_failed,
        }
        return counts | dict(self.at_errors)

    # --- transmit path (caller's thread) ---

    _rx_stop = RECEIVE_STOP
    _tx_name = "AT+PSEND"
    _tx_outcome_name = "+EVT:TXP2P DONE"

    def _stop_accepted(self, reply: RakEvent | None) -> bool:
        return isinstance(reply, Ok)

    def _tx_command(self, frame: bytes) -> str:
        return f"AT+PSEND={frame.hex().upper()}"

    def _tx_accepted(self, reply: RakEvent | None) -> bool:
        return isinstance(reply, Ok)

    def _tx_succeeded(self, outcome: RakEvent | None) -> bool:
        return isinstance(outcome, TxDone)

    def _describe(self, reply: RakEvent | None) -> str:
        return _name(reply)

    def _end_transmit(self) -> None:
        with self._cond:
            self._transmitting = False
            self._awaiting_outcome = None
        self._rearm()  # RUI3 leaves the radio idle after a transmission (or a refused one)

    def _write(self, command: str) -> None:
        with self._cond:
            self._written.append(command.upper())
        self._link.write_line(command)

    # --- reader thread ---

    def _initialise(self) -> None:
        with self._cond:
            self._fail_all()
            self._written.clear()
        self._earlier_orphans += self._parser.orphaned_headers
        self._parser = Rak3172Parser()  # a header from the last connection has no data line coming
        self._restart_seen = False
        for command in self._init_sequence:
            self._write(command)
            deadline = time.monotonic() + self.reply_timeout
            while True:
                raw = self._link.read_line(max(0.0, deadline - time.monotonic()))
                if raw is None:
                    raise LinkError(f"no reply to {command!r} within {self.reply_timeout} s")
                event = self._event(raw)
                if isinstance(event, Ok):
                    break
                if isinstance(event, AtError):
                    raise LinkError(f"{command!r} answered {event.code}")
                if isinstance(event, Received):  # a receiver still running from before: keep the packet
                    self._frame(event, time.time())
                elif event is not None:
                    log.debug("%s: skipped %r while waiting for the reply to %r", self._link.name, raw, command)
        self._ready.set()

    def _event(self, raw: bytes) -> RakEvent | None:
        """The parsed line; None for blank lines, echoes, banner lines and (counted) bad lines."""
        text = raw.decode("ascii", errors="replace").strip()
        if not text:
            return None  # RUI3 puts a blank line before every status
        with self._cond:
            if text.upper() in self._written:
                self._written.remove(text.upper())
                self.echoes += 1
                return None
        if _BANNER.match(text):
            self._module_restarted(text)
            return None
        try:
            event = self._parser.feed(text)
        except ValueError as exc:  # RakError, or int() refusing an absurd RSSI: noise either way
            self._bad_line(exc)
            return None
        if isinstance(event, AtError):
            self.at_errors[event.code] = self.at_errors.get(event.code, 0) + 1
        return event

    def _module_restarted(self, text: str) -> None:
        if not self._ready.is_set() or self._restart_seen:
            return  # expected during initialisation; and one banner is several lines
        self._restart_seen = True
        self.resets += 1
        self._link.request_reconnect(f"module restarted ({text!r}); its receiver is off")

    def _line(self, raw: bytes, when: float) -> None:
        event = self._event(raw)
        if isinstance(event, Received):
            self._frame(event, when)
        elif isinstance(event, Ok | AtError):
            self._command_reply(event)
        elif isinstance(event, TxDone):
            self._tx_done(event)
        elif isinstance(event, RxTimeout):
            self.rx_errors += 1  # the receiver stopped: listen again
            self._rearm()

    def _command_reply(self, event: Ok | AtError) -> None:
        with self._cond:
            if not self._pending:
                self._bad_line(RakError(f"reply {_name(event)} to no command"))
                return
            pending = self._pending.popleft()
            pending.reply = event
            if pending.transmit and isinstance(event, Ok):
                self._awaiting_outcome = pending
            pending.replied.set()
        if pending.rearm and not isinstance(event, Ok):
            # A module that will not listen is useless to a gateway: initialise it from scratch.
            self.rearm_failures += 1
            self._link.request_reconnect(f"{RECEIVE} answered {_name(event)}")

    def _tx_done(self, event: TxDone) -> None:
        with self._cond:
            pending, self._awaiting_outcome = self._awaiting_outcome, None
            if pending is not None:
                pending.outcome = event
                pending.finished.set()
                return
        self._bad_line(RakError("+EVT:TXP2P DONE without a transmission"))

    def _rearm(self) -> None:
        with self._cond:
            if self._transmitting or not self._ready.is_set():
                return  # the transmitting thread (or initialisation) arms the receiver
            try:
                self._command(RECEIVE, rearm=True)
            except LinkError as exc:
                log.warning("%s: cannot re-arm the receiver: %s", self._link.name, exc)

    def _frame(self, event: Received, when: float) -> None:
        self.frames += 1
        self.last_signal = (event.rssi, event.snr)
        self._deliver(event.payload, when)


def _name(event: RakEvent | None) -> str:
    if isinstance(event, AtError):
        return event.code
    return "no reply (port closed)" if event is None else type(event).__name__
