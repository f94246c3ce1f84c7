"""ingest.messages.MessageConverter on acks: stored at the gateway's time, so a redelivered ack is one point."""

from __future__ import annotations

import time

from core.commands import Ack, AckStatus
from core.registry import WatchedRegistry
from ingest.messages import MessageConverter
from ingest.metrics import IngestMetrics
from smartcity.data import demo_registry_path

TOPIC = "smartcity/v1/gw/gw-vs-01/acks"


def converter() -> MessageConverter:
    return MessageConverter(WatchedRegistry(demo_registry_path()), IngestMetrics(), "test")


def test_an_ack_delivered_twice_is_the_same_point() -> None:
    now = time.time()
    payload = Ack("c-1", "vs-sl-101", AckStatus.APPLIED, "ok", at=now - 2.5).to_json()
    c = converter()
    first, _ = c.convert(TOPIC, payload, now)
    again, _ = c.convert(TOPIC, payload, now + 30)  # after a broker restart, say
    assert first == again
    # Stored at the ack's own time (to the microsecond; float rounding may move the last digit).
    assert abs(int(first[0].rsplit(" ", 1)[1]) - (now - 2.5) * 1e6) <= 1


def test_an_ack_without_a_sane_time_gets_a_receive_time_that_never_repeats() -> None:
    now = time.time()
    c = converter()
    old = Ack("c-1", "vs-sl-101", AckStatus.APPLIED, "ok").to_json()  # an older agent: no time
    skewed = Ack("c-2", "vs-sl-101", AckStatus.APPLIED, "ok", at=now + 86400).to_json()  # a clock a day ahead
    times = [c.convert(TOPIC, p, now)[0][0].rsplit(" ", 1)[1] for p in (old, old, skewed)]
    assert len(set(times)) == 3 and all(abs(int(t) / 1e6 - now) < 1 for t in times)
