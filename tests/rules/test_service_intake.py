"""The hot path without a broker: screening by gateway and time, urgency, and readings staged across a reload."""

import json

import numpy as np
import pytest

from rules.intake import Intake, fold_staged
from rules.partition import Partition
from rules.rule_file import parse_rules
from rules.service_build import build, remap
from rules.service_metrics import IntakeCounts
from tests.rules.city import make_registry

NOW = 1_800_000_000.0
RULES = """
version = 2
[[rules]]
name = "p"
kind = "occupancy"
group_by = "wijk"
{where}
urgent = {urgent}
values.p = {{ metric = "presence" }}
when = "p > 0"
on_activate = [{{ command = "dim", params = {{ level = 100 }}, targets = {{ kind = "street_light" }} }}]
"""
TOPIC = "smartcity/v1/gw/{}/readings"


def runtime(generation=0, urgent=True, where=""):
    ruleset = parse_rules(RULES.format(urgent="true" if urgent else "false", where=where))
    return build(ruleset, make_registry(), Partition(), now=NOW, generation=generation, mtime=0)


def pack(*records):
    return json.dumps([{"bn": f"{d}/", "n": "presence", "vb": True, "bt": t} for d, t in records]).encode()


def intake_for(rt, woken=None):
    return Intake(rt, IntakeCounts(), max_lateness=3600, max_skew=300, clock=lambda: NOW,
                  wake=lambda: woken.append(1) if woken is not None else None)


def test_readings_are_screened_by_gateway_and_time_bounds():
    rt = runtime()
    woken = []
    intake = intake_for(rt, woken)
    # occupancy sensors are on gateway -a of their wijk (tests/rules/city.py)
    intake.on_message(TOPIC.format("gw-WK000101-a"), pack(
        ("occ-WK000101-0", NOW), ("occ-WK000101-1", NOW - 3601), ("occ-WK000101-1", NOW + 301),
        ("occ-WK000102-0", NOW), ("occ-WK000101-1", NOW + 299)))
    [staged] = intake.take()
    names = rt.engine.series_names
    assert staged.series.tolist() == [names["occ-WK000101-0/presence"], names["occ-WK000101-1/presence"]]
    assert staged.times.tolist() == [NOW, NOW + 299] and staged.received == NOW
    c = intake.counts
    assert (c.readings_used, c.wrong_gateway, c.too_late, c.future) == (2, 1, 1, 1)
    assert woken == [1]
    assert intake.take() == []


def test_a_gateway_that_feeds_no_series_has_every_reading_refused():
    intake = intake_for(runtime())
    intake.on_message(TOPIC.format("gw-unknown"), pack(("occ-WK000101-0", NOW)))
    assert intake.take() == [] and intake.counts.wrong_gateway == 1


def test_only_urgent_series_wake_the_evaluator():
    woken = []
    intake = intake_for(runtime(urgent=False), woken)
    intake.on_message(TOPIC.format("gw-WK000101-a"), pack(("occ-WK000101-0", NOW)))
    assert len(intake.take()) == 1 and woken == []


@pytest.mark.parametrize(("topic", "payload"), [("not/a/topic", b"[]"), (TOPIC.format("gw-WK000101-a"), b"{"),
                                                ("smartcity/v1/gw/gw-WK000101-a/acks", b"[]")])
def test_bad_messages_are_counted(topic, payload):
    intake = intake_for(runtime())
    intake.on_message(topic, payload)
    assert intake.counts.bad_messages == 1 and intake.take() == []


def test_readings_staged_against_the_previous_build_are_renumbered_into_the_new_one():
    old = runtime(0)
    new = runtime(1, where='where = { wijk = ["WK000101", "WK000201"] }')  # WK000102's sensor is gone
    intake = intake_for(old)
    intake.on_message(TOPIC.format("gw-WK000101-a"), pack(("occ-WK000101-1", NOW - 5)))
    intake.on_message(TOPIC.format("gw-WK000102-a"), pack(("occ-WK000102-0", NOW - 4)))
    intake.on_message(TOPIC.format("gw-WK000201-a"), pack(("occ-WK000201-0", NOW - 3)))
    leftover = intake.swap(new)
    assert [s.generation for s in leftover] == [0, 0, 0] and intake.runtime is new
    lut = remap(old, new)
    assert lut[old.engine.series_names["occ-WK000102-0/presence"]] == -1
    fold_staged(new, leftover, previous=old)
    state = new.engine.snapshot()
    times = dict(zip(state["series_keys"], state["series_time"].tolist(), strict=True))
    assert times["occ-WK000101-1/presence"] == NOW - 5 and times["occ-WK000201-0/presence"] == NOW - 3
    assert "occ-WK000102-0/presence" not in times
    assert times["occ-WK000101-0/presence"] == -np.inf  # never heard of
