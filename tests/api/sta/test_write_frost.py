"""The real client, frost_sta_client, creates, reads, updates (PUT and JSON Patch) and deletes through the API.

It takes a new entity's id from the Location header (``Things('api-7')`` -> 'api-7'), sends linked
entities as whole objects with their @iot.id, and patches with application/json-patch+json.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import frost_sta_client as fsc
import pytest
import requests

from api.app import create_app
from api.operators.auth import Role
from api.operators.users import write_users_file
from api.settings import ApiSettings
from tests.api.sta.conftest import serve

pytestmark = pytest.mark.integration

OPERATOR = ("op", "operator-password-1")
OM = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"


@pytest.fixture
def base(sta_settings: ApiSettings, tmp_path: Path) -> Iterator[str]:
    users = tmp_path / "operators.toml"
    write_users_file(users, [(OPERATOR[0], Role.OPERATOR, OPERATOR[1])])
    for url in serve(create_app(dataclasses.replace(sta_settings, operators_path=str(users)))):
        yield f"{url}/v1.1"


@pytest.fixture
def service(base: str) -> fsc.SensorThingsService:
    return fsc.SensorThingsService(base, auth_handler=fsc.AuthHandler(*OPERATOR))


# frost_sta_client 1.1.53 calls furl's deprecated pathstr when it builds query URLs.
@pytest.mark.filterwarnings("ignore:furl.pathstr is deprecated:DeprecationWarning")
def test_frost_client_create_read_update_delete(service, base):
    location = fsc.Location(name="town hall", description="roof", encoding_type="application/geo+json",
                            location={"type": "Point", "coordinates": [4.43, 52.13]})
    thing = fsc.Thing(name="station", description="weather station", properties={"owner": "gemeente"},
                      locations=[location])
    service.create(thing)
    assert isinstance(thing.id, str) and thing.id.startswith("api-")

    sensor = fsc.Sensor(name="PT100", description="thermometer", encoding_type="application/pdf",
                        metadata="https://example.org/pt100.pdf")
    prop = fsc.ObservedProperty(name="temperature", definition="https://smartdatamodels.org/temperature",
                                description="air temperature")
    service.create(sensor)
    service.create(prop)
    found_thing = service.things().find(thing.id)  # linked as a whole object with its @iot.id
    stream = fsc.Datastream(name="air temperature", description="2 m", observation_type=OM,
                            unit_of_measurement=fsc.UnitOfMeasurement("degree Celsius", "Cel",
                                                                      "http://unitsofmeasure.org/ucum.html"),
                            thing=found_thing, sensor=sensor, observed_property=prop)
    service.create(stream)
    t = dt.datetime(2025, 11, 24, 16, 0, tzinfo=dt.UTC)
    observation = fsc.Observation(phenomenon_time=t.isoformat(), result=21.5, datastream=stream)
    service.create(observation)
    assert observation.id == f"{stream.id}.{int(t.timestamp()) * 1_000_000}"

    read = service.datastreams().find(stream.id)
    assert read.name == "air temperature"
    got = service.observations().query().filter(f"Datastream/@iot.id eq '{stream.id}'").list()
    assert [o.result for o in got] == [21.5]

    read.description = "changed by PUT"
    service.update(read)
    assert service.datastreams().find(stream.id).description == "changed by PUT"
    service.patch(found_thing, [{"op": "replace", "path": "/name", "value": "patched"}])
    assert service.things().find(thing.id).name == "patched"

    service.delete(found_thing)
    with pytest.raises(requests.HTTPError) as failed:
        service.datastreams().find(stream.id)  # the Thing took its Datastream along
    assert failed.value.response.status_code == 404
