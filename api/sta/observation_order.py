"""The orders an Observation page can be in, and the sort keys that keyset paging compares.

Supported ``$orderby`` keys: ``phenomenonTime`` / ``resultTime`` (the same in storage), ``result`` and
``@iot.id`` / ``id``. The first key decides how a page is read:

- time (the default, ascending): ties between Datastreams at the same time go by Datastream id,
  ascending unless an ``@iot.id desc`` key follows;
- ``@iot.id``: ids are ``<datastream>.<time_us>``, so this is Datastream by Datastream, each in time
  order (times have 16 digits from 2001 to 2286, so string order is time order);
- ``result``: ties by time (direction of a following time key, else ascending), then Datastream.

Datastreams are ranked by ``id + "."``, which orders exactly as the Observation ids do (``a.b.1...``
sorts before ``a.b-c.1...`` as the ids do, though ``a.b`` sorts before ``a.b-c``).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from api.sta.query.ast import NotImplementedFeature, OrderItem, Property

TIME_KEYS = {("phenomenonTime",), ("resultTime",)}
ID_KEYS = {("@iot.id",), ("id",)}
RESULT_KEYS = {("result",)}


@dataclass(frozen=True, slots=True)
class Order:
    """mode: "t" (time), "i" (id) or "r" (result); desc: of the first key; tie_desc: of the next key used."""

    mode: str
    desc: bool
    tie_desc: bool

    @property
    def code(self) -> str:
        """The order as the token records it."""
        return f"{self.mode}{'-' if self.desc else '+'}{'-' if self.tie_desc else '+'}"


def parse_order(orderby: Sequence[OrderItem]) -> Order:
    """The Order of a $orderby; NotImplementedFeature for keys other than time, result and id."""
    kinds = []
    for item in orderby:
        path = item.expr.path if isinstance(item.expr, Property) else None
        if path in TIME_KEYS:
            kinds.append(("t", item.descending))
        elif path in ID_KEYS:
            kinds.append(("i", item.descending))
        elif path in RESULT_KEYS:
            kinds.append(("r", item.descending))
        else:
            raise NotImplementedFeature("$orderby on Observations supports phenomenonTime, resultTime, "
                                        "result and @iot.id only")
    if not kinds:
        return Order("t", False, False)
    mode, desc = kinds[0]
    later = [k for k in kinds[1:] if k[0] != mode]
    if mode == "t":
        tie = next((d for m, d in later if m == "i"), False)
    elif mode == "r":
        tie = next((d for m, d in later if m == "t"), False)
    else:
        tie = False
    return Order(mode, desc, tie)


class Ranks:
    """Datastream ids ranked in Observation-id order; an id not among them ranks between its neighbours."""

    def __init__(self, ids: Sequence[str]) -> None:
        self.sorted = sorted(set(ids), key=lambda d: d + ".")
        self._keys = [d + "." for d in self.sorted]
        self._rank = {d: float(i) for i, d in enumerate(self.sorted)}

    def __call__(self, ident: str) -> float:
        found = self._rank.get(ident)
        if found is not None:
            return found
        return bisect.bisect_left(self._keys, ident + ".") - 0.5


def result_sort_value(value: Any) -> tuple[int, Any]:
    """Results of mixed types in one total order: booleans, then numbers, then strings, then others."""
    if isinstance(value, bool):
        return (0, int(value))
    if isinstance(value, int | float):
        return (1, value)
    if isinstance(value, str):
        return (2, value)
    return (3, str(value))
