"""Ingest messages end to end in-process (MessageConverter.convert) and the rules' intake (Intake.on_message).

Sessions of random topics and payloads (any channel, known and unknown gateways, mutated good packs,
SenML/command/status junk, raw bytes) with a good pack among them. Invariants: nothing raises;
the good pack gives exactly the lines it gives alone; every output line is line protocol; a bad
message is a dead letter line (counted by reason) and a pack's records are each accepted or counted
as rejected; in the rules' intake every message is counted, the good pack is staged whole, and the
two decoders of core.senml_select (msgspec and orjson) agree on every pack.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from core.registry import WatchedRegistry
from core.senml import Reading, encode
from core.senml_columns import SenMLError, decode_columns
from core.senml_select import decode_selected_msgspec, decode_selected_orjson
from ingest.messages import MessageConverter
from ingest.metrics import IngestMetrics
from rules.intake import Intake
from rules.partition import Partition
from rules.rule_file import parse_rules
from rules.service_build import build
from rules.service_metrics import IntakeCounts
from smartcity.data import demo_registry_path
from tests.edge.test_parser_fuzz import _command_payloads, _ids, _json_values, _senml_payloads
from tests.fuzz.support import FUZZ, assert_line_protocol, mutated_bytes
from tests.rules.city import make_registry

_P = "smartcity_ingest"
_CHANNELS = ["readings", "status", "commands", "acks", "x", "", "readings/extra"]


def _topics(gateways: list[str]) -> st.SearchStrategy[str]:
    prefixes = st.sampled_from(["smartcity/v1/gw", "smartcity/v2/gw", "a/b/c"])
    structured = st.builds(lambda p, g, c: f"{p}/{g}/{c}", prefixes, st.sampled_from(gateways) | _ids,
                           st.sampled_from(_CHANNELS))
    return st.integers(0, 9).flatmap(lambda i: structured if i < 8 else st.text(max_size=60))


_status = st.one_of(
    st.fixed_dictionaries({"state": st.sampled_from(["online", "offline", "", "x" * 40]) | _json_values},
                          optional={"seq": _json_values, "since": _json_values, "at": _json_values,
                                    "health": _json_values | st.dictionaries(st.text(max_size=8), _json_values)}),
    _json_values).map(lambda d: json.dumps(d).encode())


def _payloads(good: bytes) -> st.SearchStrategy[bytes]:
    as_bytes = st.one_of(_senml_payloads, _command_payloads).map(lambda p: p.encode("utf-8", "surrogatepass")
                                                                 if isinstance(p, str) else p)
    return st.one_of(mutated_bytes(st.just(good)), as_bytes, _status, st.binary(max_size=80))


# --- ingest ---

NOW = time.time()  # the ingest refuses readings far from its clock: the good pack is of now
GATEWAY = "gw-vs-01"
READINGS_TOPIC = f"smartcity/v1/gw/{GATEWAY}/readings"
GOOD_PACK = encode([Reading(d, m, float(i) + 0.5, NOW - 100 + i, u)
                    for i, d in enumerate(["vs-sl-101", "vs-sl-103", "vs-sl-201"])
                    for m, u in (("dim_level", "%"), ("power", "W"))], 7)
METRICS = IngestMetrics()
CONVERTER = MessageConverter(WatchedRegistry(demo_registry_path()), METRICS, "fuzz")
GOOD_LINES, GOOD_SEQ = CONVERTER.convert(READINGS_TOPIC, GOOD_PACK, NOW)
assert len(GOOD_LINES) == 3 and GOOD_SEQ == (GATEWAY, 7, 6), GOOD_LINES  # one point per device and time


def _no_measurement(payload: bytes) -> bool:
    try:
        cols = decode_columns(payload, NOW)
    except SenMLError:
        return False
    return not cols.names and not cols.errors


def _counts() -> tuple[float, float, float]:
    return (METRICS.value(f"{_P}_records_accepted_total"), METRICS.total(f"{_P}_rejected_records_total"),
            METRICS.total(f"{_P}_dead_letters_total"))


@FUZZ
@given(messages=st.lists(st.tuples(_topics([GATEWAY, "gw-ws-01"]), _payloads(GOOD_PACK)), max_size=6),
       good_at=st.integers(0, 6))
def test_ingest_converts_every_message_without_raising_and_keeps_the_good_pack(
        messages: list[tuple[str, bytes]], good_at: int) -> None:
    messages.insert(min(good_at, len(messages)), (READINGS_TOPIC, GOOD_PACK))
    for topic, payload in messages:
        accepted, rejected, dead = _counts()
        lines, seq = CONVERTER.convert(topic, payload, NOW)
        for line in lines:
            assert_line_protocol(line)
        dead_lines = [line for line in lines if line.startswith("dead_letter,")]
        after = _counts()
        assert after[2] - dead == len(dead_lines)  # each dead letter line is counted, by reason
        if (topic, payload) == (READINGS_TOPIC, GOOD_PACK):
            assert (lines, seq) == (GOOD_LINES, GOOD_SEQ)
            continue
        readings = topic.startswith("smartcity/v1/gw/") and topic.endswith("/readings") and topic.count("/") == 4
        # A message never vanishes: points, or a dead letter. The exception: a pack whose records only set
        # base fields (or are empty objects, '[{}]') carries no measurement, so there is nothing to write.
        assert lines or (readings and _no_measurement(payload)), (topic, payload[:200])
        if topic.startswith("smartcity/v1/gw/") and topic.endswith("/readings") and topic.count("/") == 4 \
                and not any(",reason=bad_topic," in line for line in dead_lines):
            try:
                cols = decode_columns(payload, NOW)
            except SenMLError:
                assert any(",reason=bad_pack," in line for line in dead_lines), lines
                continue
            # Every record of the pack is accepted or counted as rejected: none is lost silently.
            assert (after[0] - accepted) + (after[1] - rejected) == len(cols.names) + len(cols.errors)


# --- rules intake ---

RULES_NOW = 1_800_000_000.0
RULES = """
version = 2
[[rules]]
name = "p"
kind = "occupancy"
group_by = "wijk"
values.p = { metric = "presence" }
when = "p > 0"
on_activate = [{ command = "dim", params = { level = 100 }, targets = { kind = "street_light" } }]
"""
RUNTIME = build(parse_rules(RULES), make_registry(), Partition(), now=RULES_NOW, generation=0, mtime=0)
RULES_GATEWAY = "gw-WK000101-a"
RULES_TOPIC = f"smartcity/v1/gw/{RULES_GATEWAY}/readings"
RULES_PACK = json.dumps([{"bn": f"occ-WK000101-{i}/", "n": "presence", "vb": True, "bt": RULES_NOW - i}
                         for i in range(2)]).encode()
_COUNTS = ("bad_messages", "bad_records", "not_used", "bad_value", "wrong_gateway", "too_late", "future",
           "readings_used")


def _rules_counts(counts: IntakeCounts) -> dict[str, int]:
    return {name: getattr(counts, name) for name in (*_COUNTS, "messages")}


@FUZZ
@given(messages=st.lists(st.tuples(_topics([RULES_GATEWAY, "gw-WK000102-a"]), _payloads(RULES_PACK)), max_size=6),
       good_at=st.integers(0, 6))
def test_rules_intake_counts_every_message_and_stages_the_good_pack(
        messages: list[tuple[str, bytes]], good_at: int) -> None:
    intake = Intake(RUNTIME, IntakeCounts(), max_lateness=3600, max_skew=300, clock=lambda: RULES_NOW,
                    wake=lambda: None)
    messages.insert(min(good_at, len(messages)), (RULES_TOPIC, RULES_PACK))
    names = RUNTIME.engine.series_names
    for topic, payload in messages:
        before = _rules_counts(intake.counts)
        intake.on_message(topic, payload)  # never raises; an exception fails the example
        after = _rules_counts(intake.counts)
        staged = intake.take()
        assert after["messages"] == before["messages"] + 1
        if (topic, payload) == (RULES_TOPIC, RULES_PACK):
            [one] = staged
            assert one.series.tolist() == [names[f"occ-WK000101-{i}/presence"] for i in range(2)]
            assert one.times.tolist() == [RULES_NOW, RULES_NOW - 1] and one.values.tolist() == [1.0, 1.0]
        for s in staged:  # what is staged is finite and inside the time bounds
            assert np.isfinite(s.values).all() and (s.times >= RULES_NOW - 3600).all()
            assert (s.times <= RULES_NOW + 300).all()


@FUZZ
@given(payload=_payloads(RULES_PACK))
def test_both_rules_decoders_agree_on_every_pack(payload: bytes) -> None:
    names = RUNTIME.engine.series_names
    try:
        fast: Any = decode_selected_msgspec(payload, names, RULES_NOW)
    except SenMLError as exc:
        fast = ("error", type(exc))
    try:
        slow: Any = decode_selected_orjson(payload, names, RULES_NOW)
    except SenMLError as exc:
        slow = ("error", type(exc))
    if fast is None:
        return  # msgspec could not read this pack: decode_selected uses the orjson decoder alone
    if isinstance(fast, tuple) or isinstance(slow, tuple):
        assert isinstance(fast, tuple) and isinstance(slow, tuple), (fast, slow, payload[:200])
        return
    assert fast.series.tolist() == slow.series.tolist() and fast.seq == slow.seq, payload[:200]
    assert np.array_equal(fast.values, slow.values) and np.array_equal(fast.times, slow.times)
    assert (fast.records, fast.not_used, fast.bad_value, fast.bad_record) == \
        (slow.records, slow.not_used, slow.bad_value, slow.bad_record), payload[:200]
