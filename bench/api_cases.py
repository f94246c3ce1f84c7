"""The three ratios of the API benchmark, each from checked answers (see bench/api.py)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import httpx

from bench import api_data as data
from bench import api_measure as m

LATEST = "Observations($top=1;$orderby=phenomenonTime desc)"


def deep_paging(http: httpx.Client, args: argparse.Namespace, plan: data.Plan,
                log: Callable[[str], None]) -> dict[str, Any]:
    """A page at nextLink depth vs the first page of the long series; the walk; $skip once for contrast."""
    long_ds = f"{data.LONG}.rain_intensity"
    times = plan.long_times()
    obs = f"/v1.1/Datastreams('{long_ds}')/Observations"
    log(f"walking {args.depth:,} rows of {long_ds} by nextLink ...")
    link, walk_s, walked = m.walk(http, f"{obs}?$top=10000", args.depth, log)
    deep = m.with_params(link, **{"$top": "100"})

    def starts_at(index: int) -> m.Check:
        def check(body: dict[str, Any]) -> None:
            got = body["value"][0]["@iot.id"]
            if got != f"{long_ds}.{times[index]}" or len(body["value"]) != 100:
                raise SystemExit(f"page should start at row {index} ({long_ds}.{times[index]}), starts at {got}")
        return check

    log("deep page vs first page ...")
    out: dict[str, Any] = {"walk": {"rows": walked, "seconds": walk_s}}
    out["deep_page"] = m.paired(http, deep, f"{obs}?$top=100", args.repeats, check_a=starts_at(walked),
                                check_b=starts_at(0))
    skip_s, body = m.get_json(http, f"{obs}?$top=100&$skip={args.depth}")
    starts_at(args.depth)(body)
    out["skip_page_ms"] = skip_s * 1000
    return out


def counting(http: httpx.Client, args: argparse.Namespace, plan: data.Plan, devs: list[data.Device],
             log: Callable[[str], None]) -> dict[str, Any]:
    """$count=true on all Observations (cold once, then warm) vs $top=1; the count must be exact."""
    public_obs = plan.observations([d for d in devs if d.public])

    def counted(body: dict[str, Any]) -> None:
        if body.get("@iot.count") != public_obs:
            raise SystemExit(f"$count says {body.get('@iot.count')}, {public_obs} public Observations were loaded")

    def one(body: dict[str, Any]) -> None:
        if len(body["value"]) != 1:
            raise SystemExit("$top=1 did not give one Observation")

    log("$count (cold, then warm) vs $top=1 ...")
    cold_s, body = m.get_json(http, "/v1.1/Observations?$top=1&$count=true")
    counted(body)
    return {"count_cold_ms": cold_s * 1000,
            "count": m.paired(http, "/v1.1/Observations?$top=1&$count=true", "/v1.1/Observations?$top=1",
                              args.repeats, check_a=counted, check_b=one)}


def latest(http: httpx.Client, args: argparse.Namespace, devs: list[data.Device],
           log: Callable[[str], None]) -> dict[str, Any]:
    """The latest Observation of every Datastream of a wijk vs of one (lean: ids and results), and the
    same as Things with their full Datastreams for context."""
    wijk = data.WIJKEN[0]
    in_wijk = [d for d in devs if d.wijk == wijk and d.public]
    streams = sum(data.METRICS[d.kind] for d in in_wijk)

    def one_latest(body: dict[str, Any]) -> None:
        if len(body.get("Observations", [])) != 1:
            raise SystemExit("latest of one Datastream: no Observation")

    def every_latest(body: dict[str, Any]) -> None:
        n = sum(1 for ds in body["value"] if ds.get("Observations"))
        if n < streams:
            raise SystemExit(f"latest of the wijk: {n} Datastreams with an Observation, expected >= {streams}")

    def all_latest(body: dict[str, Any]) -> None:
        n = sum(1 for t in body["value"] for ds in t.get("Datastreams", []) if ds.get("Observations"))
        if n < streams:
            raise SystemExit(f"latest of the wijk: {n} Datastreams with an Observation, expected {streams}")

    log("latest of a wijk vs of one Datastream ...")
    lean = f"{LATEST[:-1]};$select=phenomenonTime,result)"
    collection = "/v1.1/Datastreams?$top=10000&$select=id&$expand=" + lean + "&$filter="
    one = f"/v1.1/Datastreams('{in_wijk[1].id}.power')"

    def one_in_list(body: dict[str, Any]) -> None:
        if len(body["value"]) != 1 or len(body["value"][0].get("Observations", [])) != 1:
            raise SystemExit("latest of one Datastream (collection): not one Datastream with an Observation")

    wijk_url = collection + f"Thing/properties/wijk eq '{wijk}'"
    out: dict[str, Any] = {"latest_wijk": m.paired(http, wijk_url, collection + f"id eq '{in_wijk[1].id}.power'",
                                                   args.repeats, check_a=every_latest, check_b=one_in_list)}
    out["latest_wijk"]["datastreams"] = float(len(m.get_json(http, wijk_url)[1]["value"]))
    out["latest_wijk"]["measured_datastreams"] = float(streams)
    out["latest_one_entity"] = m.paired(http, wijk_url, f"{one}?$select=id&$expand={lean}", max(3, args.repeats // 3),
                                        check_a=every_latest, check_b=one_latest)
    things_url = (f"/v1.1/Things?$top=1000&$filter=properties/wijk eq '{wijk}' and properties/kind ne null"
                  f"&$expand=Datastreams($expand={LATEST})")
    out["latest_wijk_things"] = m.paired(http, things_url, f"{one}?$expand={LATEST}", max(3, args.repeats // 3),
                                         check_a=all_latest, check_b=one_latest)
    return out
