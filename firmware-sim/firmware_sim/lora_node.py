"""What every simulated LoRa node shares: its address on the Air, signed uplinks, checked downlinks.

A node signs each uplink with its key and a counter that only grows, and obeys a downlink only
if its MIC matches and its counter is above the last one it applied (a lamp or a traffic light
obeys its gateway, not anyone with a radio). The last downlink counter is kept in RAM: a node
that reboots accepts the next one, as small firmware does.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from firmware_sim import lpp
from firmware_sim.air import Air

log = logging.getLogger(__name__)


class LoraNode:
    """The radio side of a node; subclasses hold the device and call ``_send`` / override ``_command``."""

    def __init__(self, address: str, air: Air, *, key: bytes, clock: Callable[[], float] = time.monotonic) -> None:
        self.address = address.upper()
        self._air = air
        self._key = key
        self._clock = clock
        self._lock = threading.Lock()
        self.fcnt = lpp.counter_start()
        self._down_fcnt = -1
        self.uplinks = 0
        self.downlinks = 0
        self.bad_downlinks = 0
        air.join(self.address, self.on_downlink)

    def _frame(self, payload: bytes) -> bytes:
        # Under self._lock: the counter and the frame it signs go together.
        frame = lpp.uplink_frame(self.address, self.fcnt, payload, self._key)
        self.fcnt = (self.fcnt + 1) & 0xFFFFFFFF
        self.uplinks += 1
        return frame

    def _send(self, frame: bytes) -> None:
        self._air.transmit(frame)  # outside the lock: the modem may call back into the Air

    def on_downlink(self, frame: bytes) -> None:
        """Check a downlink's MIC and counter, then let the device act on its payload."""
        opened = lpp.open_downlink(frame, self._key)
        with self._lock:
            if opened is None or opened[0] <= self._down_fcnt:
                self.bad_downlinks += 1  # forged, corrupted or replayed
                log.debug("%s: refused downlink %s", self.address, frame.hex().upper())
                return
            self._down_fcnt = opened[0]
            if self._command(opened[1]):
                self.downlinks += 1
            else:
                self.bad_downlinks += 1
                log.debug("%s: ignored downlink payload %s", self.address, opened[1].hex().upper())

    def _command(self, payload: bytes) -> bool:
        """Act on an authentic downlink payload (under self._lock); False if the device cannot use it."""
        del payload
        return False
