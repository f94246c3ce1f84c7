"""The service root (OGC 18-088, 9.2.1): the entity sets and the conformance classes implemented.

``serverSettings.conformance`` lists exactly what this service does: the Sensing Core (data model,
resource paths, request data with the query options), Create-Update-Delete, and receiving updates
over MQTT (api/sta_mqtt). Not listed, because not implemented: batch requests, dataArray,
creating Observations over MQTT, MultiDatastream and OData 4.01 features. JSON Patch is listed.
"""

from __future__ import annotations

from typing import Any

from api.sta.model import EntitySet

_REQ = "http://www.opengis.net/spec/iot_sensing/1.1/req/"
DATAMODEL = _REQ + "datamodel"
RESOURCE_PATH = _REQ + "resource-path/resource-path-to-entities"
REQUEST_DATA = _REQ + "request-data"
CREATE_UPDATE_DELETE = _REQ + "create-update-delete"
JSON_PATCH = _REQ + "create-update-delete/update-entity-jsonpatch"  # api/sta/json_patch.py (RFC 6902)
MQTT_RECEIVE = _REQ + "receive-updates-via-mqtt/receive-updates"

CONFORMANCE = (DATAMODEL, RESOURCE_PATH, REQUEST_DATA, CREATE_UPDATE_DELETE, JSON_PATCH, MQTT_RECEIVE)


def service_root_json(root: str, mqtt_endpoints: tuple[str, ...] = ()) -> dict[str, Any]:
    """The service root document; ``mqtt_endpoints`` are the broker URLs open-data clients subscribe at."""
    # OGC 18-088 9.2.1: a service that lists the MQTT extension says where its broker is; without a
    # configured endpoint (ApiSettings.sta_mqtt_url) the extension is not claimed.
    classes = [c for c in CONFORMANCE if c != MQTT_RECEIVE or mqtt_endpoints]
    settings: dict[str, Any] = {"conformance": classes}
    if mqtt_endpoints:
        settings[MQTT_RECEIVE] = {"endpoints": list(mqtt_endpoints)}
    return {
        "value": [{"name": s.value, "url": f"{root}/{s.value}"} for s in EntitySet],
        "serverSettings": settings,
    }
