"""The MQTT topic scheme of wire contract v1 (architecture.md, "MQTT contract")."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

PREFIX = "smartcity/v1/gw"
# Gateway and device ids end up in topics, InfluxDB tags and SenML names, so they are
# restricted to characters that need no escaping in any of the three.
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


class Channel(StrEnum):
    """The per-gateway topics of the contract."""

    READINGS = "readings"
    STATUS = "status"
    COMMANDS = "commands"
    ACKS = "acks"


class TopicError(ValueError):
    """A topic or id that does not follow the contract."""


def check_id(value: str, what: str = "id") -> str:
    """Return value if it is a valid gateway/device id, else raise TopicError naming it."""
    if not ID_PATTERN.match(value):
        raise TopicError(f"{what} must match {ID_PATTERN.pattern}: {value!r}")
    return value


def topic(gateway: str, channel: Channel) -> str:
    """The topic of one gateway's channel, e.g. smartcity/v1/gw/gw-1/readings."""
    return f"{PREFIX}/{check_id(gateway, 'gateway')}/{channel.value}"


def subscription(channel: Channel, share_group: str | None = None) -> str:
    """The wildcard filter for a channel of all gateways, optionally as an MQTT 5 shared subscription."""
    base = f"{PREFIX}/+/{channel.value}"
    return f"$share/{share_group}/{base}" if share_group else base


@dataclass(frozen=True, slots=True)
class ParsedTopic:
    """A topic split into the gateway it concerns and its channel."""

    gateway: str
    channel: Channel


def parse(topic_name: str) -> ParsedTopic:
    """Split a contract topic; raise TopicError naming what is wrong."""
    head, sep, rest = topic_name.rpartition("/")
    prefix, _, gateway = head.rpartition("/")
    if not sep or prefix != PREFIX:
        raise TopicError(f"not a {PREFIX}/<gateway>/<channel> topic: {topic_name!r}")
    try:
        channel = Channel(rest)
    except ValueError:
        raise TopicError(f"unknown channel {rest!r} in topic {topic_name!r}") from None
    return ParsedTopic(check_id(gateway, "gateway"), channel)
