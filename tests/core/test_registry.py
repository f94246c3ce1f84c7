import copy
import os
import time

import pytest

from core import jsonfast
from core.kinds import KINDS, Classification
from core.registry import RegistryError, WatchedRegistry, load, parse
from smartcity.data import demo_registry_path


def demo_data():
    return jsonfast.loads(demo_registry_path().read_bytes())


def test_demo_city_covers_both_municipalities_and_all_kinds():
    reg = load(demo_registry_path())
    assert {g.gemeente for g in reg.gateways.values()} == {"GM0626", "GM0629"}
    assert {d.kind for d in reg.devices.values()} == set(KINDS)
    assert all(d.classification is Classification.OPENBAAR for d in reg.devices.values())
    rg = reg.devices["vs-rg-001"]
    assert (rg.link, rg.port, rg.address) == ("serial", "rg15", None)
    assert 4.3 < rg.lon < 4.5 and 52.0 < rg.lat < 52.2


def _mutate(path, value):
    data = demo_data()
    target = data
    *head, last = path
    for key in head:
        target = target[key]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return data


@pytest.mark.parametrize(("path", "value", "message"), [
    (("type",), "Feature", "FeatureCollection"),
    (("cbs_map_year",), "2024", "cbs_map_year"),
    (("features", 1, "properties", "kind"), "toaster", "unknown kind 'toaster'"),
    (("features", 1, "properties", "wijk"), "W1", "'wijk' must match"),
    (("features", 1, "properties", "gateway"), "gw-nowhere", "unknown gateway"),
    (("features", 1, "properties", "address"), "xyz", "'address' must match"),
    (("features", 1, "properties", "link"), "wifi", "link must be"),
    (("features", 1, "properties", "classification"), "secret", "classification must be one of"),
    (("features", 1, "properties", "role"), "sensor", "role must be"),
    (("features", 1, "properties", "id"), "bad id", "must match"),
    (("features", 1, "geometry"), {"type": "Point", "coordinates": [500, 1]}, "out of range"),
    (("features", 1, "geometry"), {"type": "Polygon", "coordinates": []}, "Point"),
    (("features", 1, "geometry"), {"type": "Point", "coordinates": [True, False]}, "Point"),  # bool is an int
    (("features", 0, "properties", "gemeente"), KeyError, "'gemeente'"),
])
def test_bad_registries_are_refused_naming_the_feature_and_field(path, value, message):
    with pytest.raises(RegistryError, match=message):
        parse(_mutate(path, value))


def test_duplicate_ids_and_shared_addresses_are_refused():
    data = demo_data()
    data["features"].append(copy.deepcopy(data["features"][1]))
    with pytest.raises(RegistryError, match="duplicate id"):
        parse(data)
    data = demo_data()
    data["features"][2]["properties"]["address"] = data["features"][1]["properties"]["address"]
    with pytest.raises(RegistryError, match="share LoRa address"):
        parse(data)


def test_watched_registry_reloads_on_change_and_keeps_old_on_bad_edit(tmp_path):
    path = tmp_path / "reg.geojson"
    path.write_bytes(demo_registry_path().read_bytes())
    watched = WatchedRegistry(path, check_interval=0.0)
    first = watched.get()
    data = demo_data()
    data["features"] = [f for f in data["features"] if f["properties"]["id"] != "vs-sl-101"]
    path.write_bytes(jsonfast.dumps(data))
    os.utime(path, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    second = watched.get()
    assert "vs-sl-101" in first.devices and "vs-sl-101" not in second.devices
    path.write_text("{broken")
    os.utime(path, ns=(time.time_ns() + 2 * 10**9, time.time_ns() + 2 * 10**9))
    assert watched.get() is second
    assert watched.reload_failures == 1


def _lorawan_device(ident, dev_eui):
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [4.44, 52.12]},
            "properties": {"id": ident, "role": "device", "kind": "street_light", "gateway": "gw-vs-01",
                           "gemeente": "GM0626", "wijk": "WK062600", "link": "lorawan", "dev_eui": dev_eui}}


def test_lorawan_devices_need_a_dev_eui_of_their_own():
    data = demo_data()
    data["features"].append(_lorawan_device("vs-ns-001", "70B3D57ED0000001"))
    device = parse(data).devices["vs-ns-001"]
    assert (device.link, device.dev_eui, device.address, device.port) == ("lorawan", "70B3D57ED0000001", None, None)
    data["features"].append(_lorawan_device("vs-ns-002", "70b3d57ed0000001"))
    with pytest.raises(RegistryError, match="'dev_eui' must match"):
        parse(data)
    data["features"][-1]["properties"]["dev_eui"] = "70B3D57ED0000001"
    with pytest.raises(RegistryError, match="share DevEUI 70B3D57ED0000001"):
        parse(data)
