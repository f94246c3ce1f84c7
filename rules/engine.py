"""The rules engine without its transport: readings in, (gateway, command) pairs out.

The MQTT service calls ``ingest()`` from its message callback and ``evaluate()`` from a timer
(or after each ingest, for the lowest latency); a lock makes the two safe to call from
different threads. All presence_dimming rules of a rule set share one stacked kernel.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from core.commands import Action, Command
from core.registry import Registry
from core.senml import Reading
from rules.presence_dimming import PresenceDimmingStack, ZoneChange
from rules.rule_file import PresenceDimmingRule, RuleSet

log = logging.getLogger(__name__)

DEFAULT_COMMAND_TTL = 60.0


@dataclass(slots=True)
class IngestCounters:
    """What became of the readings given to ingest(), for the service's metrics."""

    used: int = 0  # fed at least one rule
    not_used: int = 0  # a known device, but no rule reads this metric of it
    unknown_device: int = 0  # not in the registry (ingest validates, so this should stay 0)
    bad_value: int = 0  # a string where a rule needs a number or boolean


class RulesEngine:
    """Evaluates a rule set over the readings of the devices in a registry."""

    def __init__(self, ruleset: RuleSet, registry: Registry, start_time: float,
                 command_ttl: float = DEFAULT_COMMAND_TTL) -> None:
        if isinstance(command_ttl, bool) or not math.isfinite(command_ttl) or command_ttl <= 0:
            raise ValueError(f"command_ttl must be a positive number of seconds: {command_ttl!r}")
        self.ruleset = ruleset
        self.registry = registry
        self.command_ttl = float(command_ttl)
        self.counters = IngestCounters()
        self._lock = threading.Lock()
        self._stack = PresenceDimmingStack(self._presence_rules(ruleset), registry, start_time)
        self._input_of = self._index(self._stack)

    @staticmethod
    def _presence_rules(ruleset: RuleSet) -> list[PresenceDimmingRule]:
        return [r for r in ruleset.rules if isinstance(r, PresenceDimmingRule)]

    @staticmethod
    def _index(stack: PresenceDimmingStack) -> dict[tuple[str, str], int]:
        # One dict lookup per reading is the whole per-reading cost in Python; the rest is numpy.
        return {key: i for i, key in enumerate(stack.inputs)}

    @property
    def stack(self) -> PresenceDimmingStack:
        """The kernel holding the zone state (picklable, for persistence and inspection)."""
        return self._stack

    def ingest(self, readings: Sequence[Reading]) -> None:
        """Fold readings into the rules' state; readings no rule reads are counted and skipped."""
        idx: list[int] = []
        values: list[float] = []
        times: list[float] = []
        not_used = unknown = bad = 0
        with self._lock:
            input_of, devices = self._input_of, self.registry.devices
            for r in readings:
                i = input_of.get((r.device, r.metric))
                if i is None:
                    if r.device in devices:
                        not_used += 1
                    else:
                        unknown += 1
                    continue
                value = r.value
                if isinstance(value, str):
                    bad += 1
                    continue
                idx.append(i)
                values.append(float(value))
                times.append(r.time)
            self._stack.update_many(idx, values, times)
            c = self.counters
            c.used += len(idx)
            c.not_used += not_used
            c.unknown_device += unknown
            c.bad_value += bad

    def evaluate_changes(self, now: float) -> list[ZoneChange]:
        """The zone changes due at time now (for rule events); marks them as sent."""
        with self._lock:
            return self._stack.evaluate(now)

    def commands(self, changes: Sequence[ZoneChange], now: float) -> list[tuple[str, Command]]:
        """One dim command per target device of each change, paired with the target's gateway."""
        expires_at = now + self.command_ttl
        out: list[tuple[str, Command]] = []
        for change in changes:
            origin = f"rule:{change.rule}"
            for target in change.targets:
                command = Command(target.device, Action.DIM, {"level": change.level}, origin,
                                  issued_at=now, expires_at=expires_at)
                out.append((target.gateway, command))
        return out

    def evaluate(self, now: float) -> list[tuple[str, Command]]:
        """The (gateway, command) pairs due at time now."""
        return self.commands(self.evaluate_changes(now), now)

    def rebuild(self, registry: Registry, now: float | None = None, ruleset: RuleSet | None = None) -> None:
        """Switch to a reloaded registry (and rule set), keeping the state of zones that still exist.

        Zones new to the engine get a grace period from now (default: the wall clock). On
        error (RuleConflictError) the engine keeps running on the previous registry.
        """
        ruleset = self.ruleset if ruleset is None else ruleset
        when = time.time() if now is None else now
        # Building takes a while for a large registry: readings keep flowing into the old stack meanwhile.
        stack = PresenceDimmingStack(self._presence_rules(ruleset), registry, self._stack.start_time)
        with self._lock:
            stack.carry_over(self._stack, when)
            self._stack, self._input_of = stack, self._index(stack)
            self.registry, self.ruleset = registry, ruleset
        log.info("rules: rebuilt for %d devices: %d zones, %d input series",
                 len(registry.devices), stack.n_slots, len(stack.inputs))
