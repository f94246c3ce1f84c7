"""`smartcity sta-mqtt`: publish the public readings as SensorThings Observations over MQTT until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import logging
import os

from api.sta.model import VERSION
from api.sta_mqtt.service import DEFAULT_MAX_BACKLOG, DEFAULT_SHARE_GROUP, StaMqttConfig, StaMqttService
from core.errors import ConfigError
from core.registry import WatchedRegistry
from core.runtime import on_sighup, run_until_stopped
from core.settings import mqtt_from_env
from core.status_http import StatusServer
from deploy.mosquitto import STA_MQTT_USER
from ingest.points import DEFAULT_MAX_LATENESS, DEFAULT_MAX_SKEW, TimeBounds

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the sta-mqtt subcommand (the broker connection comes from SMARTCITY_MQTT_*)."""
    parser.add_argument("--public-url", default=os.environ.get("SMARTCITY_API_PUBLIC_URL", ""),
                        help="the HTTP API's public base URL (as SMARTCITY_API_PUBLIC_URL, default that "
                             f"variable): Observations carry absolute links under <url>/{VERSION}")
    parser.add_argument("--client-id", default="smartcity-sta-mqtt", help="MQTT client id (unique per instance)")
    parser.add_argument("--share-group", default=DEFAULT_SHARE_GROUP, help="MQTT 5 shared-subscription group")
    parser.add_argument("--no-collection-topic", action="store_true",
                        help=f"publish only to {VERSION}/Datastreams(..)/Observations, not also to "
                             f"{VERSION}/Observations")
    parser.add_argument("--max-backlog", type=int, default=DEFAULT_MAX_BACKLOG,
                        help="packets waiting for the broker beyond which new Observations are dropped")
    parser.add_argument("--max-lateness", type=float, default=DEFAULT_MAX_LATENESS,
                        help="readings older than this many seconds are not published (the ingest's bound)")
    parser.add_argument("--max-skew", type=float, default=DEFAULT_MAX_SKEW,
                        help="readings more than this many seconds in the future are not published")
    parser.add_argument("--metrics-host", default="127.0.0.1", help="address of /metrics and /healthz")
    parser.add_argument("--metrics-port", type=int, default=-1, help="port of /metrics and /healthz (-1: off)")


def config_from_args(args: argparse.Namespace) -> StaMqttConfig:
    """The configuration, validated at start with messages naming the option."""
    url = str(args.public_url).rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ConfigError("--public-url (or SMARTCITY_API_PUBLIC_URL) must be the API's http(s) base URL: "
                          "Observations carry absolute @iot.selfLink URLs")
    if args.max_backlog <= 0 or args.max_lateness <= 0 or args.max_skew <= 0:
        raise ConfigError("--max-backlog, --max-lateness and --max-skew must be > 0")
    base = url if url.endswith(f"/{VERSION}") else f"{url}/{VERSION}"
    return StaMqttConfig(base_url=base, share_group=args.share_group,
                         bounds=TimeBounds(args.max_lateness, args.max_skew),
                         collection_topic=not args.no_collection_topic, max_backlog=args.max_backlog)


def run(args: argparse.Namespace) -> int:
    """Run the publisher; returns the exit status."""
    config = config_from_args(args)
    registry = WatchedRegistry(args.registry)
    mqtt_settings = mqtt_from_env()
    mqtt_settings.username = mqtt_settings.username or STA_MQTT_USER
    on_sighup(registry.reload)
    service = StaMqttService(mqtt_settings, registry, config, client_id=args.client_id)
    status: StatusServer | None = None
    if args.metrics_port >= 0:
        status = StatusServer(service.metrics.registry, service.health, host=args.metrics_host,
                              port=args.metrics_port)
        status.start()
    service.start()
    log.info("sta-mqtt publishing Observations under %s%s", config.base_url,
             f", status {status.url}" if status else "")
    try:
        run_until_stopped(args.duration)
    finally:
        service.stop()
        if status is not None:
            status.stop()
        c = service.metrics.counts
        log.info("sta-mqtt stopped: %d Observations published, %d dropped, %d bad messages", c.observations,
                 c.dropped_backlog + c.dropped_disconnected, c.bad_messages)
    return 0
