"""The queue worker base: bounded offer, batches, stop's drain and deadline, backoff."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from rules.background_worker import QueueWorker
from tests.conftest import wait_for

log = logging.getLogger(__name__)


class Recorder(QueueWorker[int]):
    thread_name = "test-worker"
    counter_names = ("handled", "dropped")
    _log = log
    _full_message = "test queue full (%d): %d dropped"
    _busy_message = "test worker busy after %.1f s"
    _left_message = "test worker stopped with %d left"

    def __init__(self, max_queue: int = 10, batch_size: int = 1, gate: threading.Event | None = None) -> None:
        super().__init__(max_queue=max_queue, backoff=0.01, max_backoff=0.04, batch_size=batch_size)
        self.handled = 0
        self.batches: list[list[int]] = []
        self.gate = gate

    def _handle(self, batch: list[int]) -> None:
        if self.gate is not None:
            self.gate.wait(5)
        self.batches.append(batch)
        self._count("handled", len(batch))


def test_a_full_queue_drops_counts_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    w = Recorder(max_queue=2)
    with caplog.at_level(logging.WARNING, logger=__name__):
        assert [w.offer(i) for i in range(5)] == [True, True, False, False, False]
    assert w.counters() == {"handled": 0, "dropped": 3, "pending": 2}
    assert [r.getMessage() for r in caplog.records] == ["test queue full (2): 1 dropped"]


def test_items_are_taken_in_batches_and_stop_drains() -> None:
    w = Recorder(batch_size=3)
    for i in range(7):
        w.offer(i)
    with w:
        wait_for(lambda: w.handled == 7)
    assert w.batches == [[0, 1, 2], [3, 4, 5], [6]]
    assert w.counters() == {"handled": 7, "dropped": 0, "pending": 0}


def test_stop_counts_what_is_left_at_its_deadline() -> None:
    gate = threading.Event()
    w = Recorder(gate=gate)
    for i in range(4):
        w.offer(i)
    w.start()
    wait_for(lambda: w.pending == 3)  # the first item is being handled, held by the gate
    stopper = threading.Timer(0.3, gate.set)
    stopper.start()
    w.stop(0.1)  # the deadline passes while item 0 is held: the rest is not taken
    stopper.join()
    assert (w.handled, w.dropped, w.pending) == (1, 3, 0)


def test_back_off_doubles_up_to_the_cap() -> None:
    w = Recorder()
    assert [w._back_off(d) for d in (0.01, 0.02, 0.04)] == [0.02, 0.04, 0.04]


def test_back_off_once_stopping_fits_the_wait_before_the_deadline_or_gives_up() -> None:
    w = Recorder()
    w.stop(0.2)
    assert w._back_off(0.5) is None  # does not fit
    started = time.monotonic()
    assert w._back_off(0.5, to_deadline=True) == 0.04  # cut to the deadline, one more try there
    assert time.monotonic() - started < 0.4
    assert w._back_off(0.01, to_deadline=True) is None  # the deadline has passed
