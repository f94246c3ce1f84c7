"""Grafana dashboards as code: Python builders (grafana-foundation-sdk), generated JSON, provisioning.

``smartcity dashboards build`` writes ``dashboards/json/<uid>.json``; ``check`` validates them; ``push``
uploads them to a running Grafana. Every query is raw InfluxQL against the one provisioned InfluxDB
datasource (see dashboards/README.md).
"""

import importlib
import warnings

with warnings.catch_warnings():
    # The SDK's v1 dashboard models (and the v2beta1 ones its panel builders import) warn at import
    # that dashboardv2 is preferred. v1 (schemaVersion 42) is what Grafana 12 loads from provisioned
    # files and what these dashboards are; importing the SDK modules here, before any submodule does,
    # keeps that warning out of every caller (the tests run with warnings as errors).
    warnings.simplefilter("ignore", DeprecationWarning)
    for _module in ("builders.barchart", "builders.bargauge", "builders.common", "builders.dashboard",
                    "builders.geomap", "builders.stat", "builders.statetimeline", "builders.table",
                    "builders.timeseries", "cog.plugins"):
        importlib.import_module(f"grafana_foundation_sdk.{_module}")
