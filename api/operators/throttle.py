"""Throttling of failed logins, per operator name and per client address, with growing delays.

After ``free`` failures in a row a key (a name, or an address) is blocked for a delay that
doubles with each further failure, up to ``max_delay``; while blocked, login attempts for it
answer 429 with Retry-After *without* checking the credentials, so guessing is no faster than
the delays allow, and argon2 is not run for an attacker. A success clears the name's count (not
the address's: one valid account must not reset a guessing client's budget). Failures are
forgotten ``forget_after`` seconds after the last one. The table is bounded (oldest keys go
first) so that a flood of made-up names cannot exhaust memory.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Record:
    failures: int
    last: float
    blocked_until: float


class Throttle:
    """Counts failures per key and says how long a key must wait."""

    def __init__(self, free: int, *, base_delay: float = 1.0, max_delay: float = 900.0,
                 forget_after: float = 3600.0, max_keys: int = 50_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.free = free
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.forget_after = forget_after
        self.max_keys = max_keys
        self._clock = clock
        self._records: OrderedDict[str, _Record] = OrderedDict()
        self._lock = threading.Lock()

    def wait(self, key: str) -> float:
        """Seconds until key may try again (0: now)."""
        now = self._clock()
        with self._lock:
            rec = self._records.get(key)
            if rec is None:
                return 0.0
            if now - rec.last > self.forget_after:
                del self._records[key]
                return 0.0
            return max(0.0, rec.blocked_until - now)

    def failure(self, key: str) -> float:
        """Count a failure; returns the delay now imposed on key (0 while within the free attempts)."""
        now = self._clock()
        with self._lock:
            rec = self._records.pop(key, None)
            if rec is None or now - rec.last > self.forget_after:
                rec = _Record(0, now, now)
            rec.failures += 1
            rec.last = now
            over = rec.failures - self.free
            delay = 0.0 if over <= 0 else min(self.max_delay, self.base_delay * 2 ** min(over - 1, 30))
            rec.blocked_until = now + delay
            self._records[key] = rec  # re-inserted: the newest at the end, the oldest evicted first
            while len(self._records) > self.max_keys:
                self._records.popitem(last=False)
            return delay

    def success(self, key: str) -> None:
        """Forget key's failures."""
        with self._lock:
            self._records.pop(key, None)


class LoginThrottle:
    """Failed logins throttled per name (5 free) and per client address (20 free, for shared NATs).

    Refused (throttled) attempts are audited in summary: ``audit_refusal`` says to write a row at
    most once per (name, address) and ``audit_interval``, with how many refusals it stands for, so
    that a guessing flood cannot grow the audit log by a row per request.
    """

    def __init__(self, names: Throttle | None = None, addresses: Throttle | None = None, *,
                 audit_interval: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.names = names or Throttle(free=5)
        self.addresses = addresses or Throttle(free=20)
        self.audit_interval = audit_interval
        self._clock = clock
        self._refusals: OrderedDict[tuple[str | None, str], tuple[float, int]] = OrderedDict()
        self._lock = threading.Lock()

    def audit_refusal(self, name: str | None, address: str) -> int | None:
        """None: do not write a row for this refusal; else write one, standing for this many earlier ones too."""
        now = self._clock()
        key = (name, address)
        with self._lock:
            last, count = self._refusals.pop(key, (float("-inf"), 0))
            if now - last < self.audit_interval:
                self._refusals[key] = (last, count + 1)
                return None
            self._refusals[key] = (now, 0)
            while len(self._refusals) > 10_000:
                self._refusals.popitem(last=False)
            return count

    def wait(self, name: str | None, address: str) -> float:
        """Seconds the caller must wait before this login may be tried (0: try now)."""
        by_name = self.names.wait(name) if name else 0.0
        return max(by_name, self.addresses.wait(address))

    def failure(self, name: str | None, address: str) -> float:
        """Count a failed login; returns the delay imposed."""
        by_name = self.names.failure(name) if name else 0.0
        return max(by_name, self.addresses.failure(address))

    def success(self, name: str) -> None:
        """A successful login clears the name's failures."""
        self.names.success(name)
