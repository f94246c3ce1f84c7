"""What each metric means: its UCUM unit, its ObservedProperty definition and its observation type.

Units: ``symbol`` is the UCUM case-sensitive code (what OGC 18-088 recommends for
``unitOfMeasurement``), ``definition`` the QUDT unit resource, which is dereferenceable and names
the same UCUM code (UCUM itself has no per-unit URIs). Boolean metrics are truth observations and
have no unit: OGC 18-088 (Datastream, unitOfMeasurement) says name, symbol and definition are then
null.

ObservedProperty definitions are FIWARE Smart Data Models attributes where the data model has one
(the Streetlighting, Weather, Parking and Transportation models); where none exists the definition
is the QUDT quantity kind, or, for a yes/no state with no quantity kind, a URN of this service.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.kinds import KINDS, ValueType

OM_MEASUREMENT = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"
OM_TRUTH = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_TruthObservation"

_SDM = "https://smartdatamodels.org/"
_QUDT_UNIT = "http://qudt.org/vocab/unit/"
_QUDT_KIND = "http://qudt.org/vocab/quantitykind/"
_URN = "urn:smartcity:observed-property:"


@dataclass(frozen=True, slots=True)
class Unit:
    """A unitOfMeasurement: name, UCUM code, QUDT definition."""

    name: str
    symbol: str
    definition: str

    def json(self) -> dict[str, Any]:
        """As the Datastream property."""
        return {"name": self.name, "symbol": self.symbol, "definition": self.definition}


# SenML unit names of core.kinds -> UCUM.
UNITS: dict[str, Unit] = {
    "%": Unit("percent", "%", _QUDT_UNIT + "PERCENT"),
    "W": Unit("watt", "W", _QUDT_UNIT + "W"),
    "kWh": Unit("kilowatt hour", "kW.h", _QUDT_UNIT + "KiloW-HR"),
    "V": Unit("volt", "V", _QUDT_UNIT + "V"),
    "Cel": Unit("degree Celsius", "Cel", _QUDT_UNIT + "DEG_C"),
    "mm/h": Unit("millimetre per hour", "mm/h", _QUDT_UNIT + "MilliM-PER-HR"),
    "mm": Unit("millimetre", "mm", _QUDT_UNIT + "MilliM"),
    "count": Unit("count", "{count}", _QUDT_UNIT + "NUM"),
    "s": Unit("second", "s", _QUDT_UNIT + "SEC"),
}

NO_UNIT: dict[str, Any] = {"name": None, "symbol": None, "definition": None}

# metric -> (ObservedProperty name, definition URI)
OBSERVED_PROPERTIES: dict[str, tuple[str, str]] = {
    "dim_level": ("Light level", _SDM + "dataModel.Streetlighting/illuminanceLevel"),
    "power": ("Active power", _SDM + "dataModel.Streetlighting/activePower"),
    "energy": ("Energy consumed", _SDM + "dataModel.Streetlighting/energyConsumed"),
    "voltage": ("Supply voltage", _SDM + "dataModel.Streetlighting/voltage"),
    "temperature": ("Controller temperature", _QUDT_KIND + "Temperature"),
    "lamp_failure": ("Lamp failure", _SDM + "dataModel.Streetlighting/lanternStatus"),
    "rain_intensity": ("Rain intensity", _QUDT_KIND + "Speed"),
    "accumulation": ("Precipitation", _SDM + "dataModel.Weather/precipitation"),
    "event_accumulation": ("Precipitation in the current event", _QUDT_KIND + "Length"),
    "total_accumulation": ("Precipitation since reset", _QUDT_KIND + "Length"),
    "presence": ("Presence", _URN + "presence"),
    "count": ("People count", _SDM + "dataModel.Transportation/peopleCount"),
    "occupied": ("Parking spot occupied", _SDM + "dataModel.Parking/status"),
    "bike_priority": ("Bike priority", _URN + "bike_priority"),
    "cycle_time": ("Signal cycle time", _QUDT_KIND + "Time"),
}


def unit_json(kind: str, metric: str) -> dict[str, Any]:
    """The Datastream's unitOfMeasurement of one kind's metric."""
    m = KINDS[kind].metrics[metric]
    if m.type is ValueType.BOOLEAN or m.unit is None:
        return dict(NO_UNIT)
    return UNITS[m.unit].json()


def observation_type(kind: str, metric: str) -> str:
    """OM_Measurement for numbers, OM_TruthObservation for booleans."""
    return OM_TRUTH if KINDS[kind].metrics[metric].type is ValueType.BOOLEAN else OM_MEASUREMENT


def observed_property(metric: str) -> tuple[str, str]:
    """(name, definition) of a metric; a metric added to core.kinds without one gets a URN."""
    return OBSERVED_PROPERTIES.get(metric, (metric, _URN + metric))
