"""The MQTT topics Observations are published on: the SensorThings resource paths (OGC 18-088 14.2).

The standard's topic for receiving the new entities of a collection is SERVICE_VERSION/
RESOURCE_PATH_TO_AN_ENTITY_SET, its example ``v1.1/Datastreams(1)/Observations`` written with a
numeric id. Our ids are strings, and a string id in a resource path is an OData string literal,
so the topic quotes it exactly as the URL does: ``v1.1/Datastreams('vs-sl-101.power')/Observations``
(FROST-Server with string ids does the same). ``v1.1/Observations`` is the resource path of the
Observations entity set itself, which the same clause admits, so every Observation goes there too.

A broker of our own cannot know which of the many other paths that reach an Observation
(``FeaturesOfInterest(..)/Observations``, ``$select`` variants, single-entity topics) has a
subscriber, and publishing to all of them would multiply the load; these two are published.
"""

from __future__ import annotations

from api.sta.model import VERSION, EntitySet, quote_id

OBSERVATIONS_TOPIC = f"{VERSION}/{EntitySet.OBSERVATIONS}"
# What the publisher's account may write and the open-data listener's consumers may read.
TOPIC_FILTER = f"{VERSION}/#"


def datastream_observations_topic(datastream: str) -> str:
    """The topic of a Datastream's Observations collection, its id quoted as in the URL."""
    return f"{VERSION}/{EntitySet.DATASTREAMS}({quote_id(datastream)})/{EntitySet.OBSERVATIONS}"
