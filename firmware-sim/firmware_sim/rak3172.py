"""Firmware of a RAK3172 LoRa module with RUI3 firmware in P2P mode, on a pty.

AT commands as in field-protocols.md ("RAK3172 with RUI3 firmware"). Command names are
case-insensitive (RUI3 accepts ``at+psend=...``), lines end at LF (CR ignored). Status
replies are framed as the RUI3 manual shows them, ``<CR><LF>OK<CR><LF>``: the blank line
before every status is part of the real byte stream, so a driver must cope with it.
Asynchronous events (``+EVT:...``) are plain lines. Echo is off unless ``echo=True``;
``ATE`` toggles it. The module starts in its factory work mode, LoRaWAN: P2P commands are
AT_BUSY_ERROR until ``AT+NWM=0``, whose mode change restarts the stack (banner, then OK).

Receiving: ``AT+PRECV=65534`` listens until ``AT+PRECV=0``; ``65535`` takes one packet;
1-65533 opens a window of that many ms that ends with ``+EVT:RXP2P RECEIVE TIMEOUT``.
Packets are reported in one of the two field forms (``receive_form``, changeable at any
time). ``AT+PSEND`` is refused with AT_BUSY_ERROR while receiving (RUI3 needs
``AT+PRECV=0`` first) or transmitting; after ``+EVT:TXP2P DONE`` the receiver is off until
the next ``AT+PRECV``. As in the RN2483 simulator, packets that arrive while the receiver
is off wait in a bounded queue (``rx_queue``; 0 = a bare radio that misses them).

Work mode and P2P settings survive a reset (RUI3 keeps them in flash); receiving does not.
``reset()`` (a brown-out) and ``inject()`` (line noise) are the faults tests can inject;
``replace_port(port)`` moves the firmware to the pty of a replugged USB adapter.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from dataclasses import dataclass
from enum import StrEnum

from firmware_sim.air import Air
from firmware_sim.pty_port import PtyPort
from firmware_sim.runner import Runner

log = logging.getLogger(__name__)

VERSION = "RUI_4.0.6_RAK3172-E"
P2P_MODE, LORAWAN_MODE = 0, 1
MAX_PAYLOAD = 255
CONTINUOUS, SINGLE, STOP = 65534, 65535, 0
OK, PARAM_ERROR, BUSY_ERROR, NOT_FOUND = "OK", "AT_PARAM_ERROR", "AT_BUSY_ERROR", "AT_COMMAND_NOT_FOUND"
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


class ReceiveForm(StrEnum):
    """How a received packet is reported: both forms exist in the field."""

    ONE_LINE = "one_line"  # newer firmware: +EVT:RXP2P:<rssi>:<snr>:<hex>
    TWO_LINE = "two_line"  # the manual: +EVT:RXP2P, RSSI <rssi>, SNR <snr> then +EVT:<hex>


@dataclass(frozen=True, slots=True)
class P2PSettings:
    """``AT+P2P`` fields; the power-up values are the RUI3 factory defaults (EU868)."""

    frequency: int = 868_000_000
    spreading_factor: int = 7
    bandwidth: int = 125
    coding_rate: int = 0
    preamble: int = 8
    power: int = 14

    def text(self) -> str:
        """The colon-separated form AT+P2P takes and reports."""
        return (f"{self.frequency}:{self.spreading_factor}:{self.bandwidth}:{self.coding_rate}:"
                f"{self.preamble}:{self.power}")


def parse_p2p(value: str) -> P2PSettings | None:
    """The settings of ``AT+P2P=<value>``, or None if a field is missing or out of the module's range."""
    fields = value.split(":")
    if len(fields) != 6 or not all(f.isdigit() for f in fields):
        return None
    freq, sf, bw, cr, preamble, power = map(int, fields)
    # The SX1262 in the RAK3172 tunes 150-960 MHz and sends at most +22 dBm.
    ok = (150_000_000 <= freq <= 960_000_000 and 5 <= sf <= 12 and bw in (125, 250, 500)
          and 0 <= cr <= 3 and 2 <= preamble <= 65535 and 5 <= power <= 22)
    return P2PSettings(freq, sf, bw, cr, preamble, power) if ok else None


def boot_banner(work_mode: int) -> tuple[str, ...]:
    """What RUI3 prints after a reset or a work-mode change."""
    mode = "LoRa P2P" if work_mode == P2P_MODE else "LoRaWAN"
    return ("RAKwireless RAK3172-E Example", "-" * 54, f"Version: {VERSION}", f"Current Work Mode: {mode}.")


