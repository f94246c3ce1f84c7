"""The radio channel around one gateway: nodes transmit to the modem, the modem to a node.

P2P LoRa has no addressing, so in reality every node hears every downlink and keeps the
ones carrying its address; ``Air`` short-cuts that by delivering a downlink only to the
node whose address it names.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from firmware_sim.lpp import downlink_address

log = logging.getLogger(__name__)


class Air:
    """Thread-safe routing between one gateway modem and the nodes within its reach."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._modem: Callable[[bytes], None] | None = None
        self._nodes: dict[str, Callable[[bytes], None]] = {}
        self.uplinks = 0
        self.downlinks = 0
        self.unaddressed = 0  # downlinks for an address no node has

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
