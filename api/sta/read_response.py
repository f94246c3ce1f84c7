"""One GET request of the SensorThings API: parse the path and options, resolve, serialise, page.

Errors answer with the status the contract gives them: 400 for a malformed path or query option,
404 for anything unknown or not public (the same body either way), 501 for a valid query this
service does not implement, 503 when InfluxDB cannot answer (without its address).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException, Request, Response

from api.settings import ApiSettings
from api.sta.entity_query import select_entities
from api.sta.graph_cache import GraphCache
from api.sta.model import VERSION, Entity, EntitySet, observation_id, self_link
from api.sta.observation_query import ObservationReader, page_size, read_observations
from api.sta.paging import next_link, service_root
from api.sta.query.ast import NotImplementedFeature, QueryError
from api.sta.query.options import QueryOptions, parse_options
from api.sta.resolve import Many, ManyObservations, One, OneObservation, Target, resolve
from api.sta.resource_path import PathError, ResourcePath, parse_path, short
from api.sta.serialize import Serializer
from core import jsonfast
from core.influx import InfluxError

log = logging.getLogger(__name__)
E = EntitySet


def respond_json(body: Any, status: int = 200) -> Response:
    """JSON via orjson (large collections serialise several times faster than with the stdlib)."""
    return Response(jsonfast.dumps(body), status, media_type="application/json")


def _raw_rest(request: Request) -> str:
    """The request path after /v1.1, still percent-encoded (``/Things('a%2Fb')/name``)."""
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) else request.url.path
    path = path.split("?", 1)[0]
    prefix = request.scope.get("root_path", "") + f"/{VERSION}"
    return path[len(prefix):] if path.startswith(prefix) else path


def respond(request: Request) -> Response:
    """Answer a GET below /v1.1."""
    try:
        return _respond(request)
    except PathError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    except QueryError as exc:
        raise HTTPException(400, str(exc)) from None
    except NotImplementedFeature as exc:
        raise HTTPException(501, f"not implemented: {exc}") from None
    except InfluxError as exc:
        log.warning("SensorThings read failed in InfluxDB: %s", exc)
        raise HTTPException(503, "the time-series store is unavailable") from None


def _respond(request: Request) -> Response:
    settings: ApiSettings = request.app.state.settings
    graphs: GraphCache = request.app.state.sta_graph
    store: ObservationReader = request.app.state.sta_observations
    rest = _raw_rest(request)
    path = parse_path(rest.split("/")[1:])
    params = request.query_params.multi_items()
    options = parse_options(params)
    if options.result_format is not None:
        raise NotImplementedFeature("$resultFormat (dataArray)")
    graph = graphs.get()
    root = service_root(request, settings)
    target = resolve(graph, store, path)
    meta = getattr(request.app.state, "sta_store", None)  # absent in tests that serve reads only
    out = Serializer(graph, store, root, meta.result_time_given if meta is not None else None)
    if path.prop is not None:
        return _property(out, target, path)
    where = Where(root, rest, params)
    if path.ref:
        body = _ref(out, target, options, where)
    elif isinstance(target, One):
        body = out.entity(target.entity, options)
    elif isinstance(target, OneObservation):
        body = out.observation(target.row, options)
    else:
        body = _collection(out, target, options, where)
    out.finish()
    return respond_json(body)


def _property(out: Serializer, target: Target, path: ResourcePath) -> Response:
    name = path.prop or ""
    if isinstance(target, One):
        value = target.entity.id if name == "id" else target.entity.props.get(name)
        key = "@iot.id" if name == "id" else name
    elif isinstance(target, OneObservation):
        full = out.observation(target.row, QueryOptions())
        key = "@iot.id" if name == "id" else name
        value = full.get(key)
    else:  # the parser only lets properties follow single entities
        raise PathError(400, "property of a collection")
    for member in path.keys:
        if not isinstance(value, dict) or member not in value:
            raise PathError(404, f"no such property: {short('/'.join((name, *path.keys)))}")
        value, key = value[member], member
    if value is None:
        # OData: a property whose value is null answers 204 No Content.
        return Response(status_code=204)
    if path.value:
        text = value if isinstance(value, str) else jsonfast.dumps(value).decode()
        return Response(text, media_type="text/plain")
    return respond_json({key: value})


def _page_entities(out: Serializer, target: Many, options: QueryOptions) -> tuple[Sequence[Entity], int, bool]:
    whole = target.entities is out.graph.entities(target.set)
    chosen = select_entities(out.graph, target.set, target.entities, options.filter, options.orderby,
                             whole_set=whole, observations=out.observation_filter)
    top = page_size(options.top)
    page = chosen[options.skip: options.skip + top]
    return page, len(chosen), options.skip + top < len(chosen)


@dataclass(frozen=True, slots=True)
class Where:
    """Where the request was: the service root, the path after it, the raw query pairs (for next links)."""

    root: str
    rest: str
    params: list[tuple[str, str]]


def _collection(out: Serializer, target: Target, options: QueryOptions, where: Where) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if isinstance(target, Many):
        page, total, more = _page_entities(out, target, options)
        if options.count:
            body["@iot.count"] = total
        body["value"] = [out.entity(e, options) for e in page]
        if more:
            body["@iot.nextLink"] = next_link(where.root, where.rest, where.params,
                                              {"$skip": str(options.skip + page_size(options.top))})
        return body
    if not isinstance(target, ManyObservations):  # single targets do not come here
        raise PathError(400, "not a collection")
    got = read_observations(out.graph, out.store, target.datastreams, where=options.filter,
                            orderby=options.orderby, top=page_size(options.top), skip=options.skip,
                            token=options.skiptoken, with_count=options.count)
    if got.count is not None:
        body["@iot.count"] = got.count
    body["value"] = out.observations(got.rows, options)
    if got.next_token is not None:
        change = {"$skip": None, "$skiptoken": got.next_token}
        body["@iot.nextLink"] = next_link(where.root, where.rest, where.params, change)
    return body


def _ref(out: Serializer, target: Target, options: QueryOptions, where: Where) -> dict[str, Any]:
    root = where.root
    if isinstance(target, One):
        return {"@iot.selfLink": self_link(root, target.entity.set, target.entity.id)}
    if isinstance(target, OneObservation):
        return {"@iot.selfLink": self_link(root, E.OBSERVATIONS,
                                           observation_id(target.row.datastream, target.row.time_us))}
    plain = QueryOptions(filter=options.filter, orderby=options.orderby, top=options.top, skip=options.skip,
                         count=options.count, skiptoken=options.skiptoken)
    body = _collection(out, target, plain, where)
    body["value"] = [{"@iot.selfLink": v["@iot.selfLink"]} for v in body["value"]]
    return body
