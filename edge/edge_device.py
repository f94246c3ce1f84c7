"""What the edge agent knows of a device: how to reach it and how to read it, nothing more.

The platform's registry (core.registry) also holds a device's place, wijk and classification;
a gateway needs none of that, and its config file (edge.gateway_config) lists only these fields.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.registry import Device


@dataclass(frozen=True, slots=True)
class EdgeDevice:
    """A device of this gateway: its id, kind, link and the link's address."""

    id: str
    kind: str
    link: str  # "lora" (point-to-point via our modem), "lorawan" (via a network server) or "serial"
    address: str | None = None  # LoRa P2P address, 8 upper-case hex digits
    dev_eui: str | None = None  # LoRaWAN DevEUI, 16 upper-case hex digits
    port: str | None = None  # serial port name, resolved by the gateway's port map
    decoder: str | None = None  # uplink layout (edge.device_codecs); None: the kind's own

    @property
    def layout(self) -> str:
        """The name of the uplink layout that decodes this device's payloads."""
        return self.decoder or self.kind

    @classmethod
    def of(cls, device: Device) -> EdgeDevice:
        """The edge's view of a registry device."""
        return cls(device.id, device.kind, device.link, device.address, device.dev_eui, device.port)
