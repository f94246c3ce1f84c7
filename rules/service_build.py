"""One build of a rules worker: a rule set over its partition of the registry, compiled into an Engine.

A build is made whole, off the evaluator's thread, and swapped in at once (rules/service.py): the
MQTT callback always sees one consistent engine, with its series names, gateways and urgency.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from core import topics
from core.registry import Registry
from core.topics import Channel
from rules.engine import Engine
from rules.group_zones import GroupZones
from rules.partition import Partition, check_rules, restrict
from rules.rule_model import RuleSet


@dataclass(frozen=True, slots=True)
class Runtime:
    """A rule set compiled over this worker's part of one registry, and what the hot path needs of it."""

    generation: int
    ruleset: RuleSet
    registry: Registry  # the whole registry as WatchedRegistry returned it: its identity tells of a reload
    rules_mtime: int  # st_mtime_ns of the rule file when it was read
    engine: Engine
    gateway_index: dict[str, int]  # gateway id -> its index in engine.gateways
    topics: tuple[str, ...]  # the readings topics of the gateways that feed this worker's series
    zones: GroupZones  # group key -> gemeente and wijk, for the tags of rule events and alarms

    @property
    def series_count(self) -> int:
        """Series the engine keeps."""
        return len(self.engine.series_index)

    @property
    def slot_count(self) -> int:
        """Slots over all rules."""
        return sum(len(rs.groups) for rs in self.engine.slots)


def rules_mtime(path: Path) -> int:
    """The rule file's modification time in ns (0 if it cannot be read: the load then says why)."""
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return 0


def build(ruleset: RuleSet, registry: Registry, partition: Partition, *, now: float, generation: int,
          mtime: int) -> Runtime:
    """Compile ruleset over the partition's devices; raises ConfigError if the rules do not fit the partition."""
    check_rules(ruleset, registry, partition)
    engine = Engine(ruleset, restrict(registry, partition), now)
    gateway_index = {g: i for i, g in enumerate(engine.gateways)}
    feeding = sorted({engine.gateways[int(i)] for i in np.unique(engine.series_gateway)})
    return Runtime(generation, ruleset, registry, mtime, engine, gateway_index,
                   tuple(topics.topic(g, Channel.READINGS) for g in feeding), GroupZones(registry))


def remap(old: Runtime, new: Runtime) -> NDArray[np.intp]:
    """Old series number -> new one (-1: gone), for readings staged against old while new was swapped in."""
    index = new.engine.series_index
    keys = sorted(old.engine.series_index, key=old.engine.series_index.__getitem__)
    return np.fromiter((index.get(k, -1) for k in keys), dtype=np.intp, count=len(keys))
