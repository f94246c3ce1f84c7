"""Conversion from what the ports deliver to platform readings (transport stays in the port drivers).

Every problem is counted by reason; good values next to a bad one are kept. A LoRa frame is used
only if its MIC matches the device's key (else ``bad_mic``) and its counter is above the last one
accepted from that device (else ``replay``); the counters are kept with the readings in the
durable queue, so they survive restarts.
"""

from __future__ import annotations

import logging
from collections import Counter

from core.kinds import KINDS
from core.senml import Reading
from edge.device_codecs import CodecError, UnknownEntriesError, decode_payload
from edge.edge_device import EdgeDevice
from edge.lora_frame import FrameError, decode_uplink, verify
from edge.lora_keys import KeyRing
from edge.rg15 import RG15Reading

# A step larger than this is a node that started counting afresh (a reboot), not frames lost.
MAX_COUNTED_GAP = 16384

log = logging.getLogger(__name__)


class LoraConverter:
    """Uplink frames from one gateway's radio -> readings of the registered devices.

    Not thread-safe: one radio delivers frames from one thread. After convert(), ``last_fcnt``
    holds the (address, counter) to store with the readings (DurableQueue.extend(fcnt=...)).
    """

    def __init__(self, devices: list[EdgeDevice], keys: KeyRing, counters: dict[str, int] | None = None) -> None:
        self.by_address = {d.address: d for d in devices if d.address is not None}
        self.keys = keys
        self.problems: Counter[str] = Counter()
        self._fcnt: dict[str, int] = dict(counters or {})
        self.lost_frames = 0
        self.last_fcnt: tuple[str, int] | None = None

    def convert(self, frame: bytes, received: float) -> list[Reading]:
        """Readings of one frame; an unusable, forged or replayed frame gives none and is counted."""
        self.last_fcnt = None
        try:
            up = decode_uplink(frame)
        except FrameError as exc:
            self._problem("bad_frame", f"bad LoRa frame {frame.hex()[:80]}: {exc}")
            return []
        device = self.by_address.get(up.address)
        if device is None:
            # Neighbouring networks share the band: foreign frames are normal, so count quietly.
            self.problems["foreign_address"] += 1
            return []
        key = self.keys.key_for(up.address)
        if key is None:
            self._problem("no_key", f"device {device.id}: no LoRa key configured; its frames are refused")
            return []
        if not verify(up, key):
            self._problem("bad_mic", f"device {device.id}: frame with a wrong MIC (forged or corrupted)")
            return []
        last = self._fcnt.get(up.address)
        if last is not None and up.fcnt <= last:
            self._problem("replay", f"device {device.id}: frame counter {up.fcnt} not above {last} (a replay)")
            return []
        self._count_gap(up.address, up.fcnt)
        self.last_fcnt = (up.address, up.fcnt)
        try:
            metrics = decode_payload(device.layout, up.payload)
        except UnknownEntriesError as exc:
            self._problem("bad_entries", f"device {device.id}: {exc}")
            metrics = exc.metrics
        except CodecError as exc:
            self._problem("bad_payload", f"device {device.id}: {exc}")
            return []
        units = KINDS[device.kind].metrics
        return [Reading(device.id, m, v, received, units[m].unit) for m, v in metrics.items()]

    def _count_gap(self, address: str, fcnt: int) -> None:
        last = self._fcnt.get(address)
        if last is not None and 1 < fcnt - last <= MAX_COUNTED_GAP:
            self.lost_frames += fcnt - last - 1
        self._fcnt[address] = fcnt

    def _problem(self, reason: str, message: str) -> None:
        self.problems[reason] += 1
        # Logged once per power of two, so a broken node cannot flood the gateway's log.
        n = self.problems[reason]
        if n & (n - 1) == 0:
            log.warning("%s (%d so far)", message, n)


def rg15_readings(device: EdgeDevice, reading: RG15Reading, received: float) -> list[Reading]:
    """One RG-15 line as rain_gauge readings."""
    units = KINDS["rain_gauge"].metrics
    return [Reading(device.id, m, v, received, units[m].unit) for m, v in reading.metrics().items()]
