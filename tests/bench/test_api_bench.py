"""Smoke run of bench/api.py --small: a tiny city, so that CI notices when the benchmark breaks.

Not a measurement (180k Observations, depth 10,000, a 3 s mix): it checks that the bench loads a
private influxd, serves the real `smartcity api`, walks nextLinks to depth, and that every figure
comes out with answers the bench verified (the deep page starts at the right row, the count equals
what was loaded: the bench exits non-zero otherwise).
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(600)
def test_the_api_bench_runs_small(tmp_path):
    out = tmp_path / "api.json"
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "api.py"), "--small", "--repeats", "3", "--mix-seconds", "2",
         "--json", str(out)],
        capture_output=True, text=True, timeout=580, check=False, cwd=REPO)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert figures["load"]["observations"] == 183_000
    assert figures["walk"]["rows"] >= 10_000
    for key in ("deep_page", "count", "latest_wijk"):
        assert figures[key]["ratio"] > 0 and figures[key]["a_ms"] > 0, key
    assert figures["mix"]["requests"] > 0 and not figures["mix"]["errors"], figures["mix"]
    assert "| page at nextLink depth 10,000 vs the first page |" in result.stdout
