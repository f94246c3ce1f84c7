"""Timing of the API benchmark: paired medians of two requests, the nextLink walk, and the concurrent mix.

Paired: the two requests of a ratio alternate (A B, B A, A B, ...) on one keep-alive connection, so
the machine's noise falls on both; the ratio is of the medians. Every timed response is checked
(status 200, and what the benchmark knows it must contain), so a fast wrong answer cannot count.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

Check = Callable[[dict[str, Any]], None]


def get_json(http: httpx.Client, url: str) -> tuple[float, dict[str, Any]]:
    """(seconds, body) of one GET; SystemExit on anything but 200."""
    t0 = time.perf_counter()
    resp = http.get(url)
    seconds = time.perf_counter() - t0
    if resp.status_code != 200:
        raise SystemExit(f"GET {url[:200]} answered {resp.status_code}: {resp.text[:300]}")
    return seconds, resp.json()


def paired(http: httpx.Client, a: str, b: str, repeats: int, *, check_a: Check, check_b: Check) -> dict[str, float]:
    """Median ms of a and of b over alternating repeats (after one warm-up each) and their ratio."""
    for url, check in ((a, check_a), (b, check_b)):
        check(get_json(http, url)[1])
    times: dict[str, list[float]] = {"a": [], "b": []}
    for r in range(repeats):
        order = (("a", a, check_a), ("b", b, check_b))
        for name, url, check in order if r % 2 == 0 else order[::-1]:
            seconds, body = get_json(http, url)
            check(body)
            times[name].append(seconds * 1000)
    ma, mb = statistics.median(times["a"]), statistics.median(times["b"])
    return {"a_ms": ma, "b_ms": mb, "ratio": ma / mb, "a_p90_ms": _p90(times["a"]), "b_p90_ms": _p90(times["b"]),
            "repeats": float(repeats)}


def _p90(values: list[float]) -> float:
    return sorted(values)[min(len(values) - 1, int(len(values) * 0.9))]


def with_params(url: str, **params: str) -> str:
    """url with some query parameters replaced (the nextLink's $top, say)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update(params)
    return urlunsplit(parts._replace(query=urlencode(query, safe="$'(),;= ")))


def walk(http: httpx.Client, url: str, depth: int, log: Callable[[str], None]) -> tuple[str, float, int]:
    """Follow @iot.nextLink from url until depth rows were served; (the next link, seconds, rows)."""
    rows, t0, last = 0, time.perf_counter(), time.perf_counter()
    while rows < depth:
        _, body = get_json(http, url)
        rows += len(body["value"])
        link = body.get("@iot.nextLink")
        if not link:
            raise SystemExit(f"no @iot.nextLink after {rows} rows (wanted {depth})")
        url = link
        if time.perf_counter() - last > 5:
            last = time.perf_counter()
            log(f"  walked {rows:,} rows ({last - t0:.0f} s)")
    return url, time.perf_counter() - t0, rows


@dataclass(slots=True)
class MixResult:
    """What the concurrent clients did."""

    requests: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    latencies_ms: dict[str, list[float]] = field(default_factory=dict)


def mix(base: str, urls: list[tuple[str, str, int]], *, clients: int, seconds: float, max_requests: int,
        seed: int) -> dict[str, Any]:
    """requests/s of clients threads, each on its own keep-alive connection, drawing (name, url, weight)
    at random until seconds pass or max_requests are done."""
    names = [n for n, _, _ in urls]
    weights = [w for _, _, w in urls]
    result = MixResult()
    lock = threading.Lock()
    stop = threading.Event()
    deadline = time.monotonic() + seconds

    def client(k: int) -> None:
        rnd = random.Random(seed + k)
        with httpx.Client(base_url=base, timeout=60) as http:
            while not stop.is_set() and time.monotonic() < deadline:
                i = rnd.choices(range(len(urls)), weights)[0]
                t0 = time.perf_counter()
                try:
                    status = str(http.get(urls[i][1]).status_code)
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                ms = (time.perf_counter() - t0) * 1000
                with lock:
                    result.requests += 1
                    if status != "200":
                        result.errors[f"{names[i]}: {status}"] = result.errors.get(f"{names[i]}: {status}", 0) + 1
                    result.latencies_ms.setdefault(names[i], []).append(ms)
                    if result.requests >= max_requests:
                        stop.set()

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(clients)]
    t0 = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join(seconds + 120)
    elapsed = time.monotonic() - t0
    return {"clients": clients, "seconds": elapsed, "requests": result.requests,
            "requests_per_s": result.requests / elapsed, "errors": result.errors,
            "per_query": {n: {"requests": len(v), "median_ms": statistics.median(v), "p90_ms": _p90(v)}
                          for n, v in sorted(result.latencies_ms.items())}}
