"""Desired device state on the gateway: the latest command per (device, action) wins and is applied.

Commands are idempotent desired state (architecture.md): a newer dim command for a light
replaces an older one that has not been confirmed yet, and when a light later reports a level
other than the one desired, the desired level is sent again (at most every retry_interval).
The same holds for every action in edge.downlinks (a traffic light's bike priority).

A command is acknowledged ``applied`` only when the device confirms it: the light reports the
commanded level, the traffic-light controller the commanded bike-priority state. A transmission
the radio could not make is tried again every retry_interval.
When a command expires unconfirmed it is acknowledged ``failed`` if the radio never got it out and
``expired`` if it was sent but the device never showed the new state, each with the detail.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from core.commands import Ack, AckStatus, Action, Command, CommandError
from core.kinds import KINDS
from edge.device_codecs import MetricValue
from edge.downlinks import DOWNLINKS, Desired, Downlink
from edge.edge_device import EdgeDevice

log = logging.getLogger(__name__)

# Sends a downlink to one device; True once the radio confirmed transmission.
Transmit = Callable[[EdgeDevice, Command], bool]


@dataclass(slots=True)
class _Desired:
    command: Command
    downlink: Downlink
    state: Desired  # the validated state the command asks for
    sent_at: float | None = None  # last successful transmission (monotonic)
    attempts: int = 0
    last_attempt: float = 0.0  # monotonic
    transmissions: int = 0
    acked: bool = False  # the command's own ack (applied, failed, expired or superseded) is sent


# How often the worker looks for commands that expired or are due for another try without news.
WATCH_INTERVAL = 1.0


class Actuator:
    """Applies commands through transmit on a worker thread and reports each outcome through on_ack."""

    def __init__(self, devices: dict[str, EdgeDevice], transmit: Transmit, on_ack: Callable[[Ack], None], *,
                 retry_interval: float = 30.0) -> None:
        self._devices = devices
        self._transmit = transmit
        self._on_ack = on_ack
        self._retry_interval = retry_interval
        self._desired: dict[tuple[str, Action], _Desired] = {}
        self._due: set[tuple[str, Action]] = set()
        self._cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="actuator", daemon=True)
        self.applied = 0
        self.failed = 0

    def start(self) -> None:
        """Start the worker."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the worker after the send in progress."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join(timeout=10)

    def update_devices(self, devices: dict[str, EdgeDevice]) -> None:
        """Follow a config reload: commands for devices no longer here are acknowledged as rejected."""
        gone: list[Ack] = []
        with self._cond:
            self._devices = dict(devices)
            for key in [k for k in self._desired if k[0] not in devices]:
                desired = self._desired.pop(key)
                self._due.discard(key)
                if not desired.acked:
                    gone.append(Ack(desired.command.id, key[0], AckStatus.REJECTED,
                                    "the device was removed from this gateway's configuration"))
        for ack in gone:
            self._on_ack(ack)

    def submit(self, command: Command) -> None:
        """Accept a command from the platform: reject what cannot apply here, else make it the desired state."""
        device = self._devices.get(command.device)
        downlink = DOWNLINKS.get(command.action)
        reason = None
        state: Desired | None = None
        if device is None:
            reason = f"device {command.device!r} is not on this gateway"
        elif command.action.value not in KINDS[device.kind].actions:
            reason = f"device {command.device!r} is a {device.kind}, which cannot {command.action.value}"
        elif downlink is None or downlink.kind != device.kind:
            reason = f"this gateway has no driver for {command.action.value} commands to a {device.kind}"
        else:
            try:
                state = downlink.desired(command.params)
            except CommandError as exc:
                reason = str(exc)
        if reason or downlink is None or state is None:
            self._on_ack(Ack(command.id, command.device, AckStatus.REJECTED, reason or "not applicable"))
            return
        if command.expired(time.time()):
            self._on_ack(Ack(command.id, command.device, AckStatus.EXPIRED, "expired before it arrived"))
            return
        key = (command.device, command.action)
        with self._cond:
            previous = self._desired.get(key)
            if previous and previous.command.issued_at > command.issued_at:
                # An older command delivered late must not override a newer desired state.
                self._on_ack(Ack(command.id, command.device, AckStatus.REJECTED, "superseded by a newer command"))
                return
            if previous and not previous.acked:
                previous.acked = True
                self._on_ack(Ack(previous.command.id, command.device, AckStatus.REJECTED,
                                 f"superseded by {command.id}"))
            self._desired[key] = _Desired(command, downlink, state)
            self._due.add(key)
            self._cond.notify_all()

    def observe(self, device_id: str, metric: str, value: MetricValue) -> None:
        """A device reported a metric: confirm a desired state it shows, or schedule a resend if it differs."""
        for action, downlink in DOWNLINKS.items():
            if downlink.metric == metric:
                self._observe((device_id, action), value)

    def _observe(self, key: tuple[str, Action], value: MetricValue) -> None:
        confirmed: Ack | None = None
        with self._cond:
            desired = self._desired.get(key)
            if desired is None or desired.sent_at is None:
                return
            if desired.downlink.confirms(value, desired.state):
                if not desired.acked:
                    desired.acked = True
                    self.applied += 1
                    confirmed = Ack(desired.command.id, key[0], AckStatus.APPLIED,
                                    f"device reports {desired.downlink.metric} {desired.downlink.show(value)} "
                                    f"after {desired.transmissions} transmission(s)")
            elif time.monotonic() - desired.sent_at >= self._retry_interval \
                    and not desired.command.expired(time.time()):
                log.info("device %s reports %s %r, desired %r: sending again", key[0], desired.downlink.metric,
                         value, desired.state)
                self._due.add(key)
                self._cond.notify_all()
        if confirmed is not None:
            self._on_ack(confirmed)

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._due and not self._stop:
                    # Wake at least as often as a retry may be due (never spinning on an interval of 0).
                    self._cond.wait(min(WATCH_INTERVAL, max(self._retry_interval, 0.05)))
                if self._stop:
                    return
                self._watch()
                if not self._due:
                    continue
                key = self._due.pop()
                desired = self._desired[key]
                device = self._devices.get(key[0])
            if device is not None:
                self._apply(device, desired)

    def _watch(self) -> None:
        # Under self._cond: expire what can no longer be applied, retry what the radio could not send.
        now, mono = time.time(), time.monotonic()
        for key, desired in self._desired.items():
            if desired.acked:
                continue
            cmd = desired.command
            if cmd.expired(now):
                desired.acked = True
                if desired.transmissions:
                    status, detail = AckStatus.EXPIRED, (f"sent {desired.transmissions} time(s); the device never "
                                                        "reported the commanded state before expiry")
                else:
                    self.failed += 1
                    status, detail = AckStatus.FAILED, (f"the radio could not transmit it ({desired.attempts} "
                                                        "attempt(s)) before expiry")
                self._on_ack(Ack(cmd.id, cmd.device, status, detail))
            elif desired.transmissions == 0 and desired.attempts and key not in self._due \
                    and mono - desired.last_attempt >= self._retry_interval:
                self._due.add(key)

    def _apply(self, device: EdgeDevice, desired: _Desired) -> None:
        cmd = desired.command
        if cmd.expired(time.time()):
            return  # _watch acknowledges it
        desired.attempts += 1
        desired.last_attempt = time.monotonic()
        if self._transmit(device, cmd):
            desired.transmissions += 1
            desired.sent_at = time.monotonic()
        else:
            log.warning("device %s: radio transmission failed (attempt %d); trying again in %.0f s",
                        cmd.device, desired.attempts, self._retry_interval)
