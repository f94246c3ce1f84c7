"""The DCAT-AP-NL catalogue: what data.overheid.nl harvests, public datasets only."""

import httpx
import pytest

from api.settings import ApiSettings
from core.kinds import KINDS
from core.registry import load
from core.settings import InfluxSettings
from smartcity.data import demo_registry_path
from tests.api.conftest import open_data_app, serve, write_registry

EU = "http://publications.europa.eu/resource/authority/"
CC0 = "http://creativecommons.org/publicdomain/zero/1.0/deed.nl"
pytestmark = pytest.mark.integration

BASE = "https://data.voorschoten-wassenaar.example"


def walk(node, visit):
    visit(node)
    if isinstance(node, dict):
        for v in node.values():
            walk(v, visit)
    elif isinstance(node, list):
        for v in node:
            walk(v, visit)


def catalogue(tmp_path, registry_path):
    settings = ApiSettings(str(registry_path), InfluxSettings("http://10.99.1.2:8086", "x"),
                           state_dir=str(tmp_path / "s"), public_url=BASE)
    with serve(open_data_app(settings)) as url:
        resp = httpx.get(url + "/v1/catalog")
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/ld+json"
    return resp.json()


@pytest.fixture
def doc(tmp_path, registry_file):
    return catalogue(tmp_path, registry_file)


def datasets(doc):
    return {d["@id"].rsplit("#", 1)[1]: d for d in doc["dcat:dataset"]}


def langs(values):
    return {v["@language"]: v["@value"] for v in values}


def test_the_catalogue_is_a_dcat_catalog_with_a_dataset_per_kind_and_per_gemeente(doc):
    assert doc["@type"] == "dcat:Catalog"
    assert doc["@id"] == f"{BASE}/v1/catalog"
    assert set(langs(doc["dct:title"])) == {"nl", "en"}
    assert doc["dct:publisher"]["foaf:name"] == "Gemeenten Voorschoten en Wassenaar"
    assert set(datasets(doc)) == {*(f"kind-{k}" for k in KINDS), "gemeente-GM0626", "gemeente-GM0629"}


def test_every_dataset_has_the_dcat_ap_nl_properties(doc):
    for key, ds in datasets(doc).items():
        assert ds["@type"] == "dcat:Dataset"
        assert ds["dct:identifier"] == ds["@id"]
        for prop in ("dct:title", "dct:description"):
            texts = langs(ds[prop])
            assert set(texts) == {"nl", "en"} and all(texts.values()), (key, prop)
        assert ds["dct:publisher"]["@type"] == "foaf:Agent" and ds["dct:publisher"]["foaf:name"]
        assert ds["dcat:contactPoint"]["@type"] == "vcard:Organization"
        assert ds["dct:license"] == {"@id": CC0}
        assert ds["dct:accessRights"] == {"@id": EU + "access-right/PUBLIC"}
        assert ds["dct:accrualPeriodicity"] == {"@id": EU + "frequency/UPDATE_CONT"}
        assert ds["dcat:theme"] and all(t["@id"].startswith(EU + "data-theme/") for t in ds["dcat:theme"])
        formats = {d["dct:format"]["@id"].rsplit("/", 1)[1] for d in ds["dcat:distribution"]}
        assert formats == {"JSON", "GEOJSON", "CSV"}
        for dist in ds["dcat:distribution"]:
            assert dist["@type"] == "dcat:Distribution"
            assert dist["dcat:accessURL"]["@id"].startswith(BASE + "/")
            assert dist["dct:license"] == {"@id": CC0}
            assert dist["dcat:mediaType"]["@id"].startswith("https://www.iana.org/assignments/media-types/")


def test_gemeente_datasets_have_their_cbs_region_and_publisher(doc):
    ds = datasets(doc)["gemeente-GM0629"]
    spatial = {s["@id"] for s in ds["dct:spatial"]}
    assert "http://betalinkeddata.cbs.nl/regios/2016/id/gemeente/GM0629" in spatial
    assert "http://standaarden.overheid.nl/owms/terms/Wassenaar_(gemeente)" in spatial
    assert ds["dct:publisher"]["@id"] == "https://identifier.overheid.nl/tooi/id/gemeente/gm0629"
    assert "Wassenaar" in langs(ds["dct:title"])["nl"]
    csv = [d for d in ds["dcat:distribution"] if d["dct:format"]["@id"].endswith("/CSV")]
    assert {d["dcat:accessURL"]["@id"] for d in csv} >= {f"{BASE}/v1/export/street_light.csv?gemeente=GM0629"}


def test_distribution_urls_work_against_the_api(doc, api):
    """Each CSV and GeoJSON access URL the catalogue names is a route that answers (relative to the test app)."""
    for ds in doc["dcat:dataset"]:
        for dist in ds["dcat:distribution"]:
            url = dist["dcat:accessURL"]["@id"].removeprefix(BASE)
            if url.startswith("/v1/"):
                assert api.get(url).status_code == 200, url


def test_the_themes_fit_the_kinds(doc):
    themes = {k: {t["@id"].rsplit("/", 1)[1] for t in d["dcat:theme"]} for k, d in datasets(doc).items()}
    assert "ENVI" in themes["kind-rain_gauge"]
    assert "TRAN" in themes["kind-parking_spot"] and "TRAN" in themes["kind-traffic_light"]
    assert "ENER" in themes["kind-street_light"]


def test_every_prefixed_term_is_declared_in_the_context(doc):
    prefixes = set(doc["@context"])
    used = set()
    walk(doc, lambda n: used.update(k.split(":", 1)[0] for k in n if ":" in k) if isinstance(n, dict) else None)
    assert used <= prefixes


def test_kinds_and_gemeenten_without_public_devices_are_left_out(tmp_path):
    devices = load(demo_registry_path()).devices.values()
    hidden = {d.id: "vertrouwelijk" for d in devices if d.kind == "parking_spot" or d.gemeente == "GM0629"}
    doc = catalogue(tmp_path, write_registry(tmp_path / "r.geojson", hidden))
    keys = set(datasets(doc))
    assert "kind-parking_spot" not in keys and "gemeente-GM0629" not in keys
    assert "kind-street_light" in keys
    assert "Wassenaar" not in str(doc)  # not even named
    assert doc["dct:publisher"]["@id"] == "https://identifier.overheid.nl/tooi/id/gemeente/gm0626"
