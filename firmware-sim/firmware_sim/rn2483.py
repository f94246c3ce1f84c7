"""Firmware of a Microchip RN2483 LoRa modem in radio (P2P) mode on a pty.

Commands end in CRLF; replies as in field-protocols.md. After ``radio rx 0`` the next packet
is delivered as ``radio_rx  <HEX>`` (two spaces) and the receiver is then off until the
next ``radio rx``. Packets that arrive while the receiver is off wait in a small bounded
queue (``rx_queue``, default 4; oldest dropped and counted when full): this models nodes
that retransmit a report they could not get through, and keeps a packet that lands during
a gateway transmission from vanishing. ``rx_queue=0`` models a bare radio that simply
misses them. ``radio set wdt <ms>`` is honoured: with a non-zero watchdog an armed receiver
gives up with ``radio_err`` after that time (the power-on default is 15000 ms).

Faults (firmware_sim.faults): ``reset()`` is a brown-out or watchdog reboot: the module
prints its version banner as it does at power-up and comes back with the LoRaWAN stack
running (``radio rx`` is ``busy`` until ``mac pause``), the receiver off, the watchdog at
its default and the queue empty. ``replace_port(port)`` moves the firmware to the pty of a
replugged USB adapter.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque

from firmware_sim.air import Air
from firmware_sim.pty_port import PtyPort
from firmware_sim.runner import Runner

log = logging.getLogger(__name__)

VERSION = "RN2483 1.0.5 Oct 31 2018 15:06:52"
MAC_PAUSE_MS = 4294967245
DEFAULT_WDT_MS = 15000
U32_MAX = 0xFFFF_FFFF
MAX_PAYLOAD = 255


class RN2483Sim:
    """The modem: answers commands on the pty, hears nodes through the Air and transmits into it."""

    def __init__(self, port: PtyPort, air: Air, *, rx_queue: int = 4, airtime: float = 0.01) -> None:
        if rx_queue < 0:
            raise ValueError(f"rx_queue must be >= 0: {rx_queue}")
        self.port = port
        self.air = air
        self.airtime = airtime
        self._lock = threading.Lock()
        self._queue: deque[bytes] = deque()
        self._queue_size = rx_queue
        self.paused = False
        self.armed = False
        self.wdt_ms = DEFAULT_WDT_MS
        self._armed_until: float | None = None
        self.received = 0  # packets that reached the antenna
        self.delivered = 0  # radio_rx lines sent
        self.dropped = 0  # packets lost because the receiver was off and the queue full
        self.transmitted = 0
        self.rearms = 0  # radio rx commands accepted
        self.rejected = 0  # invalid_param / busy replies
        self.resets = 0  # spontaneous reboots (reset()); sys reset is a command, not counted here
        self._runner = Runner(f"sim-rn2483:{port.path}", self._step)
        air.attach_modem(self.receive)

    def start(self) -> None:
        """Run the firmware thread."""
        self._runner.start()

    def stop(self) -> None:
        """Stop the firmware thread (the pty stays open until closed by its owner)."""
        self._runner.stop()

    def replace_port(self, port: PtyPort) -> None:
        """Talk on another pty from now on (the USB adapter was replugged and got a new one)."""
        with self._lock:
            self.port = port

    def reset(self) -> None:
        """Reboot on its own (brown-out, watchdog): the power-up banner, and every radio setting gone."""
        with self._lock:
            self.resets += 1
            self.port.write_line(self._power_up())

    @property
    def queued(self) -> int:
        """Packets waiting for the receiver to be armed."""
        with self._lock:
            return len(self._queue)

    def receive(self, frame: bytes) -> None:
        """A packet arrives over the air (called by Air on the transmitting node's thread)."""
        with self._lock:
            self.received += 1
            if self.armed:
                self._deliver(frame)
            elif self._queue_size == 0:
                self.dropped += 1
            else:
                if len(self._queue) >= self._queue_size:
                    self._queue.popleft()
                    self.dropped += 1
                self._queue.append(frame)

    def _deliver(self, frame: bytes) -> None:
        # Caller holds the lock, so this line cannot overtake the ok of the radio rx that armed us.
        self.armed = False
        self._armed_until = None
        self.delivered += 1
        self.port.write_line(f"radio_rx  {frame.hex().upper()}")

    def _step(self) -> None:
        line = self.port.read_line(0.05)
        if line is not None:
            self.command(line.decode("ascii", errors="replace"))
        with self._lock:
            if self.armed and self._armed_until is not None and time.monotonic() >= self._armed_until:
                self.armed = False
                self._armed_until = None
                self.port.write_line("radio_err")

    def command(self, line: str) -> None:
        """Process one command line (without its terminator)."""
        words = line.strip().split()
        if not words:
            return
        with self._lock:
            reply = self._apply(words)
            if reply is not None:
                if reply in ("invalid_param", "busy"):
                    self.rejected += 1
                self.port.write_line(reply)
                if reply == "ok" and words[:2] == ["radio", "rx"] and self._queue:
                    self._deliver(self._queue.popleft())
        if words[:2] == ["radio", "tx"] and reply == "ok":
            self._transmit(bytes.fromhex(words[2]))

    def _apply(self, words: list[str]) -> str | None:
        match words:
            case ["sys", "reset"]:
                return self._power_up()
            case ["sys", "get", "ver"]:
                return VERSION
            case ["mac", "pause"]:
                self.paused = True
                return str(MAC_PAUSE_MS)
            case ["mac", "resume"]:
                self.paused = False
                return "ok"
            case ["radio", "set", "wdt", value]:
                if not value.isdigit() or int(value) > U32_MAX:
                    return "invalid_param"
                self.wdt_ms = int(value)
                return "ok"
            case ["radio", "rx", value]:
                if not value.isdigit() or int(value) > 0xFFFF:
                    return "invalid_param"
                if not self.paused or self.armed:
                    return "busy"
                # rx <n> with n > 0 (a window of n symbols) is treated as continuous here.
                self.armed = True
                self.rearms += 1
                self._armed_until = time.monotonic() + self.wdt_ms / 1000 if self.wdt_ms else None
                return "ok"
            case ["radio", "rxstop"]:
                self.armed = False
                self._armed_until = None
                return "ok"
            case ["radio", "tx", data]:
                if len(data) % 2 or not 2 <= len(data) <= 2 * MAX_PAYLOAD or not _is_hex(data):
                    return "invalid_param"
                if not self.paused or self.armed:
                    return "busy"
                return "ok"
        return "invalid_param"

    def _power_up(self) -> str:
        # Caller holds the lock. The banner is what the module prints once it is up again.
        self.paused = self.armed = False
        self._armed_until = None
        self.wdt_ms = DEFAULT_WDT_MS
        self._queue.clear()
        return VERSION

    def _transmit(self, frame: bytes) -> None:
        # Commands that arrive during the airtime wait in the pty: the firmware is busy sending.
        time.sleep(self.airtime)
        self.air.downlink(frame)  # outside our lock: the node may transmit into receive() at once
        with self._lock:
            self.transmitted += 1
            self.port.write_line("radio_tx_ok")


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)
