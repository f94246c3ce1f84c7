"""Validation of uplink packs against the registry, and their conversion to line protocol.

One line per device and timestamp, with every metric of that moment as a field: fewer,
wider points are cheaper for InfluxDB to index than one point per metric.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from core.commands import Ack, Command
from core.kinds import KINDS, ValueType
from core.line_protocol import line
from core.registry import Registry
from core.senml import Pack


@dataclass(slots=True)
class Rejects:
    """Counts of rejected records by reason, plus the latest message for each reason."""

    counts: Counter[str] = field(default_factory=Counter)
    last: dict[str, str] = field(default_factory=dict)

    def add(self, reason: str, message: str) -> None:
        """Count one rejection."""
        self.counts[reason] += 1
        self.last[reason] = message

    @property
    def total(self) -> int:
        """All rejections so far."""
        return sum(self.counts.values())


def _ms(t: float) -> int:
    return round(t * 1000)


def pack_lines(gateway: str, pack: Pack, registry: Registry, rejects: Rejects) -> list[str]:
    """Line protocol (ms precision) for the valid readings of a pack; every bad reading is counted."""
    for err in pack.errors:
        rejects.add("bad_record", f"gateway {gateway}: {err}")
    points: dict[tuple[str, int], dict[str, float | bool | str]] = {}
    for r in pack.readings:
        device = registry.devices.get(r.device)
        if device is None:
            rejects.add("unknown_device", f"gateway {gateway}: unknown device {r.device!r}")
            continue
        if device.gateway != gateway:
            rejects.add("wrong_gateway", f"device {r.device!r} belongs to {device.gateway!r}, "
                                         f"not to {gateway!r}")
            continue
        metric = KINDS[device.kind].metrics.get(r.metric)
        if metric is None:
            rejects.add("unknown_metric", f"device {r.device!r} ({device.kind}): unknown metric {r.metric!r}")
            continue
        expected = bool if metric.type is ValueType.BOOLEAN else float
        if not isinstance(r.value, expected):
            rejects.add("wrong_type", f"device {r.device!r} metric {r.metric!r}: "
                                      f"expected {metric.type.value}, "
                                      f"got {r.value!r}")
            continue
        points.setdefault((r.device, _ms(r.time)), {})[r.metric] = r.value
    lines = []
    for (device_id, ts), fields in points.items():
        d = registry.devices[device_id]
        tags = {"device": d.id, "gateway": d.gateway, "gemeente": d.gemeente, "wijk": d.wijk}
        lines.append(line(d.kind, tags, fields, ts))
    return lines


def status_line(gateway: str, state: str, received: float) -> str:
    """A gateway birth/will message as a point of gateway_status."""
    return line("gateway_status", {"gateway": gateway}, {"state": state, "online": state == "online"},
                _ms(received))


def command_line(gateway: str, cmd: Command) -> str:
    """A command as a point of the command measurement (Grafana shows these as annotations)."""
    fields: dict[str, float | bool | str] = {"id": cmd.id}
    for key, value in cmd.params.items():
        if isinstance(value, int | float | bool | str):
            fields[key] = float(value) if isinstance(value, int) and not isinstance(value, bool) else value
    tags = {"gateway": gateway, "device": cmd.device, "action": cmd.action.value, "origin": cmd.origin}
    return line("command", tags, fields, _ms(cmd.issued_at))


def ack_line(gateway: str, ack: Ack, received: float) -> str:
    """A command acknowledgement as a point of command_ack."""
    tags = {"gateway": gateway, "device": ack.device, "status": ack.status.value}
    return line("command_ack", tags, {"id": ack.id, "detail": ack.detail}, _ms(received))
