"""Entities and Observations as SensorThings JSON, with ``$select``, ``$expand`` and navigation links.

Every entity gets ``@iot.id``, an absolute ``@iot.selfLink`` and a ``<Nav>@iot.navigationLink`` per
navigation property (OGC 18-088, 9.2.2 and 9.3.2); ``$select`` keeps only the named properties
(``id`` and ``selfLink`` name the two annotations, a navigation name its link). Expanded
collections take their nested options and report ``<Nav>@iot.count`` when asked.

The "latest Observation of each Datastream" expansion (``Observations($top=1;$orderby=phenomenonTime
desc)``) is not served per Datastream: while the JSON is built each such list is left empty and
remembered, and ``Serializer.finish`` fills them all from one ``ObservationStore.latest`` call, which
costs one InfluxDB request per measurement however many Datastreams the page holds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from api.sta.aggregates import AggregateRef
from api.sta.entity_query import select_entities
from api.sta.graph import EntityGraph
from api.sta.model import NAVIGATION, PROPERTIES, Entity, EntitySet, Source, iso_time, observation_json, self_link
from api.sta.observation_filter import observation_hook
from api.sta.observation_query import ObservationReader, page_size, read_observations
from api.sta.observation_scan import Row
from api.sta.query.ast import Property, QueryError, quote
from api.sta.query.options import ExpandItem, QueryOptions

E = EntitySet
_ANNOTATIONS = {"id": "@iot.id", "@iot.id": "@iot.id", "selfLink": "@iot.selfLink", "@iot.selfLink": "@iot.selfLink"}
OBSERVATION_JSON_PROPERTIES = ("phenomenonTime", "resultTime", "result")
_LINKED = frozenset({"@iot.id", "@iot.selfLink", "Datastream@iot.navigationLink",
                     "FeatureOfInterest@iot.navigationLink"})


def check_select(entity_set: EntitySet, select: tuple[str, ...] | None) -> None:
    """QueryError naming a $select item that is not a property or navigation property of the set."""
    for name in select or ():
        if name not in _ANNOTATIONS and name not in PROPERTIES[entity_set] and name not in NAVIGATION[entity_set]:
            raise QueryError(f"$select: {entity_set} has no property {quote(name)}")


def merge_expand(entity_set: EntitySet, items: tuple[ExpandItem, ...]) -> dict[str, QueryOptions]:
    """``$expand=Datastreams,Datastreams/Sensor`` as one entry per navigation property with nested expands."""
    merged: dict[str, QueryOptions] = {}
    for item in items:
        head = item.path[0]
        if head not in NAVIGATION[entity_set]:
            raise QueryError(f"$expand: {entity_set} has no navigation property {quote(head)}")
        if len(item.path) == 1:
            before = merged.get(head)
            options = item.options
            if before is not None:  # an earlier Datastreams/Sensor made an entry: keep its nested expands
                options = dataclasses.replace(options, expand=(*options.expand, *before.expand))
            merged[head] = options
        else:
            nested = ExpandItem(item.path[1:], item.options)
            before = merged.get(head, QueryOptions())
            merged[head] = dataclasses.replace(before, expand=(*before.expand, nested))
    return merged


def is_latest(options: QueryOptions) -> bool:
    """True for ``$top=1;$orderby=phenomenonTime desc`` (or resultTime: both are the time) and nothing else."""
    if options.top != 1 or options.skip or options.filter is not None or options.count or options.skiptoken:
        return False
    if len(options.orderby) != 1 or not options.orderby[0].descending:
        return False
    expr = options.orderby[0].expr
    return isinstance(expr, Property) and expr.path in (("phenomenonTime",), ("resultTime",))


class Serializer:
    """Builds the JSON of one response; ``finish()`` must be called before the JSON is sent."""

    def __init__(self, graph: EntityGraph, store: ObservationReader, base: str,
                 result_time_given: Callable[[str, int], bool] | None = None) -> None:
        self.graph = graph
        self.store = store
        self.base = base
        # Observations of API Datastreams: was a resultTime posted (else it is null)? Registry ones: always.
        self._given = result_time_given or (lambda _ds, _t: True)
        self._latest: list[tuple[Entity, list[dict[str, Any]], QueryOptions]] = []
        self.observation_filter = observation_hook(graph, store)  # one query budget for the whole response

    # --- entities ---

    def entity(self, entity: Entity, options: QueryOptions) -> dict[str, Any]:
        """One entity with its selected properties, navigation links and expansions."""
        check_select(entity.set, options.select)
        select = set(options.select) if options.select else None
        link = self_link(self.base, entity.set, entity.id)
        out: dict[str, Any] = {}
        if select is None or select & {"id", "@iot.id"}:
            out["@iot.id"] = entity.id
        if select is None or select & {"selfLink", "@iot.selfLink"}:
            out["@iot.selfLink"] = link
        for name in PROPERTIES[entity.set]:
            value = entity.props.get(name)
            if (select is None or name in select) and (value is not None or name in entity.props):
                out[name] = value
        for name in NAVIGATION[entity.set]:
            if select is None or name in select:
                out[f"{name}@iot.navigationLink"] = f"{link}/{name}"
        for name, sub in merge_expand(entity.set, options.expand).items():
            self._expand(out, entity, name, sub)
        return out

    def _expand(self, out: dict[str, Any], entity: Entity, name: str, sub: QueryOptions) -> None:
        nav = NAVIGATION[entity.set][name]
        if nav.target is E.OBSERVATIONS:
            self._expand_observations(out, entity, name, sub)
            return
        if not nav.many:
            target = self.graph.one(entity, name)
            if target is not None:
                out[name] = self.entity(target, sub)
            return
        related = select_entities(self.graph, nav.target, self.graph.many(entity, name), sub.filter, sub.orderby,
                                  observations=self.observation_filter)
        if sub.count:
            out[f"{name}@iot.count"] = len(related)
        top = page_size(sub.top)
        out[name] = [self.entity(e, sub) for e in related[sub.skip: sub.skip + top]]

    def _expand_observations(self, out: dict[str, Any], entity: Entity, name: str, sub: QueryOptions) -> None:
        check_select(E.OBSERVATIONS, sub.select)
        streams = [entity] if entity.set is E.DATASTREAMS else self.graph.datastreams_observing(entity)
        if is_latest(sub) and entity.set is E.DATASTREAMS and entity.series is not None:
            placeholder: list[dict[str, Any]] = []
            out[name] = placeholder
            self._latest.append((entity, placeholder, sub))
            return
        got = read_observations(self.graph, self.store, streams, where=sub.filter, orderby=sub.orderby,
                                top=page_size(sub.top), skip=sub.skip, token=None, with_count=sub.count)
        if got.count is not None:
            out[f"{name}@iot.count"] = got.count
        out[name] = self.observations(got.rows, sub)

    # --- observations ---

    def observation(self, row: Row, options: QueryOptions) -> dict[str, Any]:
        """One Observation row as JSON, with $select and $expand (Datastream, FeatureOfInterest)."""
        check_select(E.OBSERVATIONS, options.select)
        ds = self.graph.get(E.DATASTREAMS, row.datastream)
        body = observation_json(self.base, row.datastream, row.time_us, row.result,
                                null_result_time=ds is not None and self._null_result_time(ds, row.time_us))
        end_us = getattr(row, "end_us", None)  # aggregates: the phenomenon is the interval, not an instant
        if end_us is None and ds is not None and isinstance(ds.series, AggregateRef):
            end_us = row.time_us + ds.series.interval_us
        if isinstance(end_us, int):
            body["phenomenonTime"] = f"{body['phenomenonTime']}/{iso_time(end_us)}"
        if options.select:
            select = set(options.select)
            keep = {_ANNOTATIONS.get(n, n) for n in select} | {f"{n}@iot.navigationLink" for n in select}
            body = {k: v for k, v in body.items() if k in keep}
        for name, sub in merge_expand(E.OBSERVATIONS, options.expand).items():
            if ds is None:
                continue
            target = self.graph.feature_of_interest(ds) if name == "FeatureOfInterest" else ds
            if target is not None:
                body[name] = self.entity(target, sub)
        return body

    def _null_result_time(self, ds: Entity, time_us: int) -> bool:
        return ds.source is Source.API and not self._given(ds.id, time_us)

    def observations(self, rows: Sequence[Row], options: QueryOptions) -> list[dict[str, Any]]:
        """Rows as JSON."""
        return [self.observation(r, options) for r in rows]

    def _lean(self, options: QueryOptions) -> Callable[[Row, Entity], dict[str, Any]] | None:
        """For Observations without $expand: a builder of exactly what observation() builds, with the
        $select and expansion checks done once for all rows rather than per row (the latest of every
        Datastream of a wijk is hundreds of rows with the same options)."""
        if options.expand:
            return None
        check_select(E.OBSERVATIONS, options.select)
        keep = None
        if options.select:
            select = set(options.select)
            keep = {_ANNOTATIONS.get(n, n) for n in select} | {f"{n}@iot.navigationLink" for n in select}
        base = self.base

        def build(row: Row, ds: Entity) -> dict[str, Any]:
            end_us = getattr(row, "end_us", None)
            if end_us is None and isinstance(ds.series, AggregateRef):
                end_us = row.time_us + ds.series.interval_us
            if keep is not None and not keep & _LINKED:
                # only times and result: no ids or links to build
                phenomenon = iso_time(row.time_us)
                if isinstance(end_us, int):
                    phenomenon = f"{phenomenon}/{iso_time(end_us)}"
                result_time = None if self._null_result_time(ds, row.time_us) else iso_time(row.time_us)
                body = {"phenomenonTime": phenomenon, "resultTime": result_time, "result": row.result}
                return {k: v for k, v in body.items() if k in keep}
            body = observation_json(base, row.datastream, row.time_us, row.result,
                                    null_result_time=self._null_result_time(ds, row.time_us))
            if isinstance(end_us, int):
                body["phenomenonTime"] = f"{body['phenomenonTime']}/{iso_time(end_us)}"
            return body if keep is None else {k: v for k, v in body.items() if k in keep}
        return build

    def finish(self) -> None:
        """Fill the latest-Observation expansions from one ObservationStore.latest call."""
        if not self._latest:
            return
        pending, self._latest = self._latest, []
        series = list({ds.id: (ds.id, ds.series) for ds, _, _ in pending if ds.series is not None}.values())
        rows = self.store.latest(series)
        fast: dict[int, Callable[[Row, Entity], dict[str, Any]] | None] = {}
        for ds, placeholder, sub in pending:
            row = rows.get(ds.id)
            if row is not None:
                if id(sub) not in fast:
                    fast[id(sub)] = self._lean(sub)
                build = fast[id(sub)]
                placeholder.append(build(row, ds) if build is not None else self.observation(row, sub))
        self.finish()  # an expansion inside the filled Observations may have asked for more
