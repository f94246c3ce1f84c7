"""The scenario runner: a simulated city, time running ``speed`` times faster, faults on schedule.

``open()`` builds the ``SimulatedCity`` of the scenario's registry with every device timer
scaled by the speed (a ``"10m"`` report interval at speed 60 is 10 real seconds), starts its
firmware and puts one stable path (a symlink, see ``faults.UsbPort``) per port in the link
directory; ``ports()``/``write_port_map()`` give those paths, never the ptys behind them, so
an edge agent finds its device again after an unplug. ``start()`` makes now simulated time 0
and runs the fault schedule on one thread; ``run()`` does both and returns once the
scenario's duration has passed. Opening first lets a caller connect its edge drivers before
the first fault, so that a test sees every fault.

Every fault applied is recorded (``records()``) with its planned and actual simulated time,
its real time since the start and its wall-clock time; a fault that fails is logged, counted
and recorded with ok = False, and never stops the schedule.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from edge.lora_keys import KeyRing
from firmware_sim.city import SimulatedCity
from firmware_sim.faults import (
    FaultAction,
    Garbage,
    ModemReset,
    SilentGauge,
    SilentNode,
    Truncate,
    Unplug,
    UsbPort,
    link_name,
    remove_stale_link,
)
from firmware_sim.runner import Runner
from firmware_sim.scenario_clock import ScenarioClock
from firmware_sim.scenario_file import LORA_PORT, FaultKind, FaultSpec, ScenarioError, ScenarioSpec

log = logging.getLogger(__name__)

SCHEDULE_MAX_SLEEP = 0.05  # s: how late a fault may fire (and how fast stop() is heard)
BEGIN, END = "begin", "end"


@dataclass(frozen=True, slots=True)
class FaultRecord:
    """One fault applied (phase begin) or undone (phase end)."""

    index: int  # the fault's position in the file's [[faults]]
    kind: FaultKind
    target: str
    phase: str  # BEGIN or END
    planned: float  # simulated time it was due
    sim_time: float  # simulated time it was applied (taken just before)
    real_time: float  # real seconds since start(), likewise
    wall_time: float  # time.time(), likewise
    ok: bool
    detail: str


class Scenario:
    """Runs one ScenarioSpec; ``with Scenario(...) as s:`` opens it and stops it at the end."""

    def __init__(self, spec: ScenarioSpec, *, keys: KeyRing, link_dir: str | os.PathLike[str] | None = None) -> None:
        self.spec = spec
        self.keys = keys
        self.clock = ScenarioClock(spec.speed)
        self._link_dir_given = link_dir is not None
        self._link_dir = Path(link_dir) if link_dir is not None else None
        self.city: SimulatedCity | None = None
        self.usb_ports: dict[str, UsbPort] = {}  # "gateway/port" -> its stable path and firmware
        self._actions: list[FaultAction] = []
        self._events: list[tuple[float, int, str]] = []  # (simulated time, fault index, phase), in order
        self._next_event = 0
        self._records: list[FaultRecord] = []
        self._cond = threading.Condition()
        self._errors = 0
        self._runner = Runner("sim-scenario", self._step)
        self._opened = self._started = self._stopped = False

    def __enter__(self) -> Scenario:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def link_dir(self) -> Path:
        """The directory holding the stable port paths (after open())."""
        if self._link_dir is None:
            raise RuntimeError("scenario not opened")
        return self._link_dir

    # --- lifecycle ---

    def open(self) -> None:
        """Build the city and its ports and start the firmware; the fault clock does not run yet."""
        if self._opened:
            return
        self._opened = True
        s = self.spec
        self.city = SimulatedCity(
            s.registry, report_interval=s.report_interval / s.speed, busy_seconds=s.occupancy_busy / s.speed,
            quiet_seconds=s.occupancy_quiet / s.speed, seed=s.seed, keys=self.keys, lora_modem=s.lora_modem,
            rain_tick=s.rain_tick / s.speed, rain_time_scale=s.speed)
        try:
            self._make_links()
            self._actions = [self._action(f) for f in s.faults]
        except BaseException:
            self._close()
            raise
        self._events = sorted((t, f.index, phase) for f in s.faults
                              for t, phase in ((f.at, BEGIN), *(((f.end, END),) if f.span is not None else ())))
        self.city.start()
        log.info("scenario %s: %d gateways, %d faults, speed %g, ports in %s", s.source,
                 len(s.registry.gateways), len(s.faults), s.speed, self._link_dir)

    def start(self) -> None:
        """Make now simulated time 0 and start the fault schedule (opening first if needed)."""
        if self._started:
            raise RuntimeError("scenario already started")
        self.open()
        self._started = True
        self.clock.start()
        self._runner.start()

    def run(self, until: float | None = None, stop: threading.Event | None = None) -> list[FaultRecord]:
        """Start, block until simulated time until (default: the duration) or stop is set, then stop."""
        end = self.spec.duration if until is None else until
        if not self._started:
            self.start()
        remaining = max(0.0, self.clock.deadline(end) - time.monotonic())
        told = (stop or self._runner.stopping).wait(remaining)
        if not told:
            # Run to the end: a schedule thread that lagged behind (a busy machine) still applies
            # every phase due by then, in order, before the city stops.
            self._runner.stop()
            while self._next_event < len(self._events) and self._events[self._next_event][0] <= end:
                planned, index, phase = self._events[self._next_event]
                self._next_event += 1
                self._apply(self._actions[index], planned, phase)
        self.stop()
        return self.records()

    def stop(self) -> None:
        """Stop the schedule and every firmware thread, close the ptys and remove the stable paths."""
        if self._stopped:
            return
        self._stopped = True
        self._runner.stop()
        self._close()

    def _close(self) -> None:
        if self.city is not None:
            self.city.stop()
        for usb in self.usb_ports.values():
            usb.close()  # a replugged port's pty is ours, not the city's
        if self._link_dir is not None and not self._link_dir_given:
            shutil.rmtree(self._link_dir, ignore_errors=True)

    # --- ports ---

    def _make_links(self) -> None:
        assert self.city is not None
        if self._link_dir is None:
            self._link_dir = Path(tempfile.mkdtemp(prefix="smartcity-sim-ports-"))
        else:
            self._link_dir.mkdir(parents=True, exist_ok=True)
        devices = self.spec.registry.devices
        gauges_by_port = {(devices[i].gateway, devices[i].port): i for i in self.city.gauges}
        for gateway, ports in self.city.ports().items():
            for name in ports:
                firmware = (self.city.modems[gateway] if name == LORA_PORT
                            else self.city.gauges[gauges_by_port[(gateway, name)]])
                link = self._link_dir / link_name(gateway, name)
                if any(u.link == link for u in self.usb_ports.values()):
                    link = link.with_name(f"{link.name}-{len(self.usb_ports)}")  # two names sanitised alike
                remove_stale_link(link)
                usb = UsbPort(gateway, name, firmware, link)
                usb.point_link()
                self.usb_ports[usb.target] = usb

    def ports(self) -> dict[str, dict[str, str]]:
        """{gateway: {port name: stable path}}: the port map an edge agent reads."""
        result: dict[str, dict[str, str]] = {}
        for usb in self.usb_ports.values():
            result.setdefault(usb.gateway, {})[usb.name] = str(usb.link)
        return result

    def write_port_map(self, path: str | os.PathLike[str]) -> None:
        """Write ports() as JSON, atomically (a reader never sees half a file)."""
        target = Path(path)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(json.dumps(self.ports(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        tmp.replace(target)

    # --- faults ---

    def _action(self, f: FaultSpec) -> FaultAction:
        """Bind a fault to the simulator object it acts on; ScenarioError if the city does not play it."""
        assert self.city is not None
        until = partial(self.clock.deadline, f.end)  # asked at begin(), once the clock runs
        if f.kind is FaultKind.SILENT:
            device = self.spec.registry.devices[f.target]
            if f.target in self.city.gauges:
                return SilentGauge(f, self.city.gauges[f.target], until)
            modem = self.city.modems.get(device.gateway)
            if device.link == "lora" and device.address is not None and modem is not None \
                    and f.target not in self.city.skipped:
                return SilentNode(f, modem.air, device.address, until)
            raise ScenarioError(f"{self.spec.source}: {f.where}.target: device {f.target!r} is not simulated "
                                f"({device.kind} over {device.link})")
        usb = self.usb_ports.get(f.target)
        if usb is None:
            raise ScenarioError(f"{self.spec.source}: {f.where}.target: port {f.target!r} is not simulated "
                                f"(simulated ports: {', '.join(sorted(self.usb_ports))})")
        if f.kind is FaultKind.GARBAGE:
            return Garbage(f, usb, random.Random(f"{self.spec.seed}/faults/{f.index}"))
        if f.kind is FaultKind.TRUNCATE:
            return Truncate(f, usb)
        if f.kind is FaultKind.MODEM_RESET:
            return ModemReset(f, self.city.modems[usb.gateway])
        return Unplug(f, usb)

    def _step(self) -> None:
        now = self.clock.now()
        while self._next_event < len(self._events) and self._events[self._next_event][0] <= now:
            planned, index, phase = self._events[self._next_event]
            self._next_event += 1
            self._apply(self._actions[index], planned, phase)
        if self._next_event < len(self._events):
            wait = self.clock.real(self._events[self._next_event][0] - self.clock.now())
        else:
            wait = SCHEDULE_MAX_SLEEP
        self._runner.stopping.wait(min(SCHEDULE_MAX_SLEEP, max(0.0, wait)))

    def _apply(self, action: FaultAction, planned: float, phase: str) -> None:
        f = action.spec
        sim_time, real_time, wall_time = self.clock.now(), self.clock.real_elapsed(), time.time()
        try:
            detail, ok = (action.begin() if phase == BEGIN else action.end()), True
        except Exception as exc:
            # One fault that cannot be applied (a port gone, an OS error) must not end the scenario.
            detail, ok = f"failed: {type(exc).__name__}: {exc}", False
            log.error("scenario %s: %s (%s) %s", self.spec.source, f.where, f.describe(), detail)
        record = FaultRecord(f.index, f.kind, f.target, phase, planned, sim_time, real_time, wall_time, ok, detail)
        with self._cond:
            self._records.append(record)
            self._errors += not ok
            self._cond.notify_all()
        if ok:
            log.info("fault %s %s %s at %.1f s simulated: %s", f.where, phase, f.describe(), record.sim_time, detail)

    # --- what happened ---

    def records(self) -> list[FaultRecord]:
        """Every fault phase applied so far, in order."""
        with self._cond:
            return list(self._records)

    def wait_for(self, index: int, phase: str = BEGIN, timeout: float = 10.0) -> FaultRecord | None:
        """Block until fault index has had its phase (begin or end), at most timeout real seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = next((r for r in self._records if r.index == index and r.phase == phase), None)
                remaining = deadline - time.monotonic()
                if found is not None or remaining <= 0:
                    return found
                self._cond.wait(remaining)

    @property
    def finished(self) -> bool:
        """True once the scenario's duration has passed (simulated)."""
        return self._started and self.clock.now() >= self.spec.duration

    def counters(self) -> dict[str, int]:
        """What the faults did: applied/ended/errors, per kind, and what the firmware lost to them."""
        with self._cond:
            records = list(self._records)
            counts = {"applied": sum(r.phase == BEGIN and r.ok for r in records),
                      "ended": sum(r.phase == END and r.ok for r in records), "errors": self._errors}
        for kind in FaultKind:
            counts[f"applied.{kind.value}"] = sum(r.phase == BEGIN and r.ok and r.kind is kind for r in records)
        city = self.city
        counts["garbage_bytes"] = sum(a.bytes_sent for a in self._actions if isinstance(a, Garbage))
        counts["truncated_lines"] = sum(u.truncated_lines for u in self.usb_ports.values())
        counts["replugs"] = sum(u.replugs for u in self.usb_ports.values())
        counts["muted_uplinks"] = sum(m.air.muted_uplinks for m in city.modems.values()) if city else 0
        counts["ignored_commands"] = sum(g.ignored_commands for g in city.gauges.values()) if city else 0
        counts["suppressed_lines"] = sum(g.suppressed_lines for g in city.gauges.values()) if city else 0
        return counts

