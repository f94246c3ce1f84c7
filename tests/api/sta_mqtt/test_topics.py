"""The SensorThings topics: resource paths as the HTTP API writes them, under the root the broker grants."""

from api.sta.model import VERSION, quote_id, self_link
from api.sta_mqtt.topics import OBSERVATIONS_TOPIC, TOPIC_FILTER, datastream_observations_topic
from deploy.mosquitto import SERVICE_GRANTS, STA_MQTT_USER, STA_TOPIC_ROOT, open_data_acl


def test_a_datastream_topic_is_its_resource_path_with_the_id_quoted_as_in_the_url():
    assert datastream_observations_topic("vs-sl-101.power") == "v1.1/Datastreams('vs-sl-101.power')/Observations"
    # The same text as the path of the HTTP API's link, after the service root.
    link = self_link("http://x/v1.1", "Datastreams", "vs-sl-101.power") + "/Observations"
    assert link.removeprefix("http://x/") == datastream_observations_topic("vs-sl-101.power")
    assert quote_id("it's") in datastream_observations_topic("it's")


def test_the_collection_topic_and_the_broker_agree_on_the_root():
    assert OBSERVATIONS_TOPIC == "v1.1/Observations"
    assert STA_TOPIC_ROOT == VERSION
    assert f"{VERSION}/#" == TOPIC_FILTER
    assert f"write {TOPIC_FILTER}" in SERVICE_GRANTS[STA_MQTT_USER]
    assert f"topic read {TOPIC_FILTER}" in open_data_acl().splitlines()
