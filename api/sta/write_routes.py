"""SensorThings Create-Update-Delete (OGC 18-088, 10; conformance class A.3) for operators.

``POST /v1.1/<Set>`` (deep insert, links by ``@iot.id``), ``POST /v1.1/<Set>('id')/<Nav>`` (the new
entity linked to that one), ``PATCH`` (JSON, or JSON Patch with ``application/json-patch+json``),
``PUT`` and ``DELETE`` on ``/v1.1/<Set>('id')``. Every write needs the operator role (anonymous:
401 with ``WWW-Authenticate``, viewer: 403) and is written to the audit log, refused ones too.
A create answers 201 with the new entity and its absolute selfLink in ``Location``; an update
200 with the entity; a delete 200.

Registry-derived entities are read-only here (409): the registry file is the source of truth
for field devices, and an API edit would be silently undone by the next registry load.
Observations of registry Datastreams may be POSTed (through the ingest's validation) but not
changed or deleted: a device's metrics share one InfluxDB point per time, so deleting one
would delete its neighbours.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api.operators.audit import audit
from api.operators.auth import OperatorDep, Principal
from api.settings import ApiSettings
from api.sta import observation_count, observation_writer
from api.sta.json_patch import apply_patch
from api.sta.metadata_store import MetadataStore, Stored, api_series
from api.sta.model import (
    API_MEASUREMENT,
    NAVIGATION,
    PROPERTIES,
    VERSION,
    EntitySet,
    SeriesRef,
    observation_json,
    quote_id,
    self_link,
    split_observation_id,
)
from api.sta.paging import service_root
from api.sta.resource_path import PathError, parse_path
from api.sta.write_delete import delete
from api.sta.write_validation import WriteError, check_nesting, iso, split_body
from api.sta.writes import (
    BACK,
    IndexCache,
    PendingObservation,
    WriteContext,
    create,
    finish,
    registry_refusal,
    update,
)
from core import jsonfast
from core.influx import InfluxError

log = logging.getLogger(__name__)
router = APIRouter(prefix=f"/{VERSION}", tags=["SensorThings API: create, update, delete (operators)"])
E = EntitySet
JSON_PATCH = "application/json-patch+json"
_INDEX = IndexCache()
# Declared for the OpenAPI document; the handlers parse the raw path themselves (quoted ids, escapes).
Ident = Annotated[str, Path(description="the id as an OData string literal, e.g. 'api-7'")]
_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"type": "object", "additionalProperties": True}}}}}
_PATCH_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"type": "object", "additionalProperties": True}},
    JSON_PATCH: {"schema": {"type": "array", "items": {"type": "object", "additionalProperties": True}}}}}}


def _fail(exc: WriteError) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=exc.status)


async def _body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        raise WriteError(400, "the request has no body (a JSON object is expected)")
    try:
        body = jsonfast.loads(raw)
    except ValueError:
        raise WriteError(400, "the body is not valid JSON") from None
    check_nesting(body)
    return body


def _target(request: Request) -> tuple[EntitySet, str | None, tuple[EntitySet, str, str] | None]:
    """(set, id or None, (parent set, parent id, navigation) or None) of the request path."""
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) else request.url.path
    prefix = request.scope.get("root_path", "") + f"/{VERSION}/"
    rest = path.split("?", 1)[0][len(prefix):]
    try:
        parsed = parse_path(rest.split("/"))
    except PathError as exc:
        raise WriteError(exc.status, str(exc)) from None
    steps = parsed.steps
    if len(steps) == 1:
        return steps[0].set, steps[0].ident, None
    first, second = steps[0], steps[1]
    if first.ident is None or second.nav is None:
        raise WriteError(400, "write to a collection or an entity: Set, Set('id') or Set('id')/Navigation")
    return second.set, None, (first.set, first.ident, second.nav)


def entity_json(base: str, stored: Stored) -> dict[str, Any]:
    """An API entity as SensorThings JSON (no expansion)."""
    link = self_link(base, stored.set, stored.id)
    out: dict[str, Any] = {"@iot.id": stored.id, "@iot.selfLink": link}
    out.update((name, stored.props[name]) for name in PROPERTIES[stored.set] if name in stored.props)
    out.update((f"{nav}@iot.navigationLink", f"{link}/{nav}") for nav in NAVIGATION[stored.set])
    return out


def _store(request: Request) -> MetadataStore:
    store: MetadataStore = request.app.state.sta_store
    return store


def _base(request: Request) -> str:
    settings: ApiSettings = request.app.state.settings
    return service_root(request, settings)


def _audited(request: Request, who: Principal, action: str, target: str, work: Any) -> Response:
    """Run work(); audit the outcome; WriteError -> its status, InfluxDB down -> 503."""
    try:
        response: Response = work()
    except WriteError as exc:
        audit(request, who.name, action, target, f"refused {exc.status}", str(exc))
        return _fail(exc)
    except InfluxError as exc:
        log.warning("SensorThings write failed in InfluxDB: %s", exc)
        audit(request, who.name, action, target, "failed 503", "the time-series store is unavailable")
        return JSONResponse({"detail": "the time-series store is unavailable; nothing was changed"},
                            status_code=503)
    audit(request, who.name, action, target, "ok", response.headers.get("location", ""))
    return response


def _do_create(request: Request, body: Any) -> Response:
    entity_set, ident, parent_ref = _target(request)
    if ident is not None:
        raise WriteError(405, "POST creates in a collection; use PATCH or PUT to change an entity")
    if isinstance(body, dict) and "@iot.id" in body:
        raise WriteError(400, "@iot.id: ids are assigned by the service (link existing entities inside the body)")
    store = _store(request)
    index = _INDEX.get(request.app.state.registry.get())
    base = _base(request)
    with store.transaction(index.taken) as txn:
        ctx = WriteContext(txn, index)
        parent = None
        if parent_ref is not None:
            parent_set, parent_id, nav = parent_ref
            if ctx.exists(parent_set, parent_id) is None:
                raise WriteError(404, f"no {parent_set}({quote_id(parent_id)[:70]})")
            parent = (BACK[(parent_set, nav)], parent_id)
        made = create(ctx, entity_set, body, "", parent)
        writes = finish(ctx)
        observation_writer.write(request.app.state.influx_writer, writes)
        _forget_counts(request, writes)
        content = _created_json(base, made, txn.get(made) if isinstance(made, str) else None)
    return JSONResponse(content, status_code=201, headers={"Location": content["@iot.selfLink"]})


def _forget_counts(request: Request, writes: list[observation_writer.ObservationWrite]) -> None:
    """New points may land on days the $count cache holds as closed (an API Datastream takes any time)."""
    cache = getattr(request.app.state.sta_observations, "cache", None)
    if cache is None:
        return
    for w in writes:
        if w.series is not None:
            observation_count.forget(cache, w.series, w.time_us)


def _created_json(base: str, made: str | PendingObservation, stored: Stored | None) -> dict[str, Any]:
    if isinstance(made, PendingObservation) and made.write is not None:
        api = made.write.series is not None and made.write.series.measurement == API_MEASUREMENT
        return observation_json(base, made.datastream, made.write.time_us, made.write.result,
                                null_result_time=api and made.props.get("resultTime") is None)
    if stored is None:
        raise RuntimeError("the created entity is not in the store")  # finish() and create() guarantee it
    return entity_json(base, stored)


def _do_update(request: Request, body: Any, *, full: bool, patch: bool) -> Response:
    entity_set, ident, parent_ref = _target(request)
    if ident is None or parent_ref is not None:
        raise WriteError(405, "PATCH, PUT and DELETE address one entity: Set('id')")
    if entity_set is E.OBSERVATIONS:
        return _update_observation(request, ident, body, full=full, patch=patch)
    store = _store(request)
    index = _INDEX.get(request.app.state.registry.get())
    with store.transaction(index.taken) as txn:
        ctx = WriteContext(txn, index)
        stored = ctx.api(entity_set, ident)
        if stored is None:
            if index.get(entity_set, ident) is not None:
                raise registry_refusal(entity_set, ident)
            raise WriteError(404, f"no {entity_set}({quote_id(ident)[:70]})")
        if patch:
            body = apply_patch(dict(stored.props), body)
        update(ctx, stored, body, full=full or patch)
        finish(ctx)
        return JSONResponse(_created_json(_base(request), ident, txn.get(ident)))


def _observation_stream(request: Request, ident: str) -> tuple[Stored, int]:
    try:
        datastream, time_us = split_observation_id(ident)
    except ValueError:
        raise WriteError(404, f"no Observations({quote_id(ident)[:70]})") from None
    stream = _store(request).get(datastream)
    if stream is None or stream.set is not E.DATASTREAMS:
        index = _INDEX.get(request.app.state.registry.get())
        if index.get(E.DATASTREAMS, datastream) is not None:
            raise WriteError(409, f"Observations({quote_id(ident)[:70]}) belongs to a registry Datastream: its "
                                  "readings are the ingest's record and share their InfluxDB point with the "
                                  "device's other metrics, so they cannot be changed or deleted here")
        raise WriteError(404, f"no Observations({quote_id(ident)[:70]})")
    return stream, time_us


def _update_observation(request: Request, ident: str, body: Any, *, full: bool, patch: bool) -> Response:
    stream, time_us = _observation_stream(request, ident)
    otype = str(stream.props.get("observationType", ""))
    ref = api_series(stream.id, otype)
    row = request.app.state.sta_observations.get(stream.id, ref, time_us)
    if row is None:
        raise WriteError(404, f"no Observations({quote_id(ident)[:70]})")
    store = request.app.state.sta_store
    given = store.result_time_given(stream.id, time_us)
    current = {"phenomenonTime": iso(time_us), "resultTime": iso(time_us) if given else None, "result": row.result}
    if patch:
        body = apply_patch(current, body)
    props, navs = split_body(E.OBSERVATIONS, body, "")
    for nav, value in navs.items():
        linked = value.get("@iot.id") if isinstance(value, dict) else None
        keep = stream.id if nav == "Datastream" else (stream.links.get("FeatureOfInterest") or (None,))[0]
        if linked is None or str(linked) != keep:
            raise WriteError(501, f"{nav}: changing an Observation's {nav} is not supported (all Observations of "
                                  "a Datastream are one InfluxDB series with one FeatureOfInterest)")
    merged = props if full and not patch else {**current, **props}
    merged.setdefault("phenomenonTime", current["phenomenonTime"])
    when = observation_writer.observation_time(merged, "", time_us)
    if when != time_us:
        raise WriteError(501, "phenomenonTime: changing it is not supported (with the Datastream it is the "
                              "Observation's id, as InfluxDB keeps one value per series and time); delete the "
                              "Observation and create a new one")
    write = observation_writer.api_observation(stream.id, otype, when, merged["result"], "")
    given = merged.get("resultTime") is not None
    with store.transaction() as txn:
        txn.set_result_time(stream.id, when, given)
        observation_writer.write(request.app.state.influx_writer, [write])
    return JSONResponse(observation_json(_base(request), stream.id, when, write.result, null_result_time=not given))


def _do_delete(request: Request) -> Response:
    entity_set, ident, parent_ref = _target(request)
    if ident is None or parent_ref is not None:
        raise WriteError(405, "DELETE addresses one entity: Set('id')")
    if entity_set is E.OBSERVATIONS:
        stream, time_us = _observation_stream(request, ident)
        ref = api_series(stream.id, str(stream.props.get("observationType", "")))
        if not request.app.state.sta_observations.delete(stream.id, ref, time_us):
            raise WriteError(404, f"no Observations({quote_id(ident)[:70]})")
        return Response(status_code=200)
    store = _store(request)
    index = _INDEX.get(request.app.state.registry.get())
    with store.transaction(index.taken) as txn:
        ctx = WriteContext(txn, index)
        stored = ctx.api(entity_set, ident)
        if stored is None:
            if index.get(entity_set, ident) is not None:
                raise registry_refusal(entity_set, ident, "deleted")
            raise WriteError(404, f"no {entity_set}({quote_id(ident)[:70]})")
        dropped = delete(ctx, stored)
        influx = request.app.state.influx_writer
        # A FeatureOfInterest's Datastreams stay: the days their counts were cached for must be counted again.
        refs = [api_series(d, _observation_type(ctx, d)) for d in dropped]
        days = [(ref, day) for ref in refs for day in observation_writer.observation_days(influx, ref)]
        observation_writer.drop_observations(influx, dropped)
    _forget_days(request, days)
    return Response(status_code=200)


def _observation_type(ctx: WriteContext, datastream: str) -> str:
    stream = ctx.api(E.DATASTREAMS, datastream)
    return str(stream.props.get("observationType", "")) if stream is not None else ""


def _forget_days(request: Request, days: list[tuple[SeriesRef, int]]) -> None:
    cache = getattr(request.app.state.sta_observations, "cache", None)
    if cache is not None:
        for ref, day in days:
            observation_count.forget(cache, ref, day)


def _target_text(request: Request) -> str:
    return f"{request.method} {request.url.path}"[:200]


async def post_entity(request: Request, who: OperatorDep) -> Response:
    """Create an entity (deep insert: nested objects are created, {"@iot.id": ...} links existing ones)."""
    return await _post(request, who)


async def post_related(request: Request, who: OperatorDep, ident: Ident) -> Response:
    """Create an entity linked to the one addressed (e.g. a Datastream of a Thing, an Observation of a Datastream)."""
    return await _post(request, who)


async def _post(request: Request, who: Principal) -> Response:
    try:
        body = await _body(request)
    except WriteError as exc:
        audit(request, who.name, "sta.create", _target_text(request), f"refused {exc.status}", str(exc))
        return _fail(exc)
    return await run_in_threadpool(_audited, request, who, "sta.create", _target_text(request),
                                   lambda: _do_create(request, body))


async def patch_entity(request: Request, who: OperatorDep, ident: Ident) -> Response:
    """Change the given properties (JSON), or apply a JSON Patch (application/json-patch+json)."""
    patch = request.headers.get("content-type", "").split(";")[0].strip().lower() == JSON_PATCH
    return await _update(request, who, "sta.update", full=False, patch=patch)


async def put_entity(request: Request, who: OperatorDep, ident: Ident) -> Response:
    """Replace the entity's properties (the mandatory ones must be given; omitted optional ones are removed)."""
    return await _update(request, who, "sta.replace", full=True, patch=False)


