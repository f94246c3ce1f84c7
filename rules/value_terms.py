"""Rule values as gather + group-reduce operators over member series (README, "Values").

All (rule, value) pairs with the same series function, window and reducer form one
``ValueOperator``: its members are laid out in output order, each output is one (rule, value,
slot), and one evaluation is a gather from the series (or window) arrays, a reduction over
output segments, and a scatter into the programs' variable buffer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from rules.rule_model import Reducer, SeriesFn
from rules.series_state import SeriesState
from rules.window_ring import WindowRing

F64 = npt.NDArray[np.float64]
IntP = npt.NDArray[np.intp]


@dataclass(slots=True)
class OperatorBuilder:
    """Collects outputs (a member list and a destination each) before the arrays are built."""

    fn: SeriesFn
    over: float | None
    reduce: Reducer
    members: list[int] = field(default_factory=list)
    stale: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    dest: list[int] = field(default_factory=list)

    def add(self, series: list[int], stale_after: float, dest: int) -> None:
        """One output: the member series of one (rule, value, slot) and where its value goes."""
        self.members.extend(series)
        self.stale.extend([stale_after] * len(series))
        self.sizes.append(len(series))
        self.dest.append(dest)


class ValueOperator:
    """One (fn, over, reduce) family of rule values, evaluated in a handful of numpy calls."""

    def __init__(self, b: OperatorBuilder, ring: WindowRing | None) -> None:
        self.fn, self.over, self.reduce = b.fn, b.over, b.reduce
        self.ring = ring
        self.members: IntP = np.asarray(b.members, dtype=np.intp)
        self.stale: F64 = np.asarray(b.stale, dtype=np.float64)
        sizes = np.asarray(b.sizes, dtype=np.intp)
        self.dest: IntP = np.asarray(b.dest, dtype=np.intp)
        self.n_out = len(sizes)
        self.rows: IntP | None = ring.row_of.take(self.members) if ring is not None else None
        # One member per output (per-device rules): the reduction is the identity.
        self.direct = bool(np.all(sizes == 1))
        self.segment: IntP = np.repeat(np.arange(self.n_out, dtype=np.intp), sizes)
        self.nonempty: IntP = np.flatnonzero(sizes > 0)
        starts = np.zeros(self.n_out, dtype=np.intp)
        np.cumsum(sizes[:-1], out=starts[1:])
        self.starts: IntP = starts.take(self.nonempty)

    def source(self, series: SeriesState, now: float) -> F64:
        """Each member's series function at time now (NaN: missing)."""
        m = self.members
        if self.fn is SeriesFn.LAST:
            values = series.value.take(m)
            stale = (now - series.time.take(m)) > self.stale
            values[stale] = np.nan
            return values
        if self.fn is SeriesFn.SILENCE:
            return now - series.received.take(m)
        assert self.ring is not None and self.rows is not None
        return self.ring.results[self.fn].take(self.rows)

    def compute(self, series: SeriesState, now: float) -> F64:
        """The value of every output at time now."""
        src = self.source(series, now)
        if self.direct:
            if self.reduce is Reducer.COUNT:
                return (~np.isnan(src)).astype(np.float64)
            return src
        valid = ~np.isnan(src)
        # bincount with weights is float64 (numpy's stubs say int).
        count: F64 = np.bincount(self.segment, weights=valid, minlength=self.n_out).astype(np.float64, copy=False)
        if self.reduce is Reducer.COUNT:
            return count
        if self.reduce is Reducer.SUM or self.reduce is Reducer.MEAN:
            total: F64 = np.bincount(self.segment, weights=np.where(valid, src, 0.0),
                                     minlength=self.n_out).astype(np.float64, copy=False)
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = total if self.reduce is Reducer.SUM else total / count
            return np.where(count > 0, mean, np.nan)
        out = np.full(self.n_out, np.nan)
        if self.nonempty.size:
            if self.reduce is Reducer.MAX:
                r = np.maximum.reduceat(np.where(valid, src, -np.inf), self.starts)
            else:
                r = np.minimum.reduceat(np.where(valid, src, np.inf), self.starts)
            out[self.nonempty] = r
        out[count == 0] = np.nan
        return out