class RAK3172Sim:
    """The module: answers AT commands on the pty, hears nodes through the Air and transmits into it."""

    def __init__(self, port: PtyPort, air: Air, *, rx_queue: int = 4, airtime: float = 0.01,
                 receive_form: ReceiveForm = ReceiveForm.ONE_LINE, work_mode: int = LORAWAN_MODE,
                 echo: bool = False, rng: random.Random | None = None) -> None:
        if rx_queue < 0:
            raise ValueError(f"rx_queue must be >= 0: {rx_queue}")
        if airtime < 0:
            raise ValueError(f"airtime must be >= 0 s: {airtime}")
        self.port = port
        self.air = air
        self.airtime = airtime
        self.receive_form = receive_form
        self.echo = echo
        self.work_mode = work_mode  # factory default: LoRaWAN, so NWM=0 is needed
        self.p2p = P2PSettings()
        self._rng = rng or random.Random(0)
        self._lock = threading.Lock()
        self._queue: deque[bytes] = deque()
        self._queue_size = rx_queue
        self.rx_mode: int | None = None  # the AT+PRECV value in force, None when not receiving
        self._rx_until: float | None = None
        self._tx_frame: bytes | None = None
        self._tx_until = 0.0
        self.last_signal: tuple[int, int] | None = None  # (rssi, snr) of the last packet reported
        self.received = 0  # packets that reached the antenna
        self.delivered = 0  # packets reported on the UART
        self.dropped = 0  # packets lost because the receiver was off and the queue full
        self.transmitted = 0
        self.rearms = 0  # AT+PRECV commands that started receiving
        self.rejected = 0  # AT_*_ERROR / AT_COMMAND_NOT_FOUND replies
        self.resets = 0
        self._runner = Runner(f"sim-rak3172:{port.path}", self._step)
        air.attach_modem(self.receive)

    def start(self) -> None:
        """Run the firmware thread."""
        self._runner.start()

    def stop(self) -> None:
        """Stop the firmware thread (the pty stays open until closed by its owner)."""
        self._runner.stop()

    @property
    def armed(self) -> bool:
        """True while the receiver listens."""
        with self._lock:
            return self.rx_mode is not None

    @property
    def transmitting(self) -> bool:
        """True from an accepted AT+PSEND until its +EVT:TXP2P DONE."""
        with self._lock:
            return self._tx_frame is not None

    @property
    def queued(self) -> int:
        """Packets waiting for the receiver to be armed."""
        with self._lock:
            return len(self._queue)

    # --- faults ---

    def reset(self) -> None:
        """A brown-out or watchdog reset: the boot banner, and the receiver and any transmission gone."""
        with self._lock:
            self._power_up()

    def replace_port(self, port: PtyPort) -> None:
        """Talk on another pty from now on (the USB adapter was replugged and got a new one)."""
        with self._lock:
            self.port = port

    def inject(self, data: bytes) -> None:
        """Write raw bytes onto the UART, as line noise or a glitching level shifter would."""
        with self._lock:
            self.port.write(data)

    # --- the radio side ---

    def receive(self, frame: bytes) -> None:
        """A packet arrives over the air (called by Air on the transmitting node's thread)."""
        with self._lock:
            self.received += 1
            if self.rx_mode is not None and self._tx_frame is None:
                self._deliver(frame)
            elif self._queue_size == 0:
                self.dropped += 1
            else:
                if len(self._queue) >= self._queue_size:
                    self._queue.popleft()
                    self.dropped += 1
                self._queue.append(frame)

    def _deliver(self, frame: bytes) -> None:
        # Caller holds the lock: the two lines of the manual's form must not be split by a reply.
        rssi, snr = self._rng.randint(-120, -30), self._rng.randint(-12, 12)
        self.last_signal = (rssi, snr)
        self.delivered += 1
        data = frame.hex().upper()
        if self.receive_form is ReceiveForm.ONE_LINE:
            self.port.write_line(f"+EVT:RXP2P:{rssi}:{snr}:{data}")
        else:
            self.port.write_line(f"+EVT:RXP2P, RSSI {rssi}, SNR {snr}")
            self.port.write_line(f"+EVT:{data}")
        if self.rx_mode != CONTINUOUS:  # a single packet or a window ends with its packet
            self.rx_mode = self._rx_until = None

    def _step(self) -> None:
        with self._lock:
            wake = [t for t in (self._rx_until, self._tx_until if self._tx_frame else None) if t is not None]
        timeout = min([0.05, *(t - time.monotonic() for t in wake)])
        line = self.port.read_line(max(0.0, timeout))
        if line is not None:
            self.command(line.decode("ascii", errors="replace"))
        self._tick(time.monotonic())

    def _tick(self, now: float) -> None:
        with self._lock:
            if self._rx_until is not None and now >= self._rx_until:
                self.rx_mode = self._rx_until = None
                self.port.write_line("+EVT:RXP2P RECEIVE TIMEOUT")
            frame = self._tx_frame if self._tx_frame is not None and now >= self._tx_until else None
        if frame is None:
            return
        self.air.downlink(frame)  # outside our lock: the node may transmit into receive() at once
        with self._lock:
            if self._tx_frame is frame:  # else a reset cut the transmission short
                self._tx_frame = None
                self.transmitted += 1
                self.port.write_line("+EVT:TXP2P DONE")

    # --- the UART side ---

    def command(self, line: str) -> None:
        """Process one command line (without its terminator)."""
        text = line.strip()
        if not text:
            return
        with self._lock:
            if self.echo:
                self.port.write_line(text)
            name, _, value = text.partition("=")
            result = self._apply(name.upper(), value, "=" in text)
            if result is None:
                return  # ATZ: the banner is the answer
            *values, status = result
            for v in values:
                self.port.write_line(v)
            if status != OK:
                self.rejected += 1
            self.port.write(f"\r\n{status}\r\n".encode("ascii"))
            if status == OK and name.upper() == "AT+PRECV" and self.rx_mode is not None:
                while self._queue and self.rx_mode is not None:
                    self._deliver(self._queue.popleft())

    def _apply(self, name: str, value: str, assigned: bool) -> tuple[str, ...] | None:
        # Caller holds the lock. Returns query values then the status, or None for no status.
        query = assigned and value == "?"
        match name:
            case "AT":
                return (OK,) if not assigned else (NOT_FOUND,)
            case "ATE" if not assigned:
                self.echo = not self.echo
                return (OK,)
            case "ATZ" if not assigned:
                self._power_up()
                return None
            case "AT+VER" if query:
                return (f"AT+VER={VERSION}", OK)
            case "AT+NWM" if query:
                return (f"AT+NWM={self.work_mode}", OK)
            case "AT+NWM" if assigned:
                return self._set_work_mode(value)
            case "AT+P2P" if query:
                return (f"AT+P2P={self.p2p.text()}", OK)
            case "AT+P2P" if assigned:
                return self._set_p2p(value)
            case "AT+PRECV" if query:
                return (f"AT+PRECV={STOP if self.rx_mode is None else self.rx_mode}", OK)
            case "AT+PRECV" if assigned:
                return (self._precv(value),)
            case "AT+PSEND" if assigned and not query:
                return (self._psend(value),)
        return (NOT_FOUND,)

    def _set_work_mode(self, value: str) -> tuple[str, ...]:
        if value not in ("0", "1", "2"):  # 2 is FSK, accepted and otherwise not simulated
            return (PARAM_ERROR,)
        if self._tx_frame is not None:
            return (BUSY_ERROR,)
        if int(value) != self.work_mode:
            # RUI3 restarts its stack on a mode change: the banner comes before the OK.
            self.work_mode = int(value)
            self._power_up()
        return (OK,)

    def _set_p2p(self, value: str) -> tuple[str, ...]:
        if self.work_mode != P2P_MODE or self.rx_mode is not None or self._tx_frame is not None:
            return (BUSY_ERROR,)  # the radio is in LoRaWAN mode or in use
        settings = parse_p2p(value)
        if settings is None:
            return (PARAM_ERROR,)
        self.p2p = settings
        return (OK,)

    def _precv(self, value: str) -> str:
        if not value.isdigit() or int(value) > SINGLE:
            return PARAM_ERROR
        if self.work_mode != P2P_MODE or self._tx_frame is not None:
            return BUSY_ERROR
        mode = int(value)
        if mode == STOP:
            self.rx_mode = self._rx_until = None
            return OK
        self.rx_mode = mode
        self._rx_until = time.monotonic() + mode / 1000 if mode < CONTINUOUS else None
        self.rearms += 1
        return OK

    def _psend(self, data: str) -> str:
        if len(data) % 2 or not 2 <= len(data) <= 2 * MAX_PAYLOAD or not set(data) <= _HEX_DIGITS:
            return PARAM_ERROR
        if self.work_mode != P2P_MODE or self.rx_mode is not None or self._tx_frame is not None:
            return BUSY_ERROR
        self._tx_frame = bytes.fromhex(data)
        self._tx_until = time.monotonic() + self.airtime
        return OK

    def _power_up(self) -> None:
        # Caller holds the lock. Work mode and P2P settings are in flash; the radio state is not.
        self.rx_mode = self._rx_until = None
        self._tx_frame = None
        self._queue.clear()
        self.resets += 1
        for line in boot_banner(self.work_mode):
            self.port.write_line(line)
