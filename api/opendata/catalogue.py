"""The DCAT-AP-NL catalogue (JSON-LD) of the published datasets, for harvesting by data.overheid.nl.

DCAT-AP-NL 2.x (DCAT-AP-DONL 2.0, on DCAT-AP 2.1) asks of a Dataset a title and description
(here in Dutch and English), an identifier, a publisher, a contact point, access rights and
language, and recommends themes from the EU data-theme vocabulary, spatial coverage, an update
frequency (EU frequency vocabulary) and distributions; a Distribution needs an access URL,
and gets a licence, a format (EU file-type vocabulary) and a media type (IANA). The datasets:
one per device kind (all public devices of that kind) and one per gemeente (all its public
devices), each with three distributions: the SensorThings API, GeoJSON of the latest values
and the CSV export. Open data is CC0 (the municipalities' open-data policy: no conditions).
Only kinds and gemeenten that have public devices appear; nothing here names a device.

The spatial coverage is the gemeente both as CBS linked-data region and as the OWMS term
data.overheid.nl's own vocabulary uses. The publisher of a gemeente's dataset is that
gemeente (its TOOI organisation URI); a kind's dataset spans gemeenten, so its publisher is
the catalogue's (the gemeenten together).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.deps import RegistryDep
from api.opendata.public import public_devices
from core import jsonfast
from core.kinds import KINDS
from core.registry import Device

router = APIRouter(prefix="/v1", tags=["open data"])

CONTEXT = {
    "dcat": "http://www.w3.org/ns/dcat#", "dct": "http://purl.org/dc/terms/", "foaf": "http://xmlns.com/foaf/0.1/",
    "vcard": "http://www.w3.org/2006/vcard/ns#", "xsd": "http://www.w3.org/2001/XMLSchema#",
}
EU = "http://publications.europa.eu/resource/authority/"
CC0 = "http://creativecommons.org/publicdomain/zero/1.0/deed.nl"
STA_STANDARD = "http://www.opengis.net/doc/is/sensorthings/1.1"
CBS_GEMEENTE = "http://betalinkeddata.cbs.nl/regios/2016/id/gemeente/{code}"
OWMS_GEMEENTE = "http://standaarden.overheid.nl/owms/terms/{name}_(gemeente)"
TOOI_GEMEENTE = "https://identifier.overheid.nl/tooi/id/gemeente/{code}"
GEMEENTE_NAMES = {"GM0626": "Voorschoten", "GM0629": "Wassenaar"}

# (title nl, title en, themes): themes from the EU data-theme vocabulary.
KIND_INFO: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "street_light": ("Straatverlichting", "Street lighting", ("ENER", "REGI")),
    "rain_gauge": ("Neerslagmeters", "Rain gauges", ("ENVI",)),
    "occupancy": ("Aanwezigheidstellers", "Occupancy counters", ("REGI", "SOCI")),
    "parking_spot": ("Parkeerplaatssensoren", "Parking spot sensors", ("TRAN",)),
    "traffic_light": ("Verkeerslichten", "Traffic lights", ("TRAN",)),
}


def _text(nl: str, en: str) -> list[dict[str, str]]:
    return [{"@language": "nl", "@value": nl}, {"@language": "en", "@value": en}]


def _ref(uri: str) -> dict[str, str]:
    return {"@id": uri}


def gemeente_name(code: str) -> str:
    """The gemeente's name, or its code where it is not known here."""
    return GEMEENTE_NAMES.get(code, code)


def _spatial(codes: list[str]) -> list[dict[str, str]]:
    out = [_ref(CBS_GEMEENTE.format(code=c)) for c in codes]
    out += [_ref(OWMS_GEMEENTE.format(name=quote(GEMEENTE_NAMES[c]))) for c in codes if c in GEMEENTE_NAMES]
    return out


def _gemeente_agent(code: str) -> dict[str, Any]:
    return {"@id": TOOI_GEMEENTE.format(code=code.lower()), "@type": "foaf:Agent",
            "foaf:name": f"Gemeente {gemeente_name(code)}"}


