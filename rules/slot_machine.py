"""The per-slot state machine of rules/README.md ("The state machine"), vectorised over all slots.

``for`` / ``clear_for`` / ``cooldown`` / ``reassert`` are per-slot parameter arrays, so every rule
of every kind advances in one pass; transitions are found by comparing boolean arrays.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
Bool = npt.NDArray[np.bool_]
IntP = npt.NDArray[np.intp]

STATE_ARRAYS = ("active", "established", "pending", "clearing", "last_clear", "last_sent")


class SlotMachine:
    """State and parameters of every slot; ``step`` advances them all to one evaluation time."""

    def __init__(self, for_s: F64, clear_for_s: F64, cooldown_s: F64, reassert_s: F64) -> None:
        n = len(for_s)
        self.for_s, self.clear_for_s, self.cooldown_s = for_s, clear_for_s, cooldown_s
        self.reassert_s = reassert_s
        self.reasserts: Bool = reassert_s > 0
        self.active: Bool = np.zeros(n, dtype=bool)
        self.established: Bool = np.zeros(n, dtype=bool)  # has made a transition
        self.pending: F64 = np.full(n, np.nan)  # since when `when` has held (inactive slots)
        self.clearing: F64 = np.full(n, np.nan)  # since when the clear condition has held
        self.last_clear: F64 = np.full(n, -np.inf)
        self.last_sent: F64 = np.full(n, -np.inf)

    def step(self, activate: Bool, clear: Bool, now: float) -> tuple[IntP, IntP, IntP]:
        """Advance every slot to time now; returns the slots that (activated, cleared, re-assert)."""
        active = self.active
        inactive = ~active
        arm = inactive & activate
        np.copyto(self.pending, np.nan, where=inactive & ~activate)
        np.copyto(self.pending, now, where=arm & np.isnan(self.pending))
        with np.errstate(invalid="ignore"):
            fire = arm & (now - self.pending >= self.for_s) & (now - self.last_clear >= self.cooldown_s)
        hold = active & clear
        np.copyto(self.clearing, np.nan, where=active & ~clear)
        np.copyto(self.clearing, now, where=hold & np.isnan(self.clearing))
        with np.errstate(invalid="ignore"):
            drop = hold & (now - self.clearing >= self.clear_for_s)
        moved = fire | drop
        fired = np.flatnonzero(fire)
        dropped = np.flatnonzero(drop)
        if fired.size or dropped.size:
            active[fired] = True
            active[dropped] = False
            self.pending[moved] = np.nan
            self.clearing[moved] = np.nan
            self.last_clear[dropped] = now
            self.last_sent[moved] = now
            self.established[moved] = True
        again = np.flatnonzero(self.reasserts & self.established & ~moved
                               & (now - self.last_sent >= self.reassert_s))
        if again.size:
            self.last_sent[again] = now
        return fired, dropped, again
