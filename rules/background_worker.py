"""A bounded queue emptied by one daemon thread: the shape the webhook sender and the rule event writer share.

The caller's side never blocks and never raises: ``offer`` puts an item or, when the queue is full, drops it
and counts it (logged at most once a minute: a counter, not a log flood, for a long outage). The thread takes
up to ``batch_size`` items at a time and hands them to ``_handle``. ``stop(timeout)`` sets a deadline, lets the
thread go on until then, joins it, and counts what is still queued as dropped. ``_back_off`` is the capped
exponential backoff between retries, cut short by that deadline.

A subclass says what its thread is called, which counters it keeps (``counter_names``, each an int attribute
it sets in ``__init__``; ``dropped`` is this class's), how its log lines read and which logger they go to.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from abc import ABC, abstractmethod
from typing import ClassVar, Generic, Self, TypeVar

T = TypeVar("T")

_POLL = 0.2  # how long the thread waits for an item before it looks at stop again
_DROP_LOG_INTERVAL = 60.0


class QueueWorker(ABC, Generic[T]):
    """Items of type T queued by callers and handled by one background thread."""

    thread_name: ClassVar[str]
    counter_names: ClassVar[tuple[str, ...]]  # the keys of counters(), in order, before "pending"
    _log: ClassVar[logging.Logger]
    _full_message: ClassVar[str]  # % (queue size, dropped so far)
    _busy_message: ClassVar[str]  # % stop's timeout
    _left_message: ClassVar[str]  # % items still queued at stop
    # True: once stop's deadline has passed the thread takes nothing more (what is queued is dropped). False: it
    # goes on taking until the queue is empty or stop's join gives up; _handle then honours the deadline itself.
    _deadline_ends_taking: ClassVar[bool] = True

    def __init__(self, *, max_queue: int, backoff: float, max_backoff: float, batch_size: int = 1) -> None:
        self.batch_size = batch_size
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._queue: queue.Queue[T] = queue.Queue(max_queue)
        self._stopping = threading.Event()
        self._deadline = math.inf  # monotonic time after which a stopping worker gives up
        self._thread: threading.Thread | None = None
        self._count_lock = threading.Lock()
        self.dropped = 0  # items not handled: queue full, still queued at stop's deadline, or as the subclass says
        self._last_drop_log = -math.inf

    # -- the caller's side ---------------------------------------------------------------------
    def offer(self, item: T) -> bool:
        """Queue item; False (and counted as dropped) if the queue is full."""
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self._count("dropped")
            now = time.monotonic()
            if now - self._last_drop_log >= _DROP_LOG_INTERVAL:
                self._last_drop_log = now
                self._log.warning(self._full_message, self._queue.maxsize, self.dropped)
            return False
        return True

    def _count(self, name: str, n: int = 1) -> None:
        with self._count_lock:
            setattr(self, name, getattr(self, name) + n)

    @property
    def pending(self) -> int:
        """Items queued, not yet handled."""
        return self._queue.qsize()

    def counters(self) -> dict[str, int]:
        """The counters by name (for metrics and the status endpoint)."""
        out: dict[str, int] = {name: getattr(self, name) for name in self.counter_names}
        out["pending"] = self.pending
        return out

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        """Start the thread (items queued before are handled then)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Handle what is queued for up to timeout seconds, then stop; what is left is counted as dropped."""
        self._deadline = time.monotonic() + timeout
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout + self._join_grace())
            if self._thread.is_alive():
                self._log.warning(self._busy_message, timeout)
            self._thread = None
        left = 0
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
            left += 1
        if left:
            self._count("dropped", left)
            self._log.warning(self._left_message, left)

    def _join_grace(self) -> float:
        """How much longer than stop's timeout stop waits for the thread."""
        return 1.0

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- the thread ----------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            batch = self._take()
            if batch:
                self._handle(batch)
            elif self._stopping.is_set():
                return

    def _take(self) -> list[T]:
        """Up to batch_size items, waiting a moment for the first; [] if none came."""
        if self._deadline_ends_taking and self._stopping.is_set() and time.monotonic() >= self._deadline:
            return []
        try:
            batch = [self._queue.get(timeout=_POLL)]
        except queue.Empty:
            return []
        while len(batch) < self.batch_size:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    @abstractmethod
    def _handle(self, batch: list[T]) -> None:
        """Handle items taken from the queue (in the thread); counts and logs, never raises."""

    def _back_off(self, delay: float, *, to_deadline: bool = False) -> float | None:
        """Wait delay seconds before a retry: the delay before the next one, or None if stop's deadline comes first.

        Once stopping, the wait must fit before the deadline; with to_deadline it is cut to the deadline instead
        (one more try there) and only a deadline already past gives up.
        """
        if self._stopping.is_set():
            remaining = self._deadline - time.monotonic()
            if remaining <= (0.0 if to_deadline else delay):
                return None
            time.sleep(min(delay, remaining))
        else:
            # Returns early on stop(); the retry still happens if the deadline allows (with to_deadline always:
            # the next round then honours the deadline).
            self._stopping.wait(delay)
            if not to_deadline and self._stopping.is_set() and time.monotonic() >= self._deadline:
                return None
        return min(delay * 2, self.max_backoff)
