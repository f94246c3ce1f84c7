"""Conversion from what the ports deliver to platform readings (transport stays in the port drivers).

Every problem is counted by reason; good values next to a bad one are kept. A LoRa frame is used
only if its MIC matches the device's key (else ``bad_mic``) and its counter is above the last one
accepted from that device (else ``replay``); the counters are kept with the readings in the
durable queue, so they survive restarts.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable

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

# Counts a problem by reason and logs its message: (reason, message) -> None.
Problem = Callable[[str, str], None]


def count_problem(problems: Counter[str], reason: str, message: str, logger: logging.Logger = log) -> None:
    """Count a problem by reason; log it once per power of two, so a broken node cannot flood the log."""
    problems[reason] += 1
    n = problems[reason]
    if n & (n - 1) == 0:
        logger.warning("%s (%d so far)", message, n)


def payload_readings(device: EdgeDevice, payload: bytes, received: float, problem: Problem) -> list[Reading]:
    """The readings in one CayenneLPP payload of a device; what cannot be used goes to problem.

    Entries the device's layout does not know are reported as ``bad_entries`` and the good ones
    kept; a payload with nothing decodable is ``bad_payload`` and gives no readings. Shared by
    the modem path (LoraConverter) and the network-server path (edge.ns_bridge).
    """
    try:
        metrics = decode_payload(device.layout, payload)
    except UnknownEntriesError as exc:
        problem("bad_entries", f"device {device.id}: {exc}")
        metrics = exc.metrics
    except CodecError as exc:
        problem("bad_payload", f"device {device.id}: {exc}")
        return []
    units = KINDS[device.kind].metrics
    readings = []
    for metric, value in metrics.items():
        if metric not in units:
            # A decoder configured for another kind: its metrics do not exist for this device.
            problem("bad_entries", f"device {device.id}: a {device.kind} has no metric {metric!r} "
                                   f"(decoder {device.layout!r})")
            continue
        readings.append(Reading(device.id, metric, value, received, units[metric].unit))
    return readings


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
        return payload_readings(device, up.payload, received, self._problem)

    def _count_gap(self, address: str, fcnt: int) -> None:
        last = self._fcnt.get(address)
        if last is not None and 1 < fcnt - last <= MAX_COUNTED_GAP:
            self.lost_frames += fcnt - last - 1
        self._fcnt[address] = fcnt

    def _problem(self, reason: str, message: str) -> None:
        count_problem(self.problems, reason, message)


def rg15_readings(device: EdgeDevice, reading: RG15Reading, received: float) -> list[Reading]:
    """One RG-15 line as rain_gauge readings."""
    units = KINDS["rain_gauge"].metrics
    return [Reading(device.id, m, v, received, units[m].unit) for m, v in reading.metrics().items()]
