"""Desired device state on the gateway: the latest command per (device, action) wins and is applied.

Commands are idempotent desired state (architecture.md): a newer dim command for a light
replaces an older one that has not been sent yet, and when a light later reports a level
other than the one desired, the desired level is sent again (at most every retry_interval).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from core.commands import Ack, AckStatus, Action, Command, CommandError, dim_level
from core.registry import Device

log = logging.getLogger(__name__)

# Sends a downlink to one device; True once the radio confirmed transmission.
Transmit = Callable[[Device, Command], bool]


@dataclass(slots=True)
class _Desired:
    command: Command
    sent_at: float | None = None
    acked: bool = False


class Actuator:
    """Applies commands through transmit on a worker thread and reports each outcome through on_ack."""

    def __init__(self, devices: dict[str, Device], transmit: Transmit, on_ack: Callable[[Ack], None], *,
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

    def submit(self, command: Command) -> None:
        """Accept a command from the platform: reject what cannot apply here, else make it the desired state."""
        device = self._devices.get(command.device)
        reason = None
        if device is None:
            reason = f"device {command.device!r} is not on this gateway"
        elif command.action is Action.DIM and device.kind != "street_light":
            reason = f"device {command.device!r} is a {device.kind}, which cannot dim"
        else:
            try:
                dim_level(command.params)
            except CommandError as exc:
                reason = str(exc)
        if reason:
            self._on_ack(Ack(command.id, command.device, AckStatus.REJECTED, reason))
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
                self._on_ack(Ack(previous.command.id, command.device, AckStatus.REJECTED,
                                 f"superseded by {command.id}"))
            self._desired[key] = _Desired(command)
            self._due.add(key)
            self._cond.notify_all()

    def observe_level(self, device_id: str, level: float) -> None:
        """A light reported its level: if it differs from the desired one, schedule a resend."""
        key = (device_id, Action.DIM)
        with self._cond:
            desired = self._desired.get(key)
            if desired is None or desired.sent_at is None:
                return
            if round(level) == dim_level(desired.command.params):
                return
            if time.monotonic() - desired.sent_at >= self._retry_interval \
                    and not desired.command.expired(time.time()):
                log.info("device %s reports %s %%, desired %s %%: sending again", device_id, level,
                         desired.command.params.get("level"))
                self._due.add(key)
                self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._due and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                key = self._due.pop()
                desired = self._desired[key]
            self._apply(desired)

    def _apply(self, desired: _Desired) -> None:
        cmd = desired.command
        if cmd.expired(time.time()):
            if not desired.acked:
                desired.acked = True
                self._on_ack(Ack(cmd.id, cmd.device, AckStatus.EXPIRED, "expired before it could be sent"))
            return
        ok = self._transmit(self._devices[cmd.device], cmd)
        desired.sent_at = time.monotonic()
        if desired.acked:
            return  # a resend of desired state already acknowledged
        desired.acked = True
        if ok:
            self.applied += 1
            self._on_ack(Ack(cmd.id, cmd.device, AckStatus.APPLIED, "sent to the device"))
        else:
            self.failed += 1
            self._on_ack(Ack(cmd.id, cmd.device, AckStatus.FAILED, "radio transmission failed"))
