"""In-process ingest workers against the per-test broker and influxd, stopped at teardown."""

import time

import pytest

from core.influx import InfluxClient
from core.registry import WatchedRegistry
from ingest import worker as workers
from ingest.pipeline import PipelineConfig
from ingest.service import IngestConfig, IngestService
from smartcity.data import demo_registry_path
from tests.conftest import settings_for, wait_for

FAST = PipelineConfig(batch_lines=5_000, max_messages=2_000, max_latency=0.05, spool_after=0.5)


@pytest.fixture
def start_ingest(broker, influx, tmp_path):
    """A factory of started ingest workers: start_ingest(name=None, influx=None, **IngestConfig fields)."""
    started = []

    def make(name="w1", influx_client: InfluxClient | None = None, registry=None, connect=True, **overrides):
        # The periodic jobs are off unless a test asks for them: their points would change other tests' counts.
        config = IngestConfig(**{"pipeline": FAST, "audit_interval": 0, "status_interval": 0, "health_interval": 0,
                                 **overrides})
        claim = workers.claim(tmp_path / "state", name)
        service = IngestService(settings_for(broker, "ingest"), influx_client or influx,
                                WatchedRegistry(registry or demo_registry_path()), claim, config)
        started.append((service, claim))
        if connect:
            service.start()
            wait_for(service.connected.is_set, 5)
            time.sleep(0.2)  # let the SUBSCRIBE land before anything is published
        return service

    yield make
    for service, claim in started:
        service.stop()
        claim.release()
