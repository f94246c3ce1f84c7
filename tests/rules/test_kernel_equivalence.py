"""The vectorised kernel against the scalar reference, and batch against one-at-a-time, on seeded streams."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import numpy.typing as npt
import pytest

from core.registry import Registry
from rules.presence_dimming import PresenceDimmingStack
from rules.reference import ReferencePresenceDimming
from rules.rule_file import PresenceDimmingRule, ZoneLevel, parse_rules
from tests.rules.city import Layout, make_registry, rain_gauge, rule_toml

START = 5000.0
LAYOUT: Layout = {
    "GM0001": {"WK000101": (3, 4), "WK000102": (1, 1), "WK000103": (0, 2)},
    "GM0002": {"WK000201": (4, 3), "WK000202": (2, 0)},
    "GM0003": {"WK000301": (2, 2), "WK000302": (3, 5)},
    "GM0004": {"WK000401": (5, 2), "WK000402": (1, 3), "WK000403": (2, 1)},
}
RULES = parse_rules("version = 1\n"
                    + rule_toml("wijk-lights", gemeenten=["GM0001", "GM0002"], reassert_seconds=100)
                    + rule_toml("town-lights", zone="gemeente", gemeenten=["GM0003"], sensor_metric="count",
                                hold_seconds=12.5, reassert_seconds=0, on_level=70, off_level=0)
                    + rule_toml("short-hold", gemeenten=["GM0004"], hold_seconds=5, reassert_seconds=17,
                                on_level=90, off_level=10)).rules


@pytest.fixture(scope="module")
def city() -> Registry:
    return make_registry(LAYOUT, [rain_gauge(g, w) for g, ws in LAYOUT.items() for w in ws])


def fan_out_rules() -> list[PresenceDimmingRule]:
    """Two rules reading the same sensors, one per target kind, so each input feeds two slots.

    No real kind besides street_light is dimmable yet, so the second rule targets rain gauges,
    built past the file validation: the kernel only cares that targets differ.
    """
    base = RULES[0]
    return [replace(base, name="lights", gemeenten=None),
            replace(base, name="gauges", zone=ZoneLevel.GEMEENTE, gemeenten=None, target_kind="rain_gauge",
                    hold_seconds=7.0, reassert_seconds=40.0)]


Batch = tuple[npt.NDArray[np.intp], npt.NDArray[np.float64], npt.NDArray[np.float64]]


def stream(seed: int, n_inputs: int, holds: list[float], steps: int = 300) -> Iterator[tuple[Batch, float]]:
    """Batches of readings and the time to evaluate after each: late readings, NaN, exact hold edges."""
    rng = np.random.default_rng(seed)
    grace_ends = sorted(START + h for h in set(holds))
    clock = START - 20.0
    for _ in range(steps):
        n = int(rng.integers(0, 30))
        idx = rng.integers(0, n_inputs, n).astype(np.intp)
        values = rng.choice([0.0, 0.0, 0.0, 1.0, 1.0, 3.0, np.nan, -1.0], n)
        lateness = np.where(rng.random(n) < 0.1, rng.uniform(0, 200, n), rng.exponential(1.0, n))
        ts = np.round(clock - lateness, 3)
        clock += float(rng.choice([0.0, 0.25, 1.0, 4.0, 7.0, 13.0, 31.0, 120.0]))
        now = clock
        if grace_ends and clock >= grace_ends[0]:  # evaluate exactly at the end of each grace period
            now = clock = grace_ends.pop(0)
        elif n and rng.random() < 0.2:  # land exactly on a hold boundary of some reading
            now = max(clock, float(ts[rng.integers(0, n)]) + float(rng.choice(holds)))
            clock = now
        yield (idx, values, ts), now


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("fan_out", [False, True], ids=["one-slot-per-input", "fan-out"])
def test_vectorised_equals_scalar_reference(city: Registry, seed: int, fan_out: bool) -> None:
    rules = fan_out_rules() if fan_out else list(RULES)
    fast = PresenceDimmingStack(rules, city, START)
    slow = ReferencePresenceDimming(rules, city, START)
    assert fast.inputs == slow.inputs
    assert fast.slot_keys == tuple((z.rule.name, z.code) for z in slow.zones)
    if fan_out:
        assert len(fast.slot_keys) > len(RULES) and fast._slot_of_input is None
    emitted = 0
    holds = [r.hold_seconds for r in rules]
    for (idx, values, ts), now in stream(seed, len(fast.inputs), holds):
        fast.update_many(idx, values, ts)
        slow.update_many(idx, values, ts)
        expected = slow.evaluate(now)
        assert fast.evaluate(now) == expected, now
        emitted += len(expected)
    assert emitted > 50  # the stream exercised real transitions, not only silence


@pytest.mark.parametrize("seed", range(4))
def test_batch_equals_one_at_a_time_and_any_split(city: Registry, seed: int) -> None:
    rules = fan_out_rules() if seed % 2 else list(RULES)
    whole = PresenceDimmingStack(rules, city, START)
    single = PresenceDimmingStack(rules, city, START)
    split = PresenceDimmingStack(rules, city, START)
    rng = np.random.default_rng(100 + seed)
    for (idx, values, ts), now in stream(seed, len(whole.inputs), [r.hold_seconds for r in rules]):
        whole.update_many(idx, values, ts)
        for i in range(len(idx)):
            single.update_many(idx[i:i + 1], values[i:i + 1], ts[i:i + 1])
        cuts = np.sort(rng.integers(0, len(idx) + 1, 3))
        for part in np.split(np.arange(len(idx)), cuts):
            split.update_many(idx[part], values[part], ts[part])
        np.testing.assert_array_equal(whole.last_presence, single.last_presence)
        np.testing.assert_array_equal(whole.last_presence, split.last_presence)
        expected = whole.evaluate(now)
        assert single.evaluate(now) == expected
        assert split.evaluate(now) == expected


def test_kernel_pickles_mid_stream_and_continues_identically(city: Registry) -> None:
    kernel = PresenceDimmingStack(list(RULES), city, START)
    batches = list(stream(11, len(kernel.inputs), [5.0, 12.5, 30.0]))
    for (idx, values, ts), now in batches[:150]:
        kernel.update_many(idx, values, ts)
        kernel.evaluate(now)
    clone = pickle.loads(pickle.dumps(kernel))
    for (idx, values, ts), now in batches[150:]:
        kernel.update_many(idx, values, ts)
        clone.update_many(idx, values, ts)
        assert clone.evaluate(now) == kernel.evaluate(now)
