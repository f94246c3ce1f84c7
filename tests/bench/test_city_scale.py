"""bench/city_scale.py in its short form: 10,000 devices through real ingest and rules workers.

It runs the bench as CI would run it by hand (a subprocess with its own mosquitto and influxd), with the
second configuration (2 ingest workers on a shared subscription, 2 rules workers partitioned by wijk: the
one with more moving parts), steps x1 (the city's real cadence) and x30 of 4 s each, and checks the run's
own invariants: nothing lost at the real cadence, every trigger answered and timed, and InfluxDB holding
exactly the series the registry implies (one per device in its kind's measurement).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench import city_scale_city as cc  # noqa: E402


def run_quick(tmp_path: Path) -> dict[str, Any]:
    out = tmp_path / "city.json"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "city_scale.py"), "--quick", "--configs", "2x2",
                           "--steps", "1,30", "--json", str(out)], cwd=ROOT, capture_output=True, text=True,
                          timeout=110, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| 2i2r | x1 |" in proc.stdout, proc.stdout
    return dict(json.loads(out.read_text()))


def test_quick_city_run_loses_nothing_times_every_trigger_and_has_the_registry_series(tmp_path: Path) -> None:
    result = run_quick(tmp_path)
    meta, (conf,) = result["meta"], result["configurations"]
    city = cc.City(2, 25)
    assert meta["devices"] == city.devices == 10_000
    # The real cadence: 200 devices per gateway, LoRa nodes every 10 min, RG-15s polled every 10 s.
    per_gw = (140 * 5 + 40 * 2 + 16 * 2) / 600 + 4 * 4 / 10
    assert abs(meta["real_cadence_readings_s"] - per_gw * city.gateways) < 1e-6

    census = conf["census"]
    assert census["sent"]["points"] == city.devices  # every device once
    assert census["lost"] == 0 and census["stored"] == census["sent"]["records"]
    card = census["cardinality"]
    kinds = Counter(d.kind for g in range(city.gateways) for d in cc.gateway_devices(city, g))
    for kind, n in kinds.items():
        assert card["per_measurement"][kind] == n, (kind, card)
    assert card["readings_series"] == card["expected_readings_series"] == city.devices

    steps = {s["scale"]: s for s in conf["steps"]}
    assert set(steps) == {1.0, 30.0}
    for scale, step in steps.items():
        assert step["lost"] == 0 and step["stored"] == step["sent"]["records"] > 0, (scale, step["broken"])
        assert step["drain_s"] is not None
        lat = step["latency"]
        assert lat["triggers"] > 0 and lat["matched"] == lat["triggers"], lat
        assert 0 < lat["p50_ms"] <= lat["p95_ms"] <= lat["p99_ms"] <= lat["max_ms"] < 5000, lat
        assert step["cpu_pct"]["ingest-w0"] > 0 and step["cpu_pct"]["rules-1of2"] > 0
        assert all(step["rss_end"][k] > 0 for k in ("ingest-w0", "ingest-w1", "rules-0of2", "rules-1of2",
                                                     "mosquitto", "influxd"))
    x1, x30 = steps[1.0], steps[30.0]
    # Offered at the real cadence: within 15 % of the plan (a 4 s step rounds each gateway's reports).
    assert abs(x1["offered"] - meta["real_cadence_readings_s"]) < 0.15 * meta["real_cadence_readings_s"], x1["offered"]
    assert x30["sent"]["records"] > 20 * x1["sent"]["records"]
    # Both rules workers took part (partitioned by wijk) and, together, took in every reading.
    assert x30["end_totals"]["rules_records"] - x30["base_totals"]["rules_records"] >= x30["sent"]["records"]