async def _update(request: Request, who: Principal, action: str, *, full: bool, patch: bool) -> Response:
    try:
        body = await _body(request)
    except WriteError as exc:
        audit(request, who.name, action, _target_text(request), f"refused {exc.status}", str(exc))
        return _fail(exc)
    return await run_in_threadpool(_audited, request, who, action, _target_text(request),
                                   lambda: _do_update(request, body, full=full, patch=patch))


async def delete_entity(request: Request, who: OperatorDep, ident: Ident) -> Response:
    """Delete the entity and what depends on it (a Thing's Datastreams and their Observations, ...)."""
    return await run_in_threadpool(_audited, request, who, "sta.delete", _target_text(request),
                                   lambda: _do_delete(request))


def _routes(entity_set: EntitySet) -> None:
    name = str(entity_set)
    router.add_api_route(f"/{name}", post_entity, methods=["POST"], status_code=201, summary=f"Create in {name}",
                         operation_id=f"create_{name}", openapi_extra=_BODY)
    item = f"/{name}({{ident}})"
    router.add_api_route(item, patch_entity, methods=["PATCH"], summary=f"Update one of {name}",
                         operation_id=f"update_{name}", openapi_extra=_PATCH_BODY)
    router.add_api_route(item, put_entity, methods=["PUT"], summary=f"Replace one of {name}",
                         operation_id=f"replace_{name}", openapi_extra=_BODY)
    router.add_api_route(item, delete_entity, methods=["DELETE"], summary=f"Delete one of {name}",
                         operation_id=f"delete_{name}")
    for nav, navigation in NAVIGATION[entity_set].items():
        if navigation.many:
            router.add_api_route(f"{item}/{nav}", post_related, methods=["POST"], status_code=201,
                                 summary=f"Create {nav} of one of {name}", operation_id=f"create_{name}_{nav}",
                                 openapi_extra=_BODY)


for _set in EntitySet:
    _routes(_set)

