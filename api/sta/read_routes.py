"""The GET routes of the SensorThings API at /v1.1.

Every set and ``Set({id})`` has a declared route so /openapi.json documents them with their query
options; deeper paths (navigation, properties, ``$value``, ``$ref``) go through one catch-all.
All of them parse the raw (still percent-encoded) path themselves, so an id holding ``/`` or
``)`` works, and hand over to ``respond``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response

from api.settings import ApiSettings
from api.sta.model import VERSION, EntitySet
from api.sta.paging import service_root
from api.sta.read_response import respond, respond_json
from api.sta.service_root import service_root_json

router = APIRouter(prefix=f"/{VERSION}", tags=["SensorThings API"])

_OPTION_HELP = {
    "$filter": "OData filter expression, e.g. properties/wijk eq 'WK062600'",
    "$expand": "navigation properties to include, with nested options: Datastreams($top=2)",
    "$select": "properties to return, e.g. id,name",
    "$orderby": "sort keys, e.g. name desc",
    "$top": "page size (default 100, at most 10000)",
    "$skip": "entities to skip",
    "$count": "true: include @iot.count",
    "$skiptoken": "the paging token of an @iot.nextLink",
    "$resultFormat": "not supported (dataArray is not implemented)",
}


def _settings(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.settings
    return settings


def _root(request: Request) -> dict[str, Any]:
    settings = _settings(request)
    endpoints = (settings.sta_mqtt_url,) if settings.sta_mqtt_url else ()
    return service_root_json(service_root(request, settings), endpoints)


@router.get("", summary="SensorThings service root")
def get_service_root(request: Request) -> Response:
    """The entity sets and serverSettings.conformance."""
    return respond_json(_root(request))


@router.get("/", include_in_schema=False)
def get_service_root_slash(request: Request) -> Response:
    """The service root, with a trailing slash."""
    return respond_json(_root(request))


def _opt(name: str) -> Any:
    return Query(alias=name, description=_OPTION_HELP[name])


# The options are declared for the OpenAPI document only: respond() parses the raw query itself
# (plain strings here, so FastAPI never answers a malformed option with its own 422).
Filter = Annotated[str | None, _opt("$filter")]
Expand = Annotated[str | None, _opt("$expand")]
Select = Annotated[str | None, _opt("$select")]
OrderBy = Annotated[str | None, _opt("$orderby")]
Top = Annotated[str | None, _opt("$top")]
Skip = Annotated[str | None, _opt("$skip")]
Count = Annotated[str | None, _opt("$count")]
SkipToken = Annotated[str | None, _opt("$skiptoken")]
Ident = Annotated[str, Path(description="the id as an OData string literal, e.g. 'vs-sl-101'")]


def _collection_route(entity_set: EntitySet) -> None:
    def get_collection(request: Request, *, filter_: Filter = None, expand: Expand = None, select: Select = None,
                       orderby: OrderBy = None, top: Top = None, skip: Skip = None, count: Count = None,
                       skiptoken: SkipToken = None) -> Response:
        return respond(request)

    get_collection.__doc__ = f"The {entity_set} collection (public entities only), with the query options."
    router.add_api_route(f"/{entity_set}", get_collection, methods=["GET"], summary=f"List {entity_set}",
                         name=f"list_{entity_set}", operation_id=f"list_{entity_set}")

    def get_entity(request: Request, ident: Ident, *, expand: Expand = None, select: Select = None) -> Response:
        return respond(request)

    get_entity.__doc__ = f"One of the {entity_set} (404 when unknown or not public)."
    router.add_api_route(f"/{entity_set}({{ident}})", get_entity, methods=["GET"], summary=f"Get one of {entity_set}",
                         name=f"get_{entity_set}", operation_id=f"get_{entity_set}")


for _set in EntitySet:
    _collection_route(_set)


@router.get("/{rest:path}", include_in_schema=False)
def get_deeper(request: Request, rest: str) -> Response:
    """Navigation paths, properties, $value and $ref."""
    if not rest:
        raise HTTPException(404, "no resource named")
    return respond(request)
