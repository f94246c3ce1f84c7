"""The real client FROST-Server's users use, frost_sta_client (PyPI), against this API.

It walks Things -> Datastreams -> Observations with $filter, $expand, $orderby and nextLink
paging and must get exactly the stored values; then, logged in as an operator (its
AuthHandler: HTTP Basic), it creates, updates and deletes entities. Ids are strings, which the
client quotes in URLs (Things('vs-sl-101')).
"""

from __future__ import annotations

import frost_sta_client as fsc
import pytest
import requests

from tests.api.conformance import cud, data
from tests.api.conformance.conftest import USERS
from tests.api.conformance.sta import ROOT

# frost_sta_client 1.1.53 uses furl's deprecated pathstr; the warning is the library's, not the API's.
pytestmark = [pytest.mark.integration,
              pytest.mark.filterwarnings("ignore:furl.pathstr is deprecated:DeprecationWarning")]


def service(served, role: str | None = None) -> fsc.SensorThingsService:
    auth = fsc.AuthHandler(*USERS[role]) if role else None
    return fsc.SensorThingsService(served.url + ROOT, auth_handler=auth)


def test_frost_client_walks_things_datastreams_observations(served) -> None:
    """Things of a wijk (filter + expand), their Datastreams, one Datastream's Observations in
    time order over several pages: the values stored, in order, none twice."""
    sta = service(served)
    things = sta.things().query().filter("properties/wijk eq 'WK062600'").expand("Datastreams").list()
    by_id = {t.id: t for t in things}
    assert data.LIGHT in by_id and data.CLASSIFIED not in by_id
    assert all(t.properties["wijk"] == "WK062600" for t in things)
    light = by_id[data.LIGHT]
    assert data.LIGHT_DIM in {d.id for d in light.datastreams}

    datastreams = list(light.get_datastreams().query().list())
    dim = next(d for d in datastreams if d.id == data.LIGHT_DIM)
    assert dim.unit_of_measurement.symbol == "%"

    power = next(d for d in datastreams if d.id == data.LIGHT_POWER)
    observations = list(power.get_observations().query().orderby("phenomenonTime", "asc").list())
    expected = data.series(served.base, data.LIGHT_POWER)
    assert [o.result for o in observations] == [s.value for s in expected]
    assert [data.time_us(o.phenomenon_time) for o in observations] == [s.time_us for s in expected]

    newest = list(dim.get_observations().query().orderby("phenomenonTime", "desc").top(3).list())[:3]
    assert [o.result for o in newest] == [87.0, 84.0, 81.0]

    rain = sta.observations().query().filter(f"Datastream/id eq '{data.RAIN}' and result gt 1").list()
    assert sorted(o.result for o in rain) == [1.5, 3.25]

    counted = sta.datastreams().query().filter("Thing/properties/kind eq 'rain_gauge'").count().list()
    assert counted.count == len(list(counted)) and counted.count > 0


def test_frost_client_finds_single_entities_with_string_ids(served) -> None:
    """dao.find() with a string id (quoted in the URL by the client)."""
    sta = service(served)
    assert sta.things().find(data.LIGHT).name == "Lichtmast Centrum 1"
    assert sta.datastreams().find(data.LIGHT_DIM).id == data.LIGHT_DIM
    with pytest.raises(requests.exceptions.HTTPError) as err:
        sta.things().find(data.CLASSIFIED)
    assert err.value.response.status_code == 404


def test_frost_client_creates_updates_and_deletes_as_an_operator(served) -> None:
    """create() (deep insert; the id from the Location header), update() (PUT), delete()."""
    sta = service(served, "operator")
    location = fsc.Location(name="pole", description="a test pole", encoding_type="application/geo+json",
                            location={"type": "Point", "coordinates": [4.45, 52.13]})
    thing = fsc.Thing(name="frost thing", description="made by frost_sta_client", properties={"by": "frost"},
                      locations=[location])
    sta.create(thing)
    assert isinstance(thing.id, str) and thing.id

    sensor = fsc.Sensor(name="frost sensor", description="d", encoding_type="application/pdf",
                        metadata="https://example.org/x.pdf")
    prop = fsc.ObservedProperty(name="frost property", definition="https://example.org/p", description="d")
    uom = fsc.UnitOfMeasurement("degree Celsius", "Cel", "http://qudt.org/vocab/unit/DEG_C")
    ds = fsc.Datastream(name="frost ds", description="d", observation_type=cud.OM_MEASUREMENT,
                        unit_of_measurement=uom, thing=thing, sensor=sensor, observed_property=prop)
    sta.create(ds)
    obs = fsc.Observation(result=12.5, phenomenon_time=cud.recent(), datastream=ds)
    sta.create(obs)
    assert sta.observations().find(obs.id).result == 12.5

    got = sta.things().find(thing.id)
    got.description = "updated by frost_sta_client"
    sta.update(got)
    assert sta.things().find(thing.id).description == "updated by frost_sta_client"

    sta.delete(sta.things().find(thing.id))
    with pytest.raises(requests.exceptions.HTTPError):
        sta.things().find(thing.id)
    with pytest.raises(requests.exceptions.HTTPError):
        sta.datastreams().find(ds.id)


def test_frost_client_anonymous_create_is_refused(served) -> None:
    """Without the AuthHandler, create() fails with 401."""
    with pytest.raises(requests.exceptions.HTTPError) as err:
        service(served).create(fsc.Thing(name="anon", description="not allowed"))
    assert err.value.response.status_code == 401
