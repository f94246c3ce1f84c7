"""The radio channel around one gateway: nodes transmit to the modem, the modem to a node.

P2P LoRa has no addressing, so in reality every node hears every downlink and keeps the
ones carrying its address; ``Air`` short-cuts that by delivering a downlink only to the
node whose address it names.

``mute(address, until)`` is the "silent device" fault: the node keeps running (its frame
counter goes on counting, as when a parked car or a flat battery blocks its radio), but
nothing it sends reaches the modem until the mute ends.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from firmware_sim.lpp import downlink_address

log = logging.getLogger(__name__)


class Air:
    """Thread-safe routing between one gateway modem and the nodes within its reach."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._modem: Callable[[bytes], None] | None = None
        self._nodes: dict[str, Callable[[bytes], None]] = {}
        self._muted: dict[str, float | None] = {}  # address -> clock time the mute ends (None: never)
        self.uplinks = 0
        self.downlinks = 0
        self.unaddressed = 0  # downlinks for an address no node has
        self.muted_uplinks = 0  # uplinks lost to a mute

    def mute(self, address: str, until: float | None = None) -> None:
        """Let nothing the node with this address sends reach the modem until clock time until (None: unmute())."""
        with self._lock:
            self._muted[address.upper()] = until

    def unmute(self, address: str) -> None:
        """End a mute early (or at its planned end; harmless if there is none)."""
        with self._lock:
            self._muted.pop(address.upper(), None)

    def is_muted(self, address: str) -> bool:
        """True while uplinks from this address are lost."""
        with self._lock:
            return self._muted_now(address.upper())

    def _muted_now(self, address: str) -> bool:
        # Caller holds the lock; an expired mute is dropped here, so it ends even if no one calls unmute.
        if address not in self._muted:
            return False
        until = self._muted[address]
        if until is not None and self._clock() >= until:
            del self._muted[address]
            return False
        return True

    def attach_modem(self, receive: Callable[[bytes], None]) -> None:
        """The gateway modem's receiver: called with every frame a node transmits."""
        with self._lock:
            self._modem = receive

    def join(self, address: str, on_downlink: Callable[[bytes], None]) -> None:
        """A node with this address (8 hex digits) listens for downlinks; on_downlink gets the frame."""
        key = address.upper()
        with self._lock:
            if key in self._nodes:
                raise ValueError(f"two nodes share LoRa address {key}")
            self._nodes[key] = on_downlink

    def transmit(self, frame: bytes) -> None:
        """A node sends an uplink frame; it reaches the modem (which may not be listening)."""
        with self._lock:
            self.uplinks += 1
            # The frame starts with its sender's address (firmware_sim.lpp.uplink_frame).
            if self._muted and self._muted_now(frame[:4].hex().upper()):
                self.muted_uplinks += 1
                return
            modem = self._modem
        # Called outside the lock: the modem takes its own lock and must never wait on ours.
        if modem is not None:
            modem(frame)

    def downlink(self, frame: bytes) -> bool:
        """The modem transmits; True if a node with the frame's address received it."""
        address = downlink_address(frame)
        with self._lock:
            self.downlinks += 1
            node = self._nodes.get(address) if address else None
            if node is None:
                self.unaddressed += 1
        if node is None:
            log.debug("downlink %s reached no node", frame.hex().upper())
            return False
        node(frame)  # the node checks the MIC and the counter with its own key
        return True
