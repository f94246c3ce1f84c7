"""The faults a scenario injects, one action per kind, and the USB port whose stable path survives a replug.

Every action acts on the simulator objects a ``SimulatedCity`` exposes (its modems, gauges and the
modems' Air); ``begin()`` applies the fault and ``end()`` undoes a lasting one (silent, unplug).
Both return a short description of what they did, for the scenario's fault log.

Real gateways name their USB serial adapters by a path that survives a replug
(``/dev/serial/by-id/usb-FTDI_..._A12345-if00-port0``), while the ``/dev/ttyUSBn`` behind it can
change. ``UsbPort`` plays that: a symlink per port that the port map lists; unplugging closes the
pty (the edge's open port fails) and removes the link (reopening fails too), replugging opens a
new pty, moves the firmware to it and points the link at it.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from firmware_sim.air import Air
from firmware_sim.pty_port import PtyPort
from firmware_sim.rak3172 import RAK3172Sim
from firmware_sim.rg15 import RG15Sim
from firmware_sim.rn2483 import RN2483Sim
from firmware_sim.scenario_file import FaultSpec

log = logging.getLogger(__name__)

Modem = RN2483Sim | RAK3172Sim
Firmware = RG15Sim | RN2483Sim | RAK3172Sim
# The lines that carry a device's data: what truncate cuts unless told otherwise.
_DATA_PREFIX: dict[type, str] = {RG15Sim: "Acc", RN2483Sim: "radio_rx", RAK3172Sim: "+EVT:RXP2P"}
# Noise without line ends, so that one burst is exactly one bad line on the edge (with newline = true).
_NOISE = bytes(b for b in range(256) if b not in b"\r\n")


class UsbPort:
    """One device port behind a stable path (a symlink) that survives unplugging and replugging."""

    def __init__(self, gateway: str, name: str, firmware: Firmware, link: Path) -> None:
        self.gateway, self.name = gateway, name
        self.firmware = firmware
        self.link = link
        self.plugged = True
        self.replugs = 0
        self._earlier_truncated = 0  # lines cut on the ptys this port had before the current one

    @property
    def target(self) -> str:
        """How a scenario names it: gateway/port."""
        return f"{self.gateway}/{self.name}"

    @property
    def port(self) -> PtyPort:
        """The pty the firmware talks on now."""
        return self.firmware.port

    @property
    def truncated_lines(self) -> int:
        """Lines truncated on every pty this port has had."""
        return self._earlier_truncated + self.port.truncated_lines

    def point_link(self) -> None:
        """Make the stable path lead to the current pty (atomically: a reader never finds it missing)."""
        tmp = self.link.with_name(f".{self.link.name}.tmp")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(self.port.path)
        tmp.replace(self.link)

    def remove_link(self) -> None:
        """Remove the stable path (only if it is our symlink)."""
        if self.link.is_symlink():
            self.link.unlink()

    def unplug(self) -> str:
        """The adapter is pulled: the path goes away, then the pty closes under whoever has it open."""
        if not self.plugged:
            return "already unplugged"
        self.plugged = False
        self.remove_link()  # first, so that no one opens the path of a pty about to close
        self.port.close()
        return f"{self.link} removed, {self.port.path} closed"

    def replug(self, *, power_cycle: bool) -> str:
        """The adapter is back: a new pty, the firmware moved to it, the path pointing at it."""
        if self.plugged:
            return "already plugged in"
        old = self.port
        new = PtyPort(old.name)
        self._earlier_truncated += old.truncated_lines
        self.firmware.replace_port(new)
        if power_cycle:
            # A device powered through its USB adapter boots again; pyserial's open flushes the
            # banner, as the host's driver would on a real replug.
            if isinstance(self.firmware, RG15Sim):
                self.firmware.restart()
            else:
                self.firmware.reset()
        self.point_link()
        self.plugged = True
        self.replugs += 1
        return f"{self.link} -> {new.path}" + (" (device rebooted)" if power_cycle else "")

    def close(self) -> None:
        """Close the current pty and remove the link (scenario stop)."""
        self.remove_link()
        self.port.close()


class FaultAction(Protocol):
    """A fault bound to its target."""

    spec: FaultSpec

    def begin(self) -> str:
        """Apply the fault; returns what was done."""

    def end(self) -> str:
        """Undo a lasting fault; returns what was done."""


class Garbage:
    """Random bytes on a port between two lines (line noise, a glitching level shifter)."""

    def __init__(self, spec: FaultSpec, usb: UsbPort, rng: random.Random) -> None:
        self.spec, self._usb, self._rng = spec, usb, rng
        self.bytes_sent = 0

    def begin(self) -> str:
        noise = bytes(self._rng.choice(_NOISE) for _ in range(self.spec.bytes))
        if not self._usb.plugged:
            return "port unplugged: nothing sent"
        self._usb.port.inject(noise + (b"\r\n" if self.spec.newline else b""))
        self.bytes_sent += len(noise)
        return f"{len(noise)} bytes{' + CRLF' if self.spec.newline else ''} on {self._usb.port.path}"

    def end(self) -> str:
        return ""


class Truncate:
    """The next matching line(s) a port sends are cut short."""

    def __init__(self, spec: FaultSpec, usb: UsbPort) -> None:
        self.spec, self._usb = spec, usb
        self.prefix = spec.prefix if spec.prefix is not None else _DATA_PREFIX[type(usb.firmware)]

    def begin(self) -> str:
        if not self._usb.plugged:
            return "port unplugged: nothing to cut"
        self._usb.port.truncate(lines=self.spec.lines, keep=self.spec.keep, prefix=self.prefix,
                                newline=self.spec.newline)
        kept = "half" if self.spec.keep is None else f"{self.spec.keep} bytes"
        return f"next {self.spec.lines} line(s) starting {self.prefix!r} cut to {kept}"

    def end(self) -> str:
        return ""


class SilentNode:
    """A LoRa node whose uplinks stop reaching the modem for a while (a parked car, a flat battery).

    ``until()`` gives the monotonic time the silence ends; it is asked when the fault begins.
    """

    def __init__(self, spec: FaultSpec, air: Air, address: str, until: Callable[[], float]) -> None:
        self.spec, self._air, self._address, self._until = spec, air, address, until

    def begin(self) -> str:
        # The end time goes to the Air as well: the mute ends on time even if the scenario's thread is late.
        self._air.mute(self._address, until=self._until())
        return f"uplinks of {self._address} muted"

    def end(self) -> str:
        self._air.unmute(self._address)
        return f"uplinks of {self._address} heard again"


class SilentGauge:
    """A rain gauge that stops answering and reporting for a while."""

    def __init__(self, spec: FaultSpec, gauge: RG15Sim, until: Callable[[], float]) -> None:
        self.spec, self._gauge, self._until = spec, gauge, until

    def begin(self) -> str:
        self._gauge.silence(until=self._until())
        return "gauge silent"

    def end(self) -> str:
        self._gauge.resume()
        return "gauge answering again"


class ModemReset:
    """A gateway's LoRa modem reboots on its own: its boot banner, and its receiver off."""

    def __init__(self, spec: FaultSpec, modem: Modem) -> None:
        self.spec, self._modem = spec, modem

    def begin(self) -> str:
        self._modem.reset()
        return f"{type(self._modem).__name__} rebooted (reset #{self._modem.resets})"

    def end(self) -> str:
        return ""


class Unplug:
    """A USB serial adapter disappears and, ``for`` later, comes back under the same stable path."""

    def __init__(self, spec: FaultSpec, usb: UsbPort) -> None:
        self.spec, self._usb = spec, usb
        # A modem on a USB board is powered by it; an RG-15 has its own 12 V supply.
        self.power_cycle = spec.power_cycle if spec.power_cycle is not None else not isinstance(usb.firmware, RG15Sim)

    def begin(self) -> str:
        return self._usb.unplug()

    def end(self) -> str:
        return self._usb.replug(power_cycle=self.power_cycle)


def link_name(gateway: str, port: str) -> str:
    """A /dev/serial/by-id style file name for a port; characters a file name cannot have become '_'."""
    safe = "".join(c if c.isalnum() or c in "-." else "_" for c in f"{gateway}_{port}")
    return f"usb-smartcity-sim_{safe}-if00"


def remove_stale_link(path: Path) -> None:
    """Remove a symlink a crashed earlier run left behind; refuse to touch anything else."""
    if path.is_symlink():
        path.unlink()
    elif os.path.lexists(path):
        raise FileExistsError(f"{path} exists and is not a symlink; not replacing it")
