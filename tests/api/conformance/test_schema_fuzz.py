"""schemathesis against /openapi.json of the full app: no generated request gets a 5xx.

Anonymous over every documented operation, and as an operator over the SensorThings operations
(/v1.1), with valid (positive) and invalid (negative) generated input. The number of examples
per operation and mode is SMARTCITY_SCHEMA_EXAMPLES (small by default, so the normal run stays
quick; raise it for a deeper fuzz). schemathesis' pytest plugin (from_fixture) does not run
under pytest 9, so the operations' hypothesis strategies are driven directly.
"""

from __future__ import annotations

import os

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.api.conformance.conftest import USERS

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("SMARTCITY_SCHEMA_EXAMPLES", "5"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))


def fuzz_operation(operation: schemathesis.APIOperation, mode: GenerationMode,
                   auth: tuple[str, str] | None) -> list[str]:
    """Generated requests for one operation; the first 5xx seen (hypothesis need not shrink it)."""
    seen: list[str] = []

    @FUZZ
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        response = case.call(auth=auth, timeout=30)
        if response.status_code >= 500 and not seen:
            seen.append(f"{case.method.upper()} {response.request.url} -> {response.status_code}: "
                        f"{response.text[:200]}")

    try:
        run()
    except Unsatisfiable:
        pass  # negative mode of an operation without parameters or body: nothing invalid to send
    except Exception as e:  # a generation problem of one operation must not hide the others
        seen.append(f"{operation.method.upper()} {operation.path} ({mode.value}): {type(e).__name__}: {str(e)[:200]}")
    return seen


def server_errors(url: str, auth: tuple[str, str] | None, path_prefix: str = "") -> list[str]:
    """Run every operation of the schema at url; a line per operation that got a 5xx."""
    schema = schemathesis.openapi.from_url(url + "/openapi.json")
    operations = [r.ok() for r in schema.get_all_operations()]
    assert operations, "the schema documents no operations"
    failures: list[str] = []
    for operation in operations:
        if operation.path.startswith(path_prefix):
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                failures += fuzz_operation(operation, mode, auth)
    return failures


def test_no_server_errors_anonymous(served) -> None:
    """Whatever schemathesis sends anonymously, the answer is never a 5xx."""
    failures = server_errors(served.url, None)
    assert not failures, "\n".join(failures)


def test_no_server_errors_operator_sensorthings(served) -> None:
    """As an operator, generated SensorThings reads and writes never get a 5xx."""
    failures = server_errors(served.url, USERS["operator"], "/v1.1")
    assert not failures, "\n".join(failures)


def test_openapi_documents_the_sensorthings_sets(served) -> None:
    """/openapi.json documents the eight entity sets and Set({id}) (what schemathesis can reach)."""
    paths = httpx.get(served.url + "/openapi.json", timeout=10).json()["paths"]
    for entity_set in ("Things", "Locations", "HistoricalLocations", "Datastreams", "Sensors",
                       "ObservedProperties", "Observations", "FeaturesOfInterest"):
        assert f"/v1.1/{entity_set}" in paths, f"/v1.1/{entity_set} not documented"
        assert any(p.startswith(f"/v1.1/{entity_set}(") for p in paths), f"/v1.1/{entity_set}({{id}}) not documented"
