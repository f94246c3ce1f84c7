"""Trailing windows as rings of buckets over event time (rules/README.md, "Values at evaluation time").

One ``WindowRing`` holds every series that some rule windows over the same ``over``: a
(rows x 12) array per aggregate, plus the bucket number (stamp) each cell holds.
Folding is O(batch) with ufunc.at scatters; evaluating recomputes only the rows touched since
the last evaluation, and all rows when the current bucket moves on (every over/12 seconds).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from rules.rule_model import WINDOW_BUCKETS, SeriesFn

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
IntP = npt.NDArray[np.intp]
B = WINDOW_BUCKETS
_NO_STAMP = np.iinfo(np.int64).min
_BIG = np.iinfo(np.intp).max

# The aggregates each windowed function reads.
NEEDS: dict[SeriesFn, tuple[str, ...]] = {
    SeriesFn.MEAN: ("sum", "count"),
    SeriesFn.SUM: ("sum",),
    SeriesFn.COUNT: ("count",),
    SeriesFn.MIN: ("min",),
    SeriesFn.MAX: ("max",),
    SeriesFn.RATE: ("first", "last"),
    SeriesFn.DELTA: ("first", "last"),
}


class WindowRing:
    """The buckets of all series windowed over one duration, and the functions computed from them."""

    def __init__(self, over: float, series: IntP, n_series: int, fns: Iterable[SeriesFn]) -> None:
        self.over = float(over)
        self.width = self.over / B
        self.series = series  # sorted series numbers, one row each
        self.fns = tuple(sorted(set(fns)))
        rows = len(series)
        self.row_of = np.full(n_series, -1, dtype=np.intp)
        self.row_of[series] = np.arange(rows, dtype=np.intp)
        # Every aggregate, whatever this build's rules read: a reload that adds a function over
        # the same window (a count next to a rate) must find its history in the restored cells.
        needs = {a for fn in SeriesFn if fn.windowed for a in NEEDS[fn]}
        self.stamp: I64 = np.full(rows * B, _NO_STAMP, dtype=np.int64)
        self.sum: F64 | None = np.zeros(rows * B) if "sum" in needs else None
        self.count: F64 | None = np.zeros(rows * B) if "count" in needs else None
        self.min: F64 | None = np.full(rows * B, np.inf) if "min" in needs else None
        self.max: F64 | None = np.full(rows * B, -np.inf) if "max" in needs else None
        first_last = "first" in needs
        self.first_t: F64 | None = np.full(rows * B, np.inf) if first_last else None
        self.first_v: F64 | None = np.full(rows * B, np.nan) if first_last else None
        self.last_t: F64 | None = np.full(rows * B, -np.inf) if first_last else None
        self.last_v: F64 | None = np.full(rows * B, np.nan) if first_last else None
        # Scratch per cell, touched only where a batch lands.
        self._scratch_t = np.full(rows * B, np.inf)
        self._scratch_i = np.full(rows * B, -1, dtype=np.intp)
        self.results: dict[SeriesFn, F64] = {fn: np.full(rows, np.nan) for fn in self.fns}
        self._dirty = np.zeros(rows, dtype=bool)
        self._bucket: int | None = None  # the current bucket the results were computed for
        self.late = 0  # readings for a bucket older than their cell holds (README: late_for_window)

    def invalidate(self) -> None:
        """Recompute every row at the next compute() (after a restore wrote the arrays directly)."""
        self._bucket = None

    def reset_cells(self, cells: IntP) -> None:
        """Empty the given cells (identity of every aggregate)."""
        for arr, empty in ((self.sum, 0.0), (self.count, 0.0), (self.min, np.inf), (self.max, -np.inf),
                           (self.first_t, np.inf), (self.first_v, np.nan), (self.last_t, -np.inf),
                           (self.last_v, np.nan)):
            if arr is not None:
                arr[cells] = empty

    def fold(self, series: IntP, values: F64, times: F64) -> None:
        """Fold one batch (arrival order) into the buckets of the series this ring holds."""
        rows = self.row_of.take(series)
        mine = np.flatnonzero(rows >= 0)
        if mine.size == 0:
            return
        rows = rows.take(mine)
        v = values.take(mine)
        t = times.take(mine)
        k = np.floor(t / self.width).astype(np.int64)
        cells = rows * B + (k % B)
        old = self.stamp.take(cells)
        np.maximum.at(self.stamp, cells, k)
        new = self.stamp.take(cells)
        moved = cells[new > old]
        if moved.size:
            self.reset_cells(moved)
        ok = k == new
        self.late += int(ok.size - np.count_nonzero(ok))
        if not ok.all():
            cells, v, t = cells[ok], v[ok], t[ok]
        if self.sum is not None:
            np.add.at(self.sum, cells, v)
        if self.count is not None:
            np.add.at(self.count, cells, 1.0)
        if self.min is not None:
            np.minimum.at(self.min, cells, v)
        if self.max is not None:
            np.maximum.at(self.max, cells, v)
        if self.first_t is not None:
            self._fold_first_last(cells, v, t)
        self._dirty[rows] = True

    def _fold_first_last(self, cells: IntP, v: F64, t: F64) -> None:
        assert self.first_t is not None and self.first_v is not None
        assert self.last_t is not None and self.last_v is not None
        st, si = self._scratch_t, self._scratch_i
        order = np.arange(cells.size, dtype=np.intp)
        # Earliest per cell, ties: first to arrive (smallest index); replaces only a strictly later one.
        st[cells] = np.inf
        np.minimum.at(st, cells, t)
        cand = np.flatnonzero(t == st.take(cells))
        si[cells] = _BIG
        np.minimum.at(si, cells.take(cand), cand)
        win = cand[si.take(cells.take(cand)) == cand]
        c, tw = cells.take(win), t.take(win)
        better = tw < self.first_t.take(c)
        self.first_t[c[better]] = tw[better]
        self.first_v[c[better]] = v.take(win)[better]
        # Latest per cell, ties: last to arrive; replaces a stored one of equal or earlier time.
        st[cells] = -np.inf
        np.maximum.at(st, cells, t)
        cand = np.flatnonzero(t == st.take(cells))
        si[cells] = -1
        np.maximum.at(si, cells.take(cand), order.take(cand))
        win = cand[si.take(cells.take(cand)) == cand]
        c, tw = cells.take(win), t.take(win)
        later = tw >= self.last_t.take(c)
        self.last_t[c[later]] = tw[later]
        self.last_v[c[later]] = v.take(win)[later]

    def compute(self, now: float) -> None:
        """Bring ``results`` up to date for time now (each function per row; NaN: no reading)."""
        bucket = int(np.floor(now / self.width))
        if bucket != self._bucket:
            rows = np.arange(len(self.series), dtype=np.intp)
            self._bucket = bucket
        else:
            rows = np.flatnonzero(self._dirty)
        self._dirty[rows] = False
        if rows.size == 0:
            return
        cells = (rows * B)[:, None] + np.arange(B, dtype=np.intp)
        stamp = self.stamp[cells]
        valid = (stamp > bucket - B) & (stamp <= bucket)
        n = valid.sum(axis=1)
        has = n > 0
        for fn in self.fns:
            self.results[fn][rows] = self._fn(fn, cells, valid, stamp, has)

    def _fn(self, fn: SeriesFn, cells: IntP, valid: npt.NDArray[np.bool_], stamp: I64,
            has: npt.NDArray[np.bool_]) -> F64:
        if fn is SeriesFn.SUM or fn is SeriesFn.MEAN:
            assert self.sum is not None
            total = np.where(valid, self.sum[cells], 0.0).sum(axis=1)
            if fn is SeriesFn.SUM:
                return np.where(has, total, np.nan)
            assert self.count is not None
            count = np.where(valid, self.count[cells], 0.0).sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.where(has, total / count, np.nan)
        if fn is SeriesFn.COUNT:
            assert self.count is not None
            count = np.where(valid, self.count[cells], 0.0).sum(axis=1)
            return np.where(has, count, np.nan)
        if fn is SeriesFn.MIN:
            assert self.min is not None
            return np.where(has, np.where(valid, self.min[cells], np.inf).min(axis=1), np.nan)
        if fn is SeriesFn.MAX:
            assert self.max is not None
            return np.where(has, np.where(valid, self.max[cells], -np.inf).max(axis=1), np.nan)
        assert self.first_t is not None and self.first_v is not None
        assert self.last_t is not None and self.last_v is not None
        # Buckets are ordered like time, so the earliest reading is in the valid cell of lowest stamp.
        lo = np.where(valid, stamp, np.iinfo(np.int64).max).argmin(axis=1)
        hi = np.where(valid, stamp, np.iinfo(np.int64).min).argmax(axis=1)
        pick = np.arange(len(cells))
        first_cells = cells[pick, lo]
        last_cells = cells[pick, hi]
        delta = self.last_v[last_cells] - self.first_v[first_cells]
        if fn is SeriesFn.DELTA:
            return np.where(has, delta, np.nan)
        span = self.last_t[last_cells] - self.first_t[first_cells]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(has & (span > 0), delta / np.where(span > 0, span, 1.0), np.nan)
