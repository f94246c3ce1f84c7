import pytest

from core.topics import Channel, ParsedTopic, TopicError, check_id, parse, subscription, topic


def test_topic_and_parse_are_inverse():
    for channel in Channel:
        assert parse(topic("gw-vs-01", channel)) == ParsedTopic("gw-vs-01", channel)


def test_topics_follow_the_contract():
    assert topic("gw-1", Channel.READINGS) == "smartcity/v1/gw/gw-1/readings"
    assert subscription(Channel.ACKS) == "smartcity/v1/gw/+/acks"
    assert subscription(Channel.READINGS, "ingest") == "$share/ingest/smartcity/v1/gw/+/readings"


@pytest.mark.parametrize("bad", ["smartcity/v1/gw/gw-1/unknown", "smartcity/v2/gw/gw-1/readings",
                                 "readings", "smartcity/v1/gw/bad id/readings", "smartcity/v1/gw//readings"])
def test_parse_rejects_what_is_not_the_contract(bad):
    with pytest.raises(TopicError):
        parse(bad)


@pytest.mark.parametrize("bad", ["", "a b", "a/b", "a+", "#", "-leading", "x" * 64])
def test_ids_that_would_break_topics_or_tags_are_refused(bad):
    with pytest.raises(TopicError, match="must match"):
        check_id(bad)
