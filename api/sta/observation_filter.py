"""``$filter`` on entities through their Observations: ``Things?$filter=Datastreams/Observations/result eq 87``.

"Any" semantics, as elsewhere: an entity matches when at least one Observation of its Datastreams
satisfies the conditions. Each candidate Datastream costs one small query (the first matching
Observation, ``$top=1``), so this is done only after every other condition has narrowed the
candidates, and refused (501) past ``MAX_DATASTREAMS`` per request rather than letting one request
issue thousands of queries. Conditions InfluxQL cannot express are evaluated in Python over a scan
(observation_scan) with one row budget (``SCAN_LIMIT``) for the whole request: when it runs out before
an entity is decided, the answer is 501 rather than a guess.
"""

from __future__ import annotations

from collections.abc import Callable

from api.sta import observation_scan
from api.sta.entity_query import ObservationHook
from api.sta.graph import EntityGraph
from api.sta.model import NAVIGATION, Entity, EntitySet
from api.sta.observation_query import ObservationReader, choose_datastreams, rebase, split_filter
from api.sta.observation_scan import Budget, plan, scan_page
from api.sta.query.ast import Node, NotImplementedFeature

MAX_DATASTREAMS = 500
E = EntitySet


def _datastreams(graph: EntityGraph, entity: Entity, path: tuple[str, ...]) -> list[Entity]:
    """The Datastreams reached from an entity along the navigation path before ``Observations``."""
    current = [entity]
    for part in path:
        nxt: list[Entity] = []
        for e in current:
            if NAVIGATION[e.set][part].many:
                nxt.extend(graph.many(e, part))
            else:
                one = graph.one(e, part)
                if one is not None:
                    nxt.append(one)
        current = nxt
    out: list[Entity] = []
    for e in current:
        out.extend([e] if e.set is E.DATASTREAMS else graph.datastreams_observing(e))
    return list({ds.id: ds for ds in out}.values())


def observation_hook(graph: EntityGraph, store: ObservationReader) -> ObservationHook:
    """The hook select_entities calls for conditions through Observations; one budget per request."""
    budget = [MAX_DATASTREAMS]
    rows = Budget(observation_scan.SCAN_LIMIT)

    def hook(entity_set: EntitySet, prefix: tuple[str, ...], node: Node) -> Callable[[Entity], bool]:
        own, nav = split_filter(rebase(node, prefix))

        def has(entity: Entity) -> bool:
            for ds in choose_datastreams(graph, _datastreams(graph, entity, prefix[:-1]), nav):
                if ds.series is None or "aggregate" in ds.extra:
                    continue  # an entity's Observations are the measured ones; aggregates are derived from them
                budget[0] -= 1
                if budget[0] < 0:
                    raise NotImplementedFeature(f"$filter through Observations of more than {MAX_DATASTREAMS} "
                                                "Datastreams in one request; narrow it with other conditions")
                series = [(ds.id, ds.series)]
                got = scan_page(store, series, plan(own, series), (), 1, 0, None, rows)
                if got.rows:
                    return True
                if got.bounded:  # the row budget ran out with this Datastream undecided
                    raise NotImplementedFeature(
                        f"$filter through Observations that reads more than {observation_scan.SCAN_LIMIT} "
                        "Observations in one request (a condition InfluxDB cannot evaluate); narrow it")
            return False

        return has

    return hook
