"""Conversion from what the ports deliver to platform readings (transport stays in the port drivers).

Every problem is counted by reason; good values next to a bad one are kept.
"""

from __future__ import annotations

import logging
from collections import Counter

from core.kinds import KINDS
from core.registry import Device
from core.senml import Reading
from edge.device_codecs import CodecError, UnknownEntriesError, decode_payload
from edge.lora_frame import FrameError, decode_uplink
from edge.rg15 import RG15Reading

log = logging.getLogger(__name__)


class LoraConverter:
    """Uplink frames from one gateway's radio -> readings of the registered devices."""

    def __init__(self, devices: list[Device]) -> None:
        self.by_address = {d.address: d for d in devices if d.address is not None}
        self.problems: Counter[str] = Counter()
        self._fcnt: dict[str, int] = {}
        self.lost_frames = 0

    def convert(self, frame: bytes, received: float) -> list[Reading]:
        """Readings of one frame; an unusable frame gives none and is counted."""
        try:
            up = decode_uplink(frame)
        except FrameError as exc:
            self._problem("bad_frame", f"bad LoRa frame {frame.hex()}: {exc}")
            return []
        device = self.by_address.get(up.address)
        if device is None:
            # Neighbouring networks share the band: foreign frames are normal, so count quietly.
            self.problems["foreign_address"] += 1
            return []
        self._count_gap(device.id, up.fcnt)
        try:
            metrics = decode_payload(device.kind, up.payload)
        except UnknownEntriesError as exc:
            self._problem("bad_entries", f"device {device.id}: {exc}")
            metrics = exc.metrics
        except CodecError as exc:
            self._problem("bad_payload", f"device {device.id}: {exc}")
            return []
        units = KINDS[device.kind].metrics
        return [Reading(device.id, m, v, received, units[m].unit) for m, v in metrics.items()]

    def _count_gap(self, device: str, fcnt: int) -> None:
        last = self._fcnt.get(device)
        if last is not None:
            step = (fcnt - last) % 0x10000
            if 1 < step < 0x8000:  # a large step back is a node reboot, not a loss
                self.lost_frames += step - 1
        self._fcnt[device] = fcnt

    def _problem(self, reason: str, message: str) -> None:
        self.problems[reason] += 1
        # Logged once per power of two, so a broken node cannot flood the gateway's log.
        n = self.problems[reason]
        if n & (n - 1) == 0:
            log.warning("%s (%d so far)", message, n)


def rg15_readings(device: Device, reading: RG15Reading, received: float) -> list[Reading]:
    """One RG-15 line as rain_gauge readings."""
    units = KINDS["rain_gauge"].metrics
    return [Reading(device.id, m, v, received, units[m].unit) for m, v in reading.metrics().items()]