class Catalogue:
    """Builds the catalogue for one base URL and the registry's public devices."""

    def __init__(self, base: str, devices: list[Device]) -> None:
        self.base = base
        self.devices = devices
        self.gemeenten = sorted({d.gemeente for d in devices})
        names = " en ".join(gemeente_name(g) for g in self.gemeenten) or "de gemeenten"
        self.names = names
        self.publisher: dict[str, Any] = (
            _gemeente_agent(self.gemeenten[0]) if len(self.gemeenten) == 1
            else {"@id": f"{base}/v1/catalog#publisher", "@type": "foaf:Agent", "foaf:name": f"Gemeenten {names}"})
        self.contact = {"@id": f"{base}/v1/catalog#contact", "@type": "vcard:Organization",
                        "vcard:fn": f"Open data sensornetwerk {names}", "vcard:hasURL": _ref(base + "/docs")}
        self.service = {"@id": f"{base}/v1.1", "@type": "dcat:DataService",
                        "dct:title": _text("SensorThings API", "SensorThings API"),
                        "dcat:endpointURL": _ref(f"{base}/v1.1"), "dct:conformsTo": _ref(STA_STANDARD),
                        "dct:license": _ref(CC0)}

    def _distributions(self, key: str, sta_filter: str, latest_query: str, csv_urls: list[tuple[str, str]]
                       ) -> list[dict[str, Any]]:
        base = self.base
        out: list[dict[str, Any]] = [
            {"@id": f"{base}/v1/catalog#{key}-sta", "@type": "dcat:Distribution",
             "dct:title": _text("SensorThings API 1.1", "SensorThings API 1.1"),
             "dcat:accessURL": _ref(f"{base}/v1.1/Things?$filter={quote(sta_filter)}"),
             "dcat:accessService": _ref(f"{base}/v1.1"), "dct:conformsTo": _ref(STA_STANDARD),
             "dct:format": _ref(EU + "file-type/JSON"),
             "dcat:mediaType": _ref("https://www.iana.org/assignments/media-types/application/json"),
             "dct:license": _ref(CC0)},
            {"@id": f"{base}/v1/catalog#{key}-geojson", "@type": "dcat:Distribution",
             "dct:title": _text("Laatste meetwaarden (GeoJSON)", "Latest values (GeoJSON)"),
             "dcat:accessURL": _ref(f"{base}/v1/latest?{latest_query}"),
             "dcat:downloadURL": _ref(f"{base}/v1/latest?{latest_query}"),
             "dct:format": _ref(EU + "file-type/GEOJSON"),
             "dcat:mediaType": _ref("https://www.iana.org/assignments/media-types/application/geo+json"),
             "dct:license": _ref(CC0)},
        ]
        for kind, url in csv_urls:
            nl, en, _ = KIND_INFO.get(kind, (kind, kind, ()))
            out.append({
                "@id": f"{base}/v1/catalog#{key}-csv-{kind}", "@type": "dcat:Distribution",
                "dct:title": _text(f"{nl}: metingen per periode (CSV)", f"{en}: readings per period (CSV)"),
                "dct:description": _text("Parameters from en to (ISO 8601), ten hoogste 31 dagen per bestand.",
                                         "Parameters from and to (ISO 8601), at most 31 days per file."),
                "dcat:accessURL": _ref(url), "dct:format": _ref(EU + "file-type/CSV"),
                "dcat:mediaType": _ref("https://www.iana.org/assignments/media-types/text/csv"),
                "dct:license": _ref(CC0)})
        return out

    def _dataset(self, key: str, *, title: list[dict[str, str]], description: list[dict[str, str]],
                 themes: list[str], keywords: list[str], gemeenten: list[str], publisher: dict[str, Any],
                 distributions: list[dict[str, Any]]) -> dict[str, Any]:
        uri = f"{self.base}/v1/catalog#{key}"
        return {
            "@id": uri, "@type": "dcat:Dataset", "dct:identifier": uri, "dct:title": title,
            "dct:description": description, "dct:publisher": publisher, "dcat:contactPoint": self.contact,
            "dcat:theme": [_ref(EU + "data-theme/" + t) for t in themes], "dcat:keyword": keywords,
            "dct:spatial": _spatial(gemeenten), "dct:accrualPeriodicity": _ref(EU + "frequency/UPDATE_CONT"),
            "dct:accessRights": _ref(EU + "access-right/PUBLIC"), "dct:language": _ref(EU + "language/NLD"),
            "dct:license": _ref(CC0), "dcat:distribution": distributions,
        }

    def kind_dataset(self, kind: str) -> dict[str, Any]:
        """The dataset of all public devices of one kind."""
        devices = [d for d in self.devices if d.kind == kind]
        gemeenten = sorted({d.gemeente for d in devices})
        nl, en, themes = KIND_INFO.get(kind, (kind, kind, ("REGI",)))
        names = " en ".join(gemeente_name(g) for g in gemeenten)
        metrics = KINDS[kind].metrics
        measured_en = ", ".join(f"{m.name} ({m.description})" for m in metrics.values())
        return self._dataset(
            f"kind-{kind}", title=_text(f"{nl} in {names}: sensordata", f"{en} in {names}: sensor data"),
            description=_text(
                f"Metingen van {len(devices)} openbare sensoren ({nl.lower()}) in de gemeenten {names}, "
                f"per apparaat met gemeente- en wijkcode (CBS). Grootheden: {', '.join(metrics)}.",
                f"Readings of {len(devices)} public sensors ({KINDS[kind].description}) in {names}, per device "
                f"with CBS gemeente and wijk codes. Quantities: {measured_en}."),
            themes=list(themes), keywords=[kind, *metrics], gemeenten=gemeenten, publisher=self.publisher,
            distributions=self._distributions(f"kind-{kind}", f"properties/kind eq '{kind}'", f"kind={kind}",
                                              [(kind, f"{self.base}/v1/export/{kind}.csv")]))

    def gemeente_dataset(self, code: str) -> dict[str, Any]:
        """The dataset of all public devices in one gemeente."""
        devices = [d for d in self.devices if d.gemeente == code]
        kinds = sorted({d.kind for d in devices})
        name = gemeente_name(code)
        titles_nl = ", ".join(KIND_INFO.get(k, (k, k, ()))[0].lower() for k in kinds)
        titles_en = ", ".join(KIND_INFO.get(k, (k, k, ()))[1].lower() for k in kinds)
        themes = sorted({t for k in kinds for t in KIND_INFO.get(k, ("", "", ("REGI",)))[2]})
        return self._dataset(
            f"gemeente-{code}",
            title=_text(f"Sensordata gemeente {name}", f"Sensor data of the municipality of {name}"),
            description=_text(f"Metingen van {len(devices)} openbare sensoren in de gemeente {name}: {titles_nl}.",
                              f"Readings of {len(devices)} public sensors in the municipality of {name}: "
                              f"{titles_en}."),
            themes=themes, keywords=[name, *kinds], gemeenten=[code], publisher=_gemeente_agent(code),
            distributions=self._distributions(
                f"gemeente-{code}", f"properties/gemeente eq '{code}'", f"gemeente={code}",
                [(k, f"{self.base}/v1/export/{k}.csv?gemeente={code}") for k in kinds]))

    def document(self) -> dict[str, Any]:
        """The whole catalogue as a JSON-LD document."""
        kinds = sorted({d.kind for d in self.devices})
        return {
            "@context": CONTEXT, "@id": f"{self.base}/v1/catalog", "@type": "dcat:Catalog",
            "dct:title": _text(f"Open sensordata {self.names}", f"Open sensor data {self.names}"),
            "dct:description": _text(
                "Openbare meetgegevens van het sensornetwerk (straatverlichting, neerslag, aanwezigheid, "
                "parkeren, verkeerslichten); alleen gegevens met classificatie openbaar.",
                "Public readings of the municipal sensor network (street lighting, rain, occupancy, parking, "
                "traffic lights); only data classified public."),
            "dct:publisher": self.publisher, "dct:language": _ref(EU + "language/NLD"),
            "dct:license": _ref(CC0), "foaf:homepage": _ref(self.base + "/docs"),
            "dct:spatial": _spatial(self.gemeenten), "dcat:themeTaxonomy": _ref(EU + "data-theme"),
            "dcat:service": [self.service],
            "dcat:dataset": [*(self.kind_dataset(k) for k in kinds),
                             *(self.gemeente_dataset(g) for g in self.gemeenten)],
        }


class JsonLdResponse(JSONResponse):
    """JSON-LD (compact UTF-8 JSON)."""

    media_type = "application/ld+json"

    def render(self, content: Any) -> bytes:
        """The body."""
        return jsonfast.dumps(content)


@router.get("/catalog", response_class=JsonLdResponse)
def catalog(request: Request, registry: RegistryDep) -> JsonLdResponse:
    """The DCAT-AP-NL catalogue (JSON-LD) of the open datasets: one per device kind and one per gemeente."""
    settings = request.app.state.settings
    base = settings.public_url or str(request.base_url).rstrip("/")
    return JsonLdResponse(Catalogue(base, public_devices(registry)).document())
