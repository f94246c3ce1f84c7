"""The publisher: readings from the gateways' topics in, Observations on the SensorThings topics out.

One MqttLink (core/mqtt_service.py) does both, in paho's network thread: a message is parsed into
columns (core/senml_columns.py), screened (streams.screen), and each accepted reading published
as ``api.sta.model.observation_json`` (rendered from a per-Datastream template, render.py) to its
Datastream's topic and to ``v1.1/Observations``.

Delivery is at most once, on purpose:

- the readings come at QoS 0 on a clean session through a share group of its own (``sta-mqtt``):
  while the service is down the broker queues nothing for it, so it never replays an hour of
  stale readings as "new" Observations on restart; what was missed is in the HTTP API.
- Observations go out at QoS 0: the broker never queues them for an offline consumer (an
  anonymous one could otherwise make it hold an unbounded backlog per client id), and there
  is no acknowledgement to track per message, which at city scale is most of the cost of QoS 1.
- the outgoing queue is bounded: paho buffers QoS 0 packets without limit while the socket is
  slower than the readings arrive; beyond ``max_backlog`` packets a pack's Observations are
  dropped and counted (dropped_backlog) rather than let the queue grow the process's memory.

Several instances with the same share group split the gateways' messages between them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho

from api.sta_mqtt.metrics import Metrics
from api.sta_mqtt.render import ObservationRenderer
from api.sta_mqtt.streams import StreamCache, screen
from api.sta_mqtt.topics import OBSERVATIONS_TOPIC
from core import topics
from core.log_limit import LogLimiter
from core.mqtt_service import MqttLink, PublishError
from core.registry import WatchedRegistry
from core.senml_columns import SenMLError, decode_columns
from core.settings import MqttSettings
from core.topics import Channel, TopicError
from ingest.points import DEFAULT_BOUNDS, Rejects, TimeBounds

log = logging.getLogger(__name__)

DEFAULT_SHARE_GROUP = "sta-mqtt"
DEFAULT_MAX_BACKLOG = 50_000  # packets; a few seconds of a city's readings


@dataclass(frozen=True, slots=True)
class StaMqttConfig:
    """What the CLI tunes. base_url is the service root of the HTTP API, e.g. https://data.example.nl/v1.1."""

    base_url: str
    share_group: str = DEFAULT_SHARE_GROUP
    bounds: TimeBounds = DEFAULT_BOUNDS
    collection_topic: bool = True  # also publish to v1.1/Observations
    max_backlog: int = DEFAULT_MAX_BACKLOG


class StaMqttService:
    """One publisher; run several with the same share group to spread the load."""

    def __init__(self, mqtt_settings: MqttSettings, registry: WatchedRegistry, config: StaMqttConfig, *,
                 client_id: str = "smartcity-sta-mqtt", clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.registry = registry
        self._clock = clock
        self._tables = StreamCache()
        self.renderer = ObservationRenderer(config.base_url.rstrip("/"))
        self._bad_log = LogLimiter(10.0)
        self.link = MqttLink(
            "sta-mqtt", mqtt_settings, client_id,
            subscriptions=[(topics.subscription(Channel.READINGS, config.share_group), 0)],
            on_message=self._on_message, persistent=False,
        )
        self.metrics = Metrics(self.backlog)

    @property
    def connected(self) -> threading.Event:
        """Set while connected to the broker."""
        return self.link.connected

    def start(self) -> None:
        """Connect and publish until stop()."""
        self.link.start()

    def stop(self) -> None:
        """Disconnect (what paho still holds unsent is lost: QoS 0)."""
        self.link.stop()

    def backlog(self) -> int:
        """Packets paho holds for the socket; paho has no bound for QoS 0, so this service keeps one.

        paho 2.x exposes neither a bound nor the size of that queue: its deque is read directly (len()
        of a deque is atomic, so a scrape from another thread is safe).
        """
        return len(self.link.client._out_packet)

    def health(self) -> dict[str, Any]:
        """Health for /healthz: failing while disconnected from the broker."""
        connected = self.link.connected.is_set()
        c = self.metrics.counts
        return {"status": "ok" if connected else "failing", "mqtt": "connected" if connected else "disconnected",
                "observations": c.observations, "dropped": c.dropped_backlog + c.dropped_disconnected,
                "backlog": self.backlog(), "callback_errors": self.link.stats.callback_errors}

    # -- the hot path (paho's network thread) -----------------------------------------------------
    def _on_message(self, msg: paho.MQTTMessage) -> None:
        counts = self.metrics.counts
        counts.messages += 1
        now = self._clock()
        try:
            parsed = topics.parse(msg.topic)
            if parsed.channel is not Channel.READINGS:
                raise TopicError(f"not a readings topic: {msg.topic[:120]!r}")
            cols = decode_columns(msg.payload, now)
        except (TopicError, SenMLError) as exc:
            counts.bad_messages += 1
            if self._bad_log.allow():
                log.warning("sta-mqtt: ignored a message on %s: %s (%d similar not logged)", msg.topic[:200],
                            exc, self._bad_log.take_suppressed())
            return
        rejects = Rejects()
        accepted = screen(parsed.gateway, cols, self._tables.get(self.registry.get()), now=now, rejects=rejects,
                          bounds=self.config.bounds)
        if rejects.counts:
            totals = counts.rejected
            for reason, n in rejects.counts.items():
                totals[reason] = totals.get(reason, 0) + n
        if accepted:
            self._publish(accepted.topics, accepted.datastreams, accepted.times_us, accepted.values)

    def _publish(self, topic_list: list[str], datastreams: list[str], times_us: list[int],
                 values: list[float | bool]) -> None:
        counts = self.metrics.counts
        n = len(topic_list)
        if self.backlog() >= self.config.max_backlog:
            counts.dropped_backlog += n
            return
        render, publish = self.renderer.render, self.link.publish
        collection = OBSERVATIONS_TOPIC if self.config.collection_topic else None
        done = 0
        try:
            for topic, datastream, time_us, value in zip(topic_list, datastreams, times_us, values, strict=True):
                payload = render(datastream, time_us, value)
                publish(topic, payload, 0)
                if collection is not None:
                    publish(collection, payload, 0)
                done += 1
        except PublishError:
            # Not connected (QoS 0 is not queued by paho then): the rest of the pack would fail alike.
            counts.dropped_disconnected += n - done
        counts.observations += done
        counts.published += done * (2 if collection is not None else 1)
